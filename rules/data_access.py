"""What the record's code reads and when: training-data reads after the training loop, validation
data fed to training, network access. Shared by DATA-* and NET-*; registers no rule.

"After training" is found structurally: the training loop is the loop that calls ``.backward()`` and
an optimizer ``.step()``; every call placed after that loop in the same function, and everything
those calls reach in the name-based call graph (``rules.analysis``), runs after the 600 s window.
"""
from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass, field

from rules.analysis import analyse, taint
from rules.analysis.index import FileFacts, FuncInfo, call_name
from rules.analysis.index import walk as ast_walk  # ast.walk, faster (same nodes, same order)

TRAIN_NAME = re.compile(r"fineweb_train|(^|[._])train_(files|pattern|shards?|glob)\b|^train_loader$|(^|\.)train_loader\b", re.I)
VAL_NAME = re.compile(r"fineweb_val_(?!bytes)|(^|[._])val_(files|pattern|tokens|data)\b", re.I)
LOADER_CALL = re.compile(r"(Loader|TokenStream|DataLoader)$")
CALIB_NAME = re.compile(r"hessian|calib|gptq", re.I)
RESERVE = re.compile(r"GPTQ_RESERVE|gptq_reserve|reserve_s(ec(ond)?s?)?\b", re.I)
NET_MODULES = {"urllib", "urllib.request", "urllib2", "requests", "http.client", "httpx", "aiohttp", "socket",
               "huggingface_hub", "datasets", "wget", "ftplib", "paramiko", "boto3"}
NET_CALLS = re.compile(r"(^|\.)(snapshot_download|hf_hub_download|from_pretrained|load_dataset|urlopen|urlretrieve|"
                       r"create_connection|download_url_to_file|load_state_dict_from_url)$|^torch\.hub\.|^requests\.(get|post|request|Session)|"
                       r"^httpx\.|^socket\.socket$")
SHELL_NET = re.compile(r"\b(curl|wget|pip3?\s+install|git\s+clone|huggingface-cli|hf\s+download|aria2c|scp|rsync)\b")


@dataclass
class Access:
    file: str
    line: int
    func: str  # enclosing function qualname ("" at module level)
    kind: str  # "train-read" | "val-to-train" | "val-calibration" | "net-import" | "net-call" | "shell-net"
    text: str  # the source line, verbatim
    detail: str = ""
    after_training: bool = False
    reach: str | None = None  # rules.analysis reachability of the node
    reach_why: str = ""
    unscored: bool = False  # train-read: what it reads feeds no scoring function (calibration-shaped, by value)


@dataclass
class TrainLoop:
    file: str
    func: str
    start: int
    end: int


@dataclass
class DataFacts:
    loop: TrainLoop | None = None
    post_funcs: set[str] = field(default_factory=set)
    pre_funcs: set[str] = field(default_factory=set)  # reached from the training function before its loop ends
    accesses: list[Access] = field(default_factory=list)
    has_reserve: bool = False
    notes: dict[str, str] = field(default_factory=dict)

    def of(self, kind: str) -> list[Access]:
        return [a for a in self.accesses if a.kind == kind]


def data_facts(ctx) -> DataFacts:
    return ctx.fact("data_access", _build)


def _mentions(node: ast.AST, pat: re.Pattern) -> str | None:
    for n in ast_walk(node):
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and pat.search(n.value):
            return n.value
        if isinstance(n, ast.Name) and pat.search(n.id):
            return n.id
        if isinstance(n, ast.Attribute) and pat.search(n.attr):
            return n.attr
    return None


