"""CodeFacts: the program a record folder runs (all analysable files), its call graph, its run
configuration and reachability of any node under that configuration."""
from __future__ import annotations

import ast
from dataclasses import dataclass, field

from auditor.policy import NON_DEFAULT, UNREACHABLE
from rules.analysis.config import UNKNOWN, RunConfig, evaluate
from rules.analysis.index import FileFacts, FuncInfo, call_name
from rules.analysis.logs import LogFacts

_RANK = {None: 0, NON_DEFAULT: 1, UNREACHABLE: 2}
_IMPLICIT = {"forward", "__call__", "__init__", "__enter__", "__exit__", "__iter__", "__next__", "__len__", "__getitem__"}


@dataclass
class Reach:
    """Why a node does (not) run: ``state`` is None, "unreachable" or "non-default"."""

    state: str | None
    why: str = ""

    def __bool__(self) -> bool:  # truthy when the node is not plainly reachable
        return self.state is not None


@dataclass
class CodeFacts:
    files: list[FileFacts] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)  # file -> note (e.g. decoded from a wrapper)
    config: RunConfig = field(default_factory=RunConfig)
    logs: LogFacts = field(default_factory=LogFacts)
    functions: dict[str, FuncInfo] = field(default_factory=dict)  # qualname -> info (first file wins)
    by_short: dict[str, list[FuncInfo]] = field(default_factory=dict)
    call_sites: dict[str, list[tuple[FileFacts, FuncInfo | None, ast.Call]]] = field(default_factory=dict)
    all_refs: set[str] = field(default_factory=set)
    _reach_memo: dict[str, Reach] = field(default_factory=dict)
    _cache: dict[str, object] = field(default_factory=dict)

    # --- lookups ---------------------------------------------------------------------------
    def file(self, path: str) -> FileFacts | None:
        for f in self.files:
            if f.path == path:
                return f
        return None

    def file_of(self, fn: FuncInfo) -> FileFacts:
        return self.file(fn.file) or self.files[0]

    def resolve(self, short: str, call: ast.Call | None = None, caller: FuncInfo | None = None) -> list[FuncInfo]:
        """Functions a call with this short callee name may reach (name-based, generous)."""
        cands = self.by_short.get(short, [])
        if call is not None and isinstance(call.func, ast.Attribute):
            base = call.func.value
            if isinstance(base, ast.Name) and base.id == "self" and caller is not None and caller.cls:
                own = [c for c in cands if c.cls == caller.cls]
                if own:
                    return own
            methods = [c for c in cands if c.cls]
            if methods:
                return methods
        elif call is not None and isinstance(call.func, ast.Name):
            plain = [c for c in cands if not c.cls]
            if plain:
                return plain
            # Class(...) → __init__
            for ff in self.files:
                ci = ff.classes.get(short)
                if ci and "__init__" in ci.methods:
                    f = self.functions.get(ci.methods["__init__"])
                    return [f] if f else []
        return cands

    def callees(self, fn: FuncInfo) -> list[FuncInfo]:
        out, seen = [], set()
        for short, call in fn.calls:
            for c in self.resolve(short, call, fn):
                if c.qualname not in seen:
                    seen.add(c.qualname)
                    out.append(c)
        return out

    def reachable_from(self, fn: FuncInfo | str) -> list[FuncInfo]:
        """Every function ``fn`` may call, transitively (including itself)."""
        start = self.functions.get(fn) if isinstance(fn, str) else fn
        if start is None:
            return []
        seen = {start.qualname: start}
        todo = [start]
        while todo:
            cur = todo.pop()
            for c in self.callees(cur):
                if c.qualname not in seen:
                    seen[c.qualname] = c
                    todo.append(c)
        return list(seen.values())

    def call_graph(self) -> dict[str, list[str]]:
        return {q: [c.qualname for c in self.callees(f)] for q, f in self.functions.items()}

    def enclosing(self, ff: FileFacts, node: ast.AST) -> FuncInfo | None:
        fn = ff.enclosing_function(node)
        if fn is None:
            return None
        return self.functions.get(fn.qualname, fn)

    # --- reachability ----------------------------------------------------------------------
    def reachability(self, node: ast.AST, ff: FileFacts | None = None) -> str | None:
        """None (runs under the logged configuration, or cannot tell), "unreachable" or "non-default"."""
        return self.reach(node, ff).state

    def reach(self, node: ast.AST, ff: FileFacts | None = None) -> Reach:
        ff = ff or self._file_holding(node)
        if ff is None:
            return Reach(None)
        local = self._guard_reach(ff, node)
        if local.state is not None:
            return local
        fn = self.enclosing(ff, node)
        if fn is None:
            return local
        return self.function_reach(fn)

    def function_reach(self, fn: FuncInfo, _stack: frozenset = frozenset()) -> Reach:
        if fn.qualname in self._reach_memo:
            return self._reach_memo[fn.qualname]
        if fn.qualname in _stack:
            return Reach(None)
        stack = _stack | {fn.qualname}
        sites = list(self.call_sites.get(fn.short, []))
        if fn.short in _IMPLICIT and fn.cls:
            sites += self.call_sites.get(fn.cls, [])
        if not sites:
            if fn.short in self.all_refs or fn.short in _IMPLICIT or fn.short.startswith("__"):
                res = Reach(None)  # passed around as a value or called implicitly: assume it runs
            else:
                res = Reach(UNREACHABLE, f"{fn.qualname} is never called")
        else:
            best: Reach | None = None
            for sff, caller, call in sites:
                r = self._guard_reach(sff, call)
                if r.state is None and caller is not None and caller.qualname != fn.qualname:
                    r = self.function_reach(self.functions.get(caller.qualname, caller), stack)
                if best is None or _RANK[r.state] < _RANK[best.state]:
                    best = r
                if best.state is None:
                    break
            res = best or Reach(None)
        if not _stack:
            self._reach_memo[fn.qualname] = res
        return res

    def _file_holding(self, node: ast.AST) -> FileFacts | None:
        for f in self.files:
            if id(node) in f.parents:
                return f
        return self.files[0] if self.files else None

    def _guard_reach(self, ff: FileFacts, node: ast.AST) -> Reach:
        child, p = node, ff.parent(node)
        while p is not None and not isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if isinstance(p, ast.If) and child is not p.test:
                in_body = any(child is s for s in p.body)
                srcs: set[str] = set()
                val = evaluate(p.test, self.config, srcs)
                if val is not UNKNOWN and bool(val) != in_body:
                    block = p.body if in_body else p.orelse
                    if self._block_logged(ff, block):
                        child, p = p, ff.parent(p)
                        continue
                    guard = ff.line_text(p.lineno)
                    shown = srcs & {"log", "readme"}
                    why = f"guard `{guard}` is {bool(val)} under " + (
                        "the logged configuration" if shown else "the code's defaults, and no log line shows the branch ran")
                    if shown or self.config.has_run_evidence or not srcs:  # ``if False:``: no configuration can run it
                        return Reach(UNREACHABLE, f"line {p.lineno}: {why}")
                    return Reach(NON_DEFAULT, f"line {p.lineno}: {why} (no logs to confirm)")
            child, p = p, ff.parent(p)
        return Reach(None)

    def _block_logged(self, ff: FileFacts, block: list[ast.stmt]) -> bool:
        """True when a log line shows text that only this block prints (the branch ran)."""
        if not self.logs.lines:
            return False
        for frag in _print_fragments(block):
            if self.logs.search(frag, 1):
                return True
        return False

    def cached(self, key: str, build):
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]