def _find_loop(ff: FileFacts, fn: FuncInfo, facts=None) -> tuple[int, int] | None:
    from rules.analysis.patterns import summaries, walk_own

    best = None
    for node in walk_own(fn.node):  # a loop of a nested def (``step_fn``'s grad-accum loop) is that def's, not fn's
        if not isinstance(node, (ast.For, ast.While)):
            continue
        calls = [n for n in ast_walk(node) if isinstance(n, ast.Call)]
        names = {call_name(n.func).rsplit(".", 1)[-1] for n in calls}
        trains = "backward" in names and "step" in names
        if not trains and facts is not None:  # ``while True: loss = step_fn(step)`` where step_fn steps the optimizer
            s = summaries(facts)
            trains = any(t is not fn and s.does(t, "train") for c in calls
                         for t in facts.resolve(call_name(c.func).rsplit(".", 1)[-1], c, fn) if t.qualname.startswith(fn.qualname + "."))
        if trains:
            span = (node.lineno, getattr(node, "end_lineno", node.lineno) or node.lineno)
            if best is None or span[1] - span[0] > best[1] - best[0]:
                best = span
    return best


def _build(ctx) -> DataFacts:
    facts = analyse(ctx)
    out = DataFacts()
    out.notes = dict(facts.notes)
    # the training loop: the longest loop with backward() and step(), in a function that is not a TTT/eval helper
    cands = []
    tf = taint(facts)
    trains = _train_names(facts)
    for ff in facts.files:
        for fn in ff.functions.values():
            if re.search(r"ttt|eval|slot|calib|hessian|warmup", fn.qualname, re.I):
                continue
            span = _find_loop(ff, fn, facts)
            if span:
                # a loop slicing the validation stream (by value) is a TTT loop: any other loop is preferred
                val = {k for k, v in tf.env.get(fn.qualname, {}).items() if any(l[0] in ("V", "T") for l in v)}
                inside = [n for n in ast_walk(fn.node) if span[0] <= getattr(n, "lineno", 0) <= span[1]]
                on_val = any(isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name) and n.value.id in val for n in inside)
                # batches drawn from training data (by value or by name) vs a compile warmup on random tokens
                held = trains.get(fn.qualname, set())
                on_train = any(isinstance(n, ast.Call) and (_mentions(n, TRAIN_NAME) or any(
                    isinstance(x, ast.Name) and x.id in held for x in ast.walk(n))) for n in inside)
                random = any(isinstance(n, ast.Call) and call_name(n.func).rsplit(".", 1)[-1] in ("randint", "rand", "randn")
                             for n in inside)
                if random and not on_train:
                    continue
                cands.append((on_train, not on_val, span[1] - span[0], ff, fn, span))
    post_calls: list[tuple[FileFacts, ast.Call]] = []
    if cands:
        _t, _v, _n, ff, fn, span = max(cands, key=lambda c: (c[0], c[1], c[2]))
        out.loop = TrainLoop(ff.path, fn.qualname, span[0], span[1])
        for short, call in fn.calls:
            if call.lineno > span[1]:
                post_calls.append((ff, call))
                for target in facts.resolve(short, call, fn):
                    for r in facts.reachable_from(target):
                        out.post_funcs.add(r.qualname)
            else:  # what the training loop itself uses (its loader's machinery)
                for target in facts.resolve(short, call, fn):
                    out.pre_funcs |= {r.qualname for r in facts.reachable_from(target)}
    for ff in facts.files:
        if ff.tree is None:
            continue
        if RESERVE.search(ff.text):
            out.has_reserve = True
        _scan(ff, facts, out, trains)
    if out.loop and not any(a.kind == "val-to-train" and a.func == out.loop.func and not a.reach for a in out.accesses):
        _val_batches(facts, tf, out)
    return out


_BUILTINS = frozenset(dir(builtins))
BATCH_CALLS = {"next_batch", "take", "get_batch", "sample_batch", "next", "__next__"}


def _val_batches(facts, tf, out: DataFacts) -> None:
    """The training loop draws its batches from an object that holds the validation stream (by value: a
    loader built over a validation path here or in a helper, whatever it is called)."""
    loop = out.loop
    fn = facts.functions.get(loop.func)
    ff = facts.file(loop.file)
    if fn is None or ff is None:
        return
    val = {k for k, v in tf.env.get(fn.qualname, {}).items() if any(l[0] == "V" for l in v)}
    for n in ast_walk(fn.node):
        if not loop.start <= getattr(n, "lineno", 0) <= loop.end:
            continue
        src = None
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in BATCH_CALLS \
                and isinstance(n.func.value, ast.Name) and n.func.value.id in val:
            src = n.func.value.id
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "next" and n.args \
                and isinstance(n.args[0], ast.Name) and n.args[0].id in val:
            src = n.args[0].id
        if src:
            out.accesses.append(_acc(ff, facts, n, fn.qualname, "val-to-train",
                                     f"draws training batches from {src}, which holds the validation stream", False))
            return


def _train_names(facts) -> dict[str, set[str]]:
    """Per function, the locals and parameters that hold a training-data location by value: bound from
    ``args.train_files`` / ``"fineweb_train_*.bin"`` (or from another such name), or a parameter that a
    call site fills with one, whatever they are called (``gptq_calibrate(model, args.train_files)``).
    Built once per folder: the data rules and TTT-PREQUANT both ask."""
    return facts.cached("train_names", lambda: _build_train_names(facts))


def _build_train_names(facts) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}

    def holds(node, qual) -> bool:
        names = out.get(qual, ())
        return _mentions(node, TRAIN_NAME) is not None or any(isinstance(n, ast.Name) and n.id in names for n in ast_walk(node))

    fns = list(facts.functions.values())
    for _ in range(4):  # parameters through a few call levels
        changed = False
        for fn in fns:
            for n in ast_walk(fn.node):
                if isinstance(n, ast.Assign) and holds(n.value, fn.qualname):
                    for t in n.targets:
                        # ``train, val = load(train_glob), load(val_glob)``: element by element
                        pairs = (list(zip(t.elts, n.value.elts)) if isinstance(t, ast.Tuple) and isinstance(n.value, ast.Tuple)
                                 and len(t.elts) == len(n.value.elts) else [(t, n.value)])
                        for tt, v in pairs:
                            if isinstance(tt, ast.Name) and holds(v, fn.qualname) and tt.id not in out.setdefault(fn.qualname, set()):
                                out[fn.qualname].add(tt.id)
                                changed = True
            for short, call in fn.calls:
                for t in facts.resolve(short, call, fn):
                    params = list(t.params)
                    if t.cls and params and params[0] in ("self", "cls"):
                        params = params[1:]
                    pairs = list(zip(params, call.args)) + [(k.arg, k.value) for k in call.keywords if k.arg in t.params]
                    for p, a in pairs:
                        if holds(a, fn.qualname) and p not in out.setdefault(t.qualname, set()):
                            out[t.qualname].add(p)
                            changed = True
        if not changed:
            break
    return out