def print_fragments(block: list[ast.stmt]) -> list[str]:
    """First literal fragment (>= 8 chars) of each print/log call in ``block``."""
    return _print_fragments(block)


def _print_fragments(block: list[ast.stmt]) -> list[str]:
    out: list[str] = []
    for stmt in block:
        for n in ast.walk(stmt):
            if isinstance(n, ast.Call) and call_name(n.func).rsplit(".", 1)[-1] in ("print", "log0", "log", "log_fn", "print0", "logger", "info", "write", "log_print"):
                for a in n.args[:1]:
                    if isinstance(a, ast.JoinedStr):
                        for v in a.values:
                            if isinstance(v, ast.Constant) and isinstance(v.value, str) and len(v.value.strip()) >= 8:
                                out.append(v.value.strip())
                                break
                    elif isinstance(a, ast.Constant) and isinstance(a.value, str) and len(a.value.strip()) >= 8:
                        out.append(a.value.strip())
    return out


def build_code_facts(files: list[FileFacts], notes: dict[str, str], config: RunConfig, logs: LogFacts) -> CodeFacts:
    cf = CodeFacts(files=files, notes=notes, config=config, logs=logs)
    for ff in files:
        for q, fn in ff.functions.items():
            cf.functions.setdefault(q, fn)
            cf.by_short.setdefault(fn.short, []).append(fn)
            for short, call in fn.calls:
                cf.call_sites.setdefault(short, []).append((ff, fn, call))
                for a in call.args:  # a function passed as a value runs where it is passed
                    if isinstance(a, ast.Name) and a.id != short:
                        cf.call_sites.setdefault(a.id, []).append((ff, fn, call))
            cf.all_refs |= fn.refs
        for short, call in ff.top_calls:
            cf.call_sites.setdefault(short, []).append((ff, None, call))
            for a in call.args:
                if isinstance(a, ast.Name) and a.id != short:
                    cf.call_sites.setdefault(a.id, []).append((ff, None, call))
        cf.all_refs |= ff.top_refs
        for name, ed in ff.fields.items():
            config.defaults.setdefault(name, ed)
        for var, ed in ff.env.items():
            config.env_defaults.setdefault(var, ed)
    _env_helper_fields(cf)
    return cf


def _env_helpers(cf: CodeFacts) -> dict[str, tuple[ast.AST, int]]:
    """The program's own env readers: plain functions that read the env var a parameter names
    (``def env_flag(name, default): raw = os.environ.get(name) …``), with that parameter's position."""
    from rules.analysis.index import walk

    out: dict[str, tuple[ast.AST, int]] = {}
    for short, fns in cf.by_short.items():
        if len(fns) != 1 or fns[0].cls or "." in fns[0].qualname:
            continue
        fn = fns[0]
        a = fn.node.args
        params = [p.arg for p in a.posonlyargs + a.args]
        for n in walk(fn.node):
            if isinstance(n, ast.Call) and n.args and isinstance(n.args[0], ast.Name) and n.args[0].id in params \
                    and call_name(n.func).endswith(("environ.get", "getenv")):
                out[short] = (fn.node, params.index(n.args[0].id))
                break
    return out


def _env_helper_fields(cf: CodeFacts) -> None:
    """``ngram_on: bool = env_flag("NGRAM_ON", False)`` (or in ``field(default_factory=lambda: …)``): a field the
    configuration evaluator can read, through the helper's own code."""
    from rules.analysis.index import EnvDefault, walk

    helpers = _env_helpers(cf)
    if not helpers:
        return
    config = cf.config
    config.env_helpers.update({k: v[0] for k, v in helpers.items()})
    for ff in cf.files:
        if ff.tree is None:
            continue
        for node in ff.nodes:
            if not isinstance(node, (ast.Assign, ast.AnnAssign)) or node.value is None:
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if len(targets) != 1 or not isinstance(targets[0], (ast.Name, ast.Attribute)):
                continue
            call = next((c for c in walk(node.value) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)
                         and c.func.id in helpers), None)
            if call is None:
                continue
            pos = helpers[call.func.id][1]
            if pos >= len(call.args) or not isinstance(call.args[pos], ast.Constant) or not isinstance(call.args[pos].value, str):
                continue
            fn = ff.enclosing_function(node)
            if fn is not None and fn.short != "__init__":
                continue
            attr = targets[0].id if isinstance(targets[0], ast.Name) else targets[0].attr
            # the helper's value is the field's unless the call sits inside something else (a default_factory lambda)
            expr = node.value
            if isinstance(expr, ast.Call) and call_name(expr.func).rsplit(".", 1)[-1] == "field":
                expr = call
            config.defaults.setdefault(attr, EnvDefault(call.args[pos].value, ..., node.lineno, attr, expr))