def _scan(ff: FileFacts, facts, out: DataFacts, trains: dict[str, set[str]]) -> None:
    loop = out.loop
    for node in ast_walk(ff.tree):
        line = getattr(node, "lineno", None)
        if line is None:
            continue
        fn = ff.enclosing_function(node)
        qual = fn.qualname if fn else ""
        after = bool(loop) and (qual in out.post_funcs or (loop.file == ff.path and qual == loop.func and line > loop.end))
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for m in mods:
                if m in NET_MODULES or m.split(".")[0] in {"requests", "huggingface_hub", "urllib", "httpx", "aiohttp"}:
                    out.accesses.append(_acc(ff, facts, node, qual, "net-import", f"imports {m}", after))
            continue
        if not isinstance(node, ast.Call):
            continue
        name = call_name(node.func)
        if NET_CALLS.search(name):
            out.accesses.append(_acc(ff, facts, node, qual, "net-call", f"calls {name}", after))
        elif name.startswith(("subprocess.", "os.system", "os.popen")) or name in ("Popen", "check_call", "check_output", "system"):
            lit = " ".join(n.value for n in ast_walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str))
            m = SHELL_NET.search(lit)
            if m:
                out.accesses.append(_acc(ff, facts, node, qual, "shell-net", f"runs {m.group(0)!r} in a subprocess", after))
        short = name.rsplit(".", 1)[-1]
        # training data read: loader construction, next_batch on the train loader, glob/fromfile of train shards
        # a training location held by value; not inside what the training loop itself uses (its loader classes)
        held = next((n.id for n in ast_walk(node) if isinstance(n, ast.Name) and n.id in trains.get(qual, ())), None) \
            if qual not in out.pre_funcs else None
        # a method of the program's own classes called on a training loader held by value (``loader.next_batch``
        # whatever the method is called)
        on_loader = held is not None and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) \
            and node.func.value.id == held and any(f.cls for f in facts.by_short.get(short, ()))
        if ((LOADER_CALL.search(short) or short in ("glob", "fromfile", "memmap", "load_data_shard", "next_batch"))
                and (_mentions(node, TRAIN_NAME) or held)) or on_loader:
            if not _inside_training(loop, ff, qual, line) and not _just_counted(ff, node) \
                    and not (short in ("glob", "iglob") and _names_only(ff, facts, node, fn)):
                detail = _mentions(node, TRAIN_NAME) or held or ""
                acc = _acc(ff, facts, node, qual, "train-read", f"reads training data ({detail})", after)
                acc.unscored = after and _feeds_no_score(ff, facts, node, fn)
                out.accesses.append(acc)
        # validation data into training: a loader over val files inside the training function, or calibration on val
        if LOADER_CALL.search(short) and _mentions(node, VAL_NAME) and not re.search(r"val|eval", short, re.I):
            if loop and ff.path == loop.file and qual == loop.func and line <= loop.end:
                out.accesses.append(_acc(ff, facts, node, qual, "val-to-train",
                                         f"builds a training loader ({short}) over validation data ({_mentions(node, VAL_NAME)})", after))
        if CALIB_NAME.search(short) and any(_mentions(a, VAL_NAME) for a in list(node.args) + [k.value for k in node.keywords]):
            out.accesses.append(_acc(ff, facts, node, qual, "val-calibration",
                                     f"calibrates ({short}) on validation data ({_mentions(node, VAL_NAME)})", after))


def _feeds_no_score(ff: FileFacts, facts, node: ast.AST, fn: FuncInfo | None) -> bool:
    """The training data read here reaches no score: it is bound to names that only non-scoring calls
    consume (``calib = Loader(train_files)`` → ``hessians_of(model, calib)``), or it sits in a function
    that scores nothing and whose every caller drops its result or hands it only to non-scoring calls.
    The shape of a calibration pass, found without its name."""
    from rules.analysis.patterns import summaries

    if fn is None:
        return False
    s = summaries(facts)
    if s.does(fn, "score"):
        return _consumed_unscored(ff, facts, s, node, fn)
    sites = [(facts.file_of(f), c, f) for f in facts.functions.values() for short, c in f.calls
             if fn in facts.resolve(short, c, f)]
    return all(sf is not None and (not s.does(f, "score") or _consumed_unscored(sf, facts, s, c, f)) for sf, c, f in sites)


def _consumed_unscored(ff: FileFacts, facts, s, node: ast.AST, fn: FuncInfo) -> bool:
    p = ff.parent(node)
    while p is not None and not isinstance(p, ast.stmt):
        p = ff.parent(p)
    if isinstance(p, ast.Expr) and p.value is node:
        return True  # the result is dropped
    if not isinstance(p, ast.Assign):
        return False
    names = {n.id for t in p.targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    uses = [c for c in ast.walk(fn.node) if isinstance(c, ast.Call) and c is not node and getattr(c, "lineno", 0) > p.lineno
            and any(isinstance(x, ast.Name) and x.id in names for a in list(c.args) + [k.value for k in c.keywords]
                    for x in ast.walk(a))]
    other = [x for x in ast.walk(fn.node) if isinstance(x, ast.Name) and isinstance(x.ctx, ast.Load) and x.id in names
             and getattr(x, "lineno", 0) > p.lineno]
    if len(other) > sum(1 for c in uses for a in list(c.args) + [k.value for k in c.keywords] for x in ast.walk(a)
                        if isinstance(x, ast.Name) and x.id in names):
        return False  # read somewhere else than as a call argument (returned, added, printed)
    own = [(call_name(c.func), facts.resolve(call_name(c.func).rsplit(".", 1)[-1], c, fn)) for c in uses]
    # a program function that scores nothing, or a builtin (``len(hessians)`` in a log line)
    return all((ts and not any(s.does(t, "score") for t in ts)) or (not ts and name in _BUILTINS) for name, ts in own)


def _just_counted(ff: FileFacts, node: ast.AST) -> bool:
    """``len(glob(train_files))`` in a log line counts shards; it reads no tokens."""
    p = ff.parent(node)
    for _ in range(4):
        if p is None:
            return False
        if isinstance(p, ast.Call) and call_name(p.func) in ("len", "sum", "log", "log0", "print", "logger.info"):
            return True
        if isinstance(p, (ast.JoinedStr, ast.FormattedValue)):
            return True
        p = ff.parent(p)
    return False


# calls that open a file's contents; a listing that reaches none of them read only names
READ_CALLS = {"fromfile", "memmap", "open", "load", "load_data_shard", "read_bytes", "read_text", "frombuffer", "loadtxt",
              "genfromtxt", "safe_open", "load_file", "mmap", "urlopen", "read"}
# calls that take names and give names (or nothing) back: they open no file
NAME_CALLS = {"len", "sorted", "list", "tuple", "set", "str", "repr", "print", "enumerate", "zip", "range", "min", "max", "any",
              "all", "bool", "int", "isinstance", "Path", "PurePath", "basename", "dirname", "join", "exists", "isfile", "isdir",
              "getsize", "stat", "format", "write", "writelines", "sort", "shuffle", "permutation", "choice", "reverse",
              "reversed", "info", "warning", "debug", "error", "log", "log0", "split", "rsplit", "strip", "endswith",
              "startswith", "replace", "match", "search", "fullmatch", "dumps", "index", "count"}
DERIVE_CALLS = {"append", "extend", "insert", "add", "update", "appendleft"}


def _names_only(ff: FileFacts, facts, node: ast.Call, fn: FuncInfo | None, depth: int = 0) -> bool:
    """A listing (``glob``) whose file names are only tested, counted, reordered or written out: it reads
    no training data. Followed by value in its function: names bound from the listing (assignments, loop
    variables, lists they are appended to) must reach no call that opens a file, directly or through the
    program's own functions, and must not leave the function (returned, stored on an object, handed to a
    call the analysis does not know); a function that returns them is followed to its call sites."""
    p, child = ff.parent(node), node
    while p is not None and not isinstance(p, ast.stmt):
        if isinstance(p, ast.Call) and p is not node and child in p.args and call_name(p.func).rsplit(".", 1)[-1] not in NAME_CALLS:
            break
        p, child = ff.parent(p), p
    if isinstance(p, (ast.If, ast.While, ast.Assert)) and _within(node, p.test):
        return True  # ``if not glob(train_files):`` a presence test
    if isinstance(p, ast.Return) and p.value is not None and _within(node, p.value):
        return _callers_names_only(facts, fn, depth)
    if fn is None or not isinstance(p, (ast.Assign, ast.AnnAssign)) or not _within(node, p.value):
        return False
    held: set[str] = set()
    for t in (p.targets if isinstance(p, ast.Assign) else [p.target]):
        if not isinstance(t, ast.Name):
            return False  # stored on an object or unpacked: followed no further
        held.add(t.id)
    from rules.analysis.patterns import walk_own

    body = list(walk_own(fn.node))

    def mentions(e) -> bool:
        return any(isinstance(x, ast.Name) and x.id in held for x in ast_walk(e))

    for _ in range(6):  # names derived from the listing, to a fixpoint
        before = len(held)
        for n in body:
            if isinstance(n, ast.Assign) and mentions(n.value):
                for t in n.targets:
                    if not isinstance(t, (ast.Name, ast.Tuple, ast.List)):
                        return False
                    held |= {x.id for x in ast_walk(t) if isinstance(x, ast.Name)}
            elif isinstance(n, (ast.For, ast.comprehension)) and mentions(n.iter):
                held |= {x.id for x in ast_walk(n.target) if isinstance(x, ast.Name)}
            elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in DERIVE_CALLS \
                    and any(mentions(a) for a in n.args) and isinstance(n.func.value, ast.Name):
                held.add(n.func.value.id)
        if len(held) == before:
            break
    readers = _reading_functions(facts)
    nested = [n for n in ast_walk(fn.node) if n is not fn.node
              and isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda))]
    if any(mentions(n) for n in nested):
        return False  # a closure or lambda uses the names: followed no further
    for n in body:
        if isinstance(n, ast.Return) and n.value is not None and mentions(n.value):
            if not _callers_names_only(facts, fn, depth):
                return False
            continue
        if isinstance(n, (ast.Yield, ast.YieldFrom)) and n.value is not None and mentions(n.value):
            return False
        if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and n.value is not None and mentions(n.value) and any(
                not isinstance(t, (ast.Name, ast.Tuple, ast.List)) for t in (n.targets if isinstance(n, ast.Assign) else [n.target])):
            return False  # stored on an object, in a container or in the environment
        if not isinstance(n, ast.Call) or n is node:
            continue
        if not any(mentions(a) for a in list(n.args) + [k.value for k in n.keywords]):
            continue
        short = call_name(n.func).rsplit(".", 1)[-1]
        if _reads(short, n):
            return False
        own = facts.resolve(short, n, fn)
        if own:
            if any(t.qualname in readers for t in own):
                return False
            continue
        if short not in NAME_CALLS and short not in DERIVE_CALLS:
            return False  # a call we cannot see into
    return True


def _callers_names_only(facts, fn: FuncInfo | None, depth: int) -> bool:
    """``fn`` returns the listing: every call of it must use the result for names only."""
    if fn is None or depth >= 3:
        return False
    sites = [(facts.file_of(f), c, f) for f in facts.functions.values() for short, c in f.calls
             if fn in facts.resolve(short, c, f)]
    return bool(sites) and all(sf is not None and _names_only(sf, facts, c, f, depth + 1) for sf, c, f in sites)


def _reads(short: str, call: ast.Call) -> bool:
    """A call that opens file contents (``open(p, "w")`` or ``"a"`` writes: a log file, not data)."""
    if short == "open":
        mode = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "mode"), None)
        return not (isinstance(mode, ast.Constant) and isinstance(mode.value, str) and "r" not in mode.value
                    and "+" not in mode.value)
    return short in READ_CALLS or bool(LOADER_CALL.search(short))


def _within(node: ast.AST, tree: ast.AST) -> bool:
    return any(x is node for x in ast_walk(tree))


def _reading_functions(facts) -> set[str]:
    """Program functions that open a file's contents, directly or through the functions they call."""
    def build():
        direct = {f.qualname for f in facts.functions.values() if any(_reads(short, c) for short, c in f.calls)}
        return {f.qualname for f in facts.functions.values()
                if f.qualname in direct or any(r.qualname in direct for r in facts.reachable_from(f))}
    return facts.cached("reading_functions", build)


def _inside_training(loop: TrainLoop | None, ff: FileFacts, qual: str, line: int) -> bool:
    return bool(loop) and loop.file == ff.path and qual == loop.func and loop.start <= line <= loop.end


def _acc(ff: FileFacts, facts, node: ast.AST, qual: str, kind: str, detail: str, after: bool) -> Access:
    r = facts.reach(node, ff)
    return Access(ff.path, node.lineno, qual, kind, ff.line_text(node.lineno), detail, after, r.state, r.why)
