"""Interprocedural target taint (flow-insensitive per function, iterated to a fixpoint).

Labels are ``(kind, path)`` pairs:

- ``T``: the realized target (``y``, ``targets``, ``val_tokens[i + 1]``, ``chunk[1:]``) or a
  property of it (``is_boundary[y]``, ``y != pad``);
- ``H``: arithmetic that combines a target with something else (``ctx ^ y * PRIME``,
  ``ctx * V + y``): a target-keyed hash; ``path`` names where it was built, as
  ``fn:line`` hops, outermost caller first;
- ``K``: a value read from a table at a target-keyed index (``full_tables[n][full_key]``,
  ``counts[ctx, y]``): the #779 lookup;
- ``S``: a score of a normalized object at the target (``cross_entropy(logits, y)``,
  ``log_softmax(..).gather(.., y)``, ``probs[arange, y]``): legal, and it stops ``T``.

Table *updates* (``tbl[k] += 1``, ``np.add.at``, ``bincount``, ``scatter_add_``) never taint
the table: counts of already-scored targets are legal state; only the read index matters.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from enum import Enum

from rules.analysis.facts import CodeFacts
from rules.analysis.index import FileFacts, FuncInfo, call_name
from rules.analysis.index import walk as ast_walk  # ast.walk, faster (same nodes, same order)

class Taint(str, Enum):
    """What a value carries (the first element of a label; the second is its helper path). Members are
    named by their one-letter values so they compare and hash equal to those strings."""

    T = "T"  # the realized target, or a property of it
    H = "H"  # the target combined with something else (a target-keyed hash)
    K = "K"  # a value read from a table at a target-keyed index
    S = "S"  # a score of a normalized object at the target (legal; stops T)
    V = "V"  # the validation token stream, however it is named or loaded
    P = "P"  # positions of the next tokens


Label = tuple  # (Taint, path)
T = (Taint.T, ())
S = (Taint.S, ())
V = (Taint.V, ())  # the validation token stream (however it is named or loaded); V shifted by one is the target
P = (Taint.P, ())  # positions of targets (``arange(s + 1, e + 1)``); indexing the token stream with them gives targets


def _shift_minus_one(call: ast.Call) -> bool:
    for a in list(call.args[1:]) + [k.value for k in call.keywords if k.arg in ("shifts", "shift")]:
        if isinstance(a, ast.UnaryOp) and isinstance(a.op, ast.USub) and isinstance(a.operand, ast.Constant) and a.operand.value == 1:
            return True
        if isinstance(a, ast.Constant) and a.value == -1:
            return True
    if isinstance(call.func, ast.Attribute) and call.func.attr == "roll" and call.args:  # t.roll(-1)
        a = call.args[0]
        return isinstance(a, ast.UnaryOp) and isinstance(a.op, ast.USub) and isinstance(a.operand, ast.Constant) and a.operand.value == 1
    return False


def _plus_one(e) -> bool:
    return any(isinstance(b, ast.BinOp) and isinstance(b.op, ast.Add) and isinstance(b.right, ast.Constant)
               and b.right.value == 1 for b in ast_walk(e))

TARGET_NAME = re.compile(
    r"^(y|yb|ys|yy|y_\w+|\w+_y|tgt\w*|\w*_tgts?|targets?|targets?_\w+|\w+_targets?|target_ids|gold\w*|next_toks?|next_tokens?|true_tok\w*)$")
NOT_TARGET = re.compile(r"_(ctx|context|prev|hist|history|mask|end|start|len|length|pos|positions?|idx|index|count|size|dim|shape|bytes|lr|dir|path|file|name|type|num|n|max|min|step|steps|offset|s|e|lo|hi)$|^(y|tgt|target)_(lo|hi|start|end)", re.I)
VAL_TOKENS = re.compile(r"(val\w*tok|tokens?(_np|_t|_arr)?$|^toks?$|val_np|val_data|val_ids|stream|^seq$|^ids$|^chunk$|^window$|^buf$|^data$)", re.I)
TABLE_NAME = re.compile(r"(count|table|tbl|cache|freq|hist|bucket|ngram|gram|full|ctx|hash|trie|memo|store)", re.I)
PROB_NAME = re.compile(r"(prob|logp|log_p|logit|lprob|lp$|^lp|nll|dist|softmax|scores?$|p_nn|p_model|q$)", re.I)
LUT_NAME = re.compile(r"(lut|bytes|byte_|boundary|leading|space|is_|len)", re.I)
SCORE_CALLS = {"cross_entropy", "nll_loss", "gather", "take_along_dim", "take_along_axis", "binary_cross_entropy",
               "softcapped_cross_entropy", "fused_cross_entropy"}
NO_TAINT_CALLS = {"len", "range", "isinstance", "print", "shape", "size", "numel", "dim", "device", "item_count", "type",
                  "id", "hasattr", "zeros_like_shape", "arange"}
NO_TAINT_ATTRS = {"shape", "dtype", "device", "ndim", "size", "numel", "dim", "is_cuda", "requires_grad"}
HASH_OPS = (ast.BitXor, ast.Mult, ast.Add, ast.Mod, ast.BitAnd, ast.LShift, ast.BitOr, ast.RShift, ast.Sub, ast.FloorDiv)
LOG_CALLS = {"log", "log2", "log10", "log1p", "nan_to_num_log"}
OPAQUE_BASES = ("Module", "Optimizer", "Function", "Dataset")
KEEP_CLASSES = re.compile(r"(ngram|gram|cache|mix|expert|ppm|slot|hint|tilt|table|count|backoff|lookup|oracle)", re.I)
MAX_PATH = 10
# calls that return a view/copy/conversion of their receiver or first argument: the stream stays the stream
VIEW_CALLS = {"to", "long", "int", "cuda", "cpu", "numpy", "contiguous", "clone", "view", "reshape", "unsqueeze", "squeeze",
              "flatten", "pin_memory", "astype", "as_tensor", "from_numpy", "asarray", "array", "tensor", "detach",
              "type", "narrow", "tolist", "int64", "long_tensor", "LongTensor", "ravel", "expand", "unfold", "split", "chunk",
              "tensor_split", "copy", "index_select", "take", "stack", "cat", "concatenate"}
VAL_LOAD = re.compile(r"(load_?val\w*|val\w*_?load\w*|load_validation\w*|read_val\w*|get_val\w*tok\w*)", re.I)
VAL_FILE = re.compile(r"(fineweb_val|val_files|val_pattern|val_path|_val_)", re.I)
# a string naming validation data on disk: ``fineweb_val_*.bin``, ``val.pt``, ``data/val_tokens.npy``
VAL_PATH = re.compile(r"fineweb_val|(^|[/_.-])val(idation)?([_.-][^/]*)?\.(bin|pt|pth|npy|npz|tokens)$|(^|[/_.-])val(idation)?[_.-][^/]*\*", re.I)
# a string naming training data on disk: ``fineweb_train_*.bin``, ``data/train.bin``
TRAIN_PATH = re.compile(r"fineweb_train|(^|[/_.-])train([_.-][^/]*)?\.(bin|pt|pth|npy|npz|tokens)$|(^|[/_.-])train[_.-][^/]*\*", re.I)
# calls whose result is a draw or a prediction, never data read from disk: random tokens, samples of a model's
# distribution, its argmax, constant fills
DRAW_CALLS = {"randint", "rand", "randn", "randperm", "multinomial", "bernoulli", "normal", "poisson", "random", "integers",
              "argmax", "randint_like", "rand_like", "randn_like", "zeros", "ones", "full", "empty", "zeros_like",
              "ones_like", "full_like", "empty_like", "arange", "topk", "sample"}
VAL_ATTR = re.compile(r"^(val_?tok\w*|val_ids|val_stream|val_data|val_np|val_seq|val_arr\w*|val_buf\w*)$", re.I)
IN = "@in:"
# calls that build or list a path (``os.path.join(d, "fineweb_val_*.bin")``): a location, not the stream
PATH_CALLS = re.compile(r"(^|\.)(join|Path|PurePath|glob|iglob|str|format|expanduser|abspath|resolve|joinpath|sorted|list)$")
LIB_MODULES = {"math", "np", "numpy", "torch", "F", "nn", "functional", "jnp", "scipy", "special"}  # marks a label that entered a function through an argument at this call site


@dataclass
class KeyRead:
    """A table read whose index carries the target (the #779 shape)."""

    fn: FuncInfo
    ff: FileFacts
    node: ast.Subscript
    line: int
    hash_path: tuple  # fn:line hops from here to where the target entered the key
    hashed: bool  # index is an arithmetic combination (not the raw target into a count table)


@dataclass
class Sink:
    """A place where a labelled value enters a −log / loss accumulation."""

    fn: FuncInfo
    ff: FileFacts
    node: ast.AST
    line: int
    labels: frozenset


@dataclass
class TaintFacts:
    env: dict[str, dict[str, frozenset]] = field(default_factory=dict)  # fn -> name -> labels
    params: dict[str, dict[str, frozenset]] = field(default_factory=dict)
    returns: dict[str, list[frozenset]] = field(default_factory=dict)  # fn -> per tuple position (or [all])
    attrs: dict[str, frozenset] = field(default_factory=dict)
    key_reads: dict[int, KeyRead] = field(default_factory=dict)
    log_sinks: dict[int, Sink] = field(default_factory=dict)
    conditions: dict[int, Sink] = field(default_factory=dict)  # T-labelled branch/gate/where conditions
    hashed_updates: dict[int, Sink] = field(default_factory=dict)  # table updates at target-keyed indices
    analysed: set[str] = field(default_factory=set)
    val_paths: set[str] = field(default_factory=set)
    self_attrs: set[str] = field(default_factory=set)  # attributes the program's methods assign on ``self``
    train_paths: set[str] = field(default_factory=set)  # names/attributes bound to a training data path
    accounted: dict[str, frozenset] = field(default_factory=dict)  # fn -> names whose value is a draw or training data
    table_writes: dict | None = None  # table key -> [(fn, kind, row, weight)], built on first use (``table_writes``)
    counted: frozenset | None = None  # tables counted into cell by cell (``_counted_tables``)
    loads_val: dict[int, bool] = field(default_factory=dict)  # call node -> it loads validation data  # names/attributes bound to a validation data path (any file, any level)

    def labels_of(self, fn: str, name: str) -> frozenset:
        return self.env.get(fn, {}).get(name, frozenset())


def has(labels, kind: str) -> bool:
    return any(l[0] == kind for l in labels)


def paths(labels, kind: str) -> list[tuple]:
    return sorted({l[1] for l in labels if l[0] == kind}, key=len, reverse=True)


def clean(path: tuple) -> tuple:
    """A label path as shown to people: the call-site markers removed."""
    return tuple(p for p in path if not p.startswith(IN))


def _walk_own_fn(fn_node: ast.AST):
    todo = list(ast.iter_child_nodes(fn_node))
    while todo:
        n = todo.pop()
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        yield n
        todo.extend(ast.iter_child_nodes(n))


def training_arm(test: ast.AST) -> str | None:
    """"body" when ``test`` holds only while training (``self.training``, ``model.training and …``),
    "else" for its negation, None otherwise."""
    if isinstance(test, ast.Attribute) and test.attr == "training":
        return "body"
    if isinstance(test, ast.Call) and call_name(test.func).endswith("is_grad_enabled"):
        return "body"
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = training_arm(test.operand)
        return {"body": "else", "else": "body"}.get(inner) if inner else None
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        if any(training_arm(v) == "body" for v in test.values):
            return "body"
    return None


def _is_opaque(facts: CodeFacts, fn: FuncInfo) -> bool:
    if not fn.cls:
        return False
    for ff in facts.files:
        ci = ff.classes.get(fn.cls)
        if ci is not None:
            if any(b.endswith(OPAQUE_BASES) for b in ci.bases) and not KEEP_CLASSES.search(ci.name):
                return True
            return False
    return False


class _FnPass:
    def __init__(self, tf: TaintFacts, facts: CodeFacts, fn: FuncInfo, ff: FileFacts):
        self.tf, self.facts, self.fn, self.ff = tf, facts, fn, ff
        self.env = tf.env.setdefault(fn.qualname, {})
        self.changed = False
        self.source_ctx = True
        self.train_depth = 0

    # --- helpers -------------------------------------------------------------------------
    def sink(self, table: dict, node, labels: frozenset):
        if self.train_depth:
            return  # training-phase code (``self.training`` arm) is not evaluation
        old = table.get(id(node))
        if old is None:
            table[id(node)] = Sink(self.fn, self.ff, node, node.lineno, labels)
        elif not labels <= old.labels:
            old.labels = old.labels | labels

    def site(self, node) -> str:
        return f"{self.fn.qualname}:{getattr(node, 'lineno', self.fn.line)}"

    def bind(self, name: str, labels: frozenset):
        if not labels:
            return
        old = self.env.get(name, frozenset())
        new = old | labels
        if new != old:
            self.env[name] = new
            self.changed = True

    def bind_attr(self, attr: str, labels: frozenset):
        if not labels:
            return
        old = self.tf.attrs.get(attr, frozenset())
        new = old | labels
        if new != old:
            self.tf.attrs[attr] = new
            self.changed = True

    # --- expressions ---------------------------------------------------------------------
    def ev(self, node) -> frozenset:
        if node is None:
            return frozenset()
        m = getattr(self, "ev_" + type(node).__name__, None)
        if m is not None:
            return m(node)
        out = frozenset()
        for ch in ast.iter_child_nodes(node):
            if isinstance(ch, ast.expr):
                out |= self.ev(ch)
        return out

    def ev_Constant(self, node):
        return frozenset()

    def ev_Lambda(self, node):
        return frozenset()

    def _closure_labels(self, name: str) -> frozenset:
        """A name this function does not bind: a free variable of the enclosing function (closure),
        or a nested function it returns (its return labels)."""
        nested = f"{self.fn.qualname}.{name}"
        if nested in self.tf.analysed:
            return frozenset().union(*self.tf.returns.get(nested, [frozenset()]))
        if name in self.own_names:
            return frozenset()  # a parameter or local of this function (not yet labelled): never the outer one
        outer = self.fn.qualname.rpartition(".")[0]
        if outer and outer in self.tf.env and not self.fn.cls:
            return self.tf.env[outer].get(name, frozenset())
        return frozenset()

    def ev_Name(self, node: ast.Name):
        labels = self.env.get(node.id)
        if labels is None:
            labels = self._closure_labels(node.id)
        if self.source_ctx and TARGET_NAME.match(node.id) and not NOT_TARGET.search(node.id) \
                and node.id not in self.float_locals:
            labels = labels | {T}
        if VAL_TOKENS.search(node.id) and node.id not in self.accounted:
            labels = labels | {V}
        return labels

    def ev_Attribute(self, node: ast.Attribute):
        if node.attr in NO_TAINT_ATTRS:
            return frozenset()
        if isinstance(node.value, ast.Name) and node.value.id == "self":
            got = self.tf.attrs.get(node.attr, frozenset())
            return got | {V} if VAL_ATTR.match(node.attr) else got
        # field-sensitive by attribute name: ``obj.upcoming = window[1:]`` is read back as ``self.upcoming``
        base = self.ev(node.value)
        if node.attr in self.tf.self_attrs:
            # a field the program's classes set: its own labels decide (``data.byte_lut`` of an object that also
            # holds the stream is a table, not the stream)
            base = base - {V}
        base = base | self.tf.attrs.get(node.attr, frozenset())
        if VAL_ATTR.match(node.attr):
            base = base | {V}
        if node.attr == "T":
            return base
        if TARGET_NAME.match(node.attr) and not NOT_TARGET.search(node.attr) and self.source_ctx \
                and not isinstance(node.value, ast.Call):
            base = base | {T}
        return base

    def _target_slice(self, node: ast.Subscript, base: frozenset) -> bool:
        """``val_tokens[i + 1]``, ``tokens[s + 1 : e + 1]``, ``chunk[1:]``: the next tokens of the stream."""
        if V not in base:
            return False
        sl = node.slice
        parts = sl.elts if isinstance(sl, ast.Tuple) else [sl]
        last = parts[-1]

        def plus_one(e):
            return (isinstance(e, ast.BinOp) and isinstance(e.op, ast.Add) and isinstance(e.right, ast.Constant)
                    and e.right.value == 1) or (isinstance(e, ast.Constant) and e.value == 1)

        if isinstance(last, ast.Slice):
            # ``s[i - k + 1 : i + 1]`` is the k tokens ending at i (a context), not the next tokens
            looks_back = last.lower is not None and any(isinstance(b, ast.BinOp) and isinstance(b.op, ast.Sub)
                                                        for b in ast_walk(last.lower))
            return last.lower is not None and plus_one(last.lower) and not looks_back
        return plus_one(last) and not isinstance(last, ast.Constant)

    def ev_Subscript(self, node: ast.Subscript):
        base = self.ev(node.value)
        parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        idx = frozenset()
        for part in parts:  # slices are ranges of positions, not keys
            lab = self.ev(part)
            if not isinstance(part, ast.Slice):
                idx |= lab
        out = base
        if self.source_ctx and self._target_slice(node, base):
            out = (out - {V}) | {T}
        if P in idx and V in base:
            out = (out - {V}) | {T}
        elif V in base and isinstance(node.slice, ast.Name) and node.slice.id in self.prev_idx:
            out = (out - {V}) | {T}  # the stream at ``pos`` where the model reads it at ``pos - 1``: the next token
        idx = idx - {P}
        if not idx:
            return out
        tname = call_name(node.value).rsplit(".", 1)[-1] if not isinstance(node.value, ast.Subscript) else \
            call_name(node.value.value).rsplit(".", 1)[-1]
        hashed = [l for l in idx if l[0] == "H"]
        raw_t = has(idx, "T")
        counted = tname in _counted_tables(self.facts, self.tf)  # the program counts into its cells (by value)
        count_table = raw_t and (counted or bool(TABLE_NAME.search(tname or "")) and not PROB_NAME.search(tname or "")
                                 and not LUT_NAME.search(tname or "")) and not has(base, "T")
        if (hashed and not has(base, "T")) or count_table:
            hp = paths(hashed, "H")[0] if hashed else (self.site(node),)
            if id(node) not in self.tf.key_reads:
                self.tf.key_reads[id(node)] = KeyRead(self.fn, self.ff, node, node.lineno, hp, bool(hashed))
            return out | {(Taint.K, hp)}
        if raw_t and (PROB_NAME.search(tname or "") or has(base, "S")):
            return (out - {T}) | {S}
        # a property of the target (LUT value, byte count, boundary flag) or an element of it
        keep = {l for l in idx if l[0] in ("T", "K")}
        return out | keep

    def ev_BinOp(self, node: ast.BinOp):
        if isinstance(node.op, ast.Div) and self._row_normalized(node):
            # ``(cells[r, y] + a) / (sums[r] + a * V)`` with ``sums`` kept as the row sums of ``cells``: a proper
            # distribution over the row's V tokens read at y (a score of a normalized object, like a gather)
            out = self.ev(node.left) | self.ev(node.right)
            return frozenset(l for l in out if l[0] not in ("K", "T", "H")) | {S}
        if isinstance(node.op, ast.Add) and self.source_ctx:
            # ``arange(s, e) + start + 1``: the positions of the next tokens, however the offset is spelled
            terms, todo = [], [node]
            while todo:
                t = todo.pop()
                if isinstance(t, ast.BinOp) and isinstance(t.op, ast.Add):
                    todo += [t.left, t.right]
                else:
                    terms.append(t)
            if any(isinstance(t, ast.Constant) and t.value == 1 for t in terms) and any(
                    isinstance(t, ast.Call) and call_name(t.func).rsplit(".", 1)[-1] == "arange" for t in terms):
                for t in terms:
                    self.ev(t)
                return frozenset({P})
        a, b = self.ev(node.left) - {P, V}, self.ev(node.right) - {P, V}  # pos - k: context positions; arithmetic on the stream is not the stream
        out = a | b
        if isinstance(node.op, HASH_OPS):
            # one side is the target, the other is not the same target: a target-keyed combination
            for side, other, other_node in (((a, b, node.right), (b, a, node.left)) if not (has(a, "H") or has(b, "H")) else ()):
                if has(side, "T") and not has(other, "T") and not isinstance(other_node, ast.Constant) \
                        and not isinstance(node.op, ast.Sub):
                    out = out | {(Taint.H, (self.site(node),))}
                    break
                if has(side, "T") and isinstance(node.op, (ast.BitXor, ast.Mult)) and isinstance(other_node, (ast.Constant, ast.Subscript, ast.Name)):
                    # y * PRIME / y ^ MASK: the target hashed with a constant
                    if not (isinstance(other_node, ast.Constant) and other_node.value in (1, 0, -1)):
                        out = out | {(Taint.H, (self.site(node),))}
                        break
            for side in (a, b):
                if has(side, "H"):
                    out = out | {l for l in side if l[0] == "H"}
        return out

    def ev_Call(self, node: ast.Call):
        name = call_name(node.func)
        short = name.rsplit(".", 1)[-1]
        if name == "getattr" and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) \
                and isinstance(node.args[1].value, str):
            return self.ev(ast.Attribute(value=node.args[0], attr=node.args[1].value, ctx=ast.Load()))
        if name == "setattr" and len(node.args) == 3 and isinstance(node.args[1], ast.Constant) \
                and isinstance(node.args[1].value, str):
            self.bind_attr(node.args[1].value, self.ev(node.args[2]))
            return frozenset()
        if isinstance(node.func, ast.Call):  # ``keyer(t)(c)``: the inner call builds the function (a closure)
            out = self.ev(node.func)
            for a in node.args:
                out |= self.ev(a)
            return out
        if isinstance(node.func, ast.Name) and node.func.id in self.lambdas:
            return self._call_lambda(self.lambdas[node.func.id], node)
        if isinstance(node.func, ast.Name) and node.func.id in self.aliases:
            short, pre_args, pre_kws = self.aliases[node.func.id]
            synth = self._synth.get(id(node))
            if synth is None:
                synth = ast.Call(func=ast.Name(id=short, ctx=ast.Load()), args=list(pre_args) + list(node.args),
                                 keywords=list(pre_kws) + list(node.keywords))
                synth.lineno, synth.col_offset = node.lineno, node.col_offset
                self._synth[id(node)] = synth
            node, name = synth, short
        elif isinstance(node.func, ast.Name) and node.func.id in self.lib_aliases:
            name = self.lib_aliases[node.func.id]
            short = name.rsplit(".", 1)[-1]
        args = [self.ev(a) for a in node.args]
        kws = {k.arg: self.ev(k.value) for k in node.keywords}
        recv = self.ev(node.func.value) if isinstance(node.func, ast.Attribute) else frozenset()
        everything = recv.union(*args, *kws.values()) if (args or kws) else recv
        if short == "arange" and node.args and self.source_ctx and (_plus_one(node.args[0]) or (
                len(node.args) > 1 and isinstance(node.args[0], ast.Constant) and node.args[0].value == 1)):
            return frozenset({P})  # positions of the next tokens: the scored targets' positions
        if short in ("index_select", "take", "take_along_dim", "take_along_axis", "gather") and P in everything \
                and V in everything:
            return frozenset({T})  # the stream read at the next positions
        if short == "roll" and V in everything and _shift_minus_one(node):
            return (everything - {V}) | {T}  # np.roll(tokens, -1): the next token at every position
        loads_val = self.tf.loads_val.get(id(node))
        if loads_val is None:  # computed once per call node (the fixpoint revisits every call)
            loads_val = bool(VAL_LOAD.search(short)) or any(
                isinstance(a, ast.Constant) and isinstance(a.value, str) and VAL_PATH.search(a.value) for a in ast_walk(node)) or any(
                isinstance(a, (ast.Attribute, ast.Name)) and (VAL_FILE.search(a.attr if isinstance(a, ast.Attribute) else a.id)
                                                              or (a.attr if isinstance(a, ast.Attribute) else a.id) in self.tf.val_paths)
                for x in node.args for a in ast_walk(x))
            self.tf.loads_val[id(node)] = loads_val
        if loads_val:
            everything = everything | {V}
        elif V in everything and short not in VIEW_CALLS:
            everything = everything - {V}  # a model call on the stream is not the stream
        if short in NO_TAINT_CALLS:
            return frozenset()
        if (name.endswith("add.at") or short in ("bincount", "scatter_add_", "index_add_", "scatter_add", "index_put_")) \
                and has(everything, "H") and not self._exact_pair_update(node, short, everything) \
                and not self._row_sum_update(node, short):
            self.sink(self.tf.hashed_updates, node, everything)
        if short in LOG_CALLS and (args or recv):
            inner = everything
            if has(inner, "K") or has(inner, "H"):
                self.sink(self.tf.log_sinks, node, inner)
        if short in ("append", "extend", "insert", "appendleft") and isinstance(node.func, ast.Attribute):
            root = node.func.value
            while isinstance(root, (ast.Attribute, ast.Subscript)):
                root = root.value
            if isinstance(root, ast.Name) and root.id != "self":
                self.bind(root.id, frozenset().union(*args) if args else frozenset())
            return frozenset()
        if short == "get" and args and isinstance(node.func, ast.Attribute) and (has(args[0], "T") or has(args[0], "H")) \
                and not has(recv, "T") and not self._read_for_update(node):
            hp = paths(args[0], "H")
            hp = hp[0] if hp else (self.site(node),)
            if id(node) not in self.tf.key_reads:
                self.tf.key_reads[id(node)] = KeyRead(self.fn, self.ff, node, node.lineno, hp, bool(paths(args[0], "H")))
            return recv | {(Taint.K, hp)}
        targets = self.facts.resolve(short, node, self.fn) if short not in ("get", "items", "append", "to", "float") else []
        targets = [t for t in targets if t.qualname in self.tf.analysed]
        if targets:
            out = frozenset()
            for t in targets:
                self._bind_params(t, node, args, kws)
                for r in self.tf.returns.get(t.qualname, []):
                    out |= r
            # the program's own loader called on a validation path returns the stream, whatever its locals are called
            if loads_val or self._holds_stream(targets):
                out = out | {V}
            return self._hop(out, node)
        if short in SCORE_CALLS:
            return frozenset({S}) | {l for l in everything if l[0] == "K"}
        if short in ("where",) and node.args:
            cond = args[0]
            if has(cond, "T") and not has(cond, "S"):
                self.sink(self.tf.conditions, node, cond)
        return everything

    def _exact_pair_update(self, node: ast.Call, short: str, labels: frozenset) -> bool:
        """``bincount(row * V + tok, minlength=V * V)``, ``A.view(-1).scatter_add_(0, row * V + tok, w)`` with A
        allocated with V columns: the update writes cell (row, tok) of a table whose rows are V wide, whatever
        the row is (a context, or a hash of it): a row/column count table, not a hashed (context, target) key
        (PR #704's exact bigram, PR #1879's online bigram). Whether its reads are normalized over the row is for
        the normalization rules."""
        if short == "bincount" and node.args:
            idx = node.args[0]
            minlength = next((k.value for k in node.keywords if k.arg == "minlength"), None)  # (args[1] is weights)
            if minlength is None:
                return False
            layout = {ast.unparse(f) for f in _factors(minlength)}
        elif short in ("scatter_add_", "index_add_") and len(node.args) >= 2 and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Call) and isinstance(node.func.value.func, ast.Attribute) \
                and node.func.value.func.attr in ("view", "reshape", "flatten", "ravel"):
            idx = node.args[1]
            layout = _columns(self.facts, node.func.value.func.value)
        else:
            return False
        expr = _unique_def(self.fn, idx)
        originals = None
        for _ in range(4):
            if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) \
                    and expr.func.attr in ("long", "int", "to", "astype", "view", "reshape", "flatten"):
                expr = _unique_def(self.fn, expr.func.value)
            elif isinstance(expr, ast.Call):  # a helper that returns the index: its return, with this call's arguments
                originals = list(expr.args) + [k.value for k in expr.keywords]
                expr = self._inlined(expr) or expr
                break
        if not (layout and isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add)):
            return False
        for prod, col in ((expr.left, expr.right), (expr.right, expr.left)):
            if originals is not None and not any(col is a for a in originals):
                continue  # only this call's own argument nodes are evaluated (never a copy of the helper's tree)
            if isinstance(prod, ast.BinOp) and isinstance(prod.op, ast.Mult) and not has(self.ev(col), "H") \
                    and any(_aliases(self.facts, ast.unparse(f)) & layout for f in (prod.left, prod.right)):
                return True
        return False

    def _row_normalized(self, node: ast.BinOp) -> bool:
        """The ratio is ``(C[r, y] + a) / (R[r] + a * V)`` (``a`` may be absent, ``R[r]`` may be clamped from
        below): ``C`` is a table allocated with V columns, ``R`` is updated exactly where and by what ``C`` is
        (its row sums), and the row index ``r`` does not carry the target. Then Σ_v p(v) ≤ 1 over the row."""
        num, a = _split_add(node.left)
        den, b = _split_add(node.right)
        num, nfn = self._resolve(num)
        den, dfn = self._resolve(den)
        if nfn is not dfn:
            return False
        num = _strip(num)
        den = _strip_clamp(_strip(den))
        if not (isinstance(num, ast.Subscript) and isinstance(num.slice, ast.Tuple) and len(num.slice.elts) == 2):
            return False
        row, _col = num.slice.elts
        own_sum = _row_sum_call(den)  # ``C[r].sum(-1)``: the row's own sum, computed here
        if own_sum is not None:
            if ast.unparse(own_sum.value) != ast.unparse(num.value) or ast.unparse(own_sum.slice) != ast.unparse(row):
                return False
            ckey = rkey = None
        else:
            if not (isinstance(den, ast.Subscript) and not isinstance(den.slice, (ast.Tuple, ast.Slice))):
                return False
            if ast.unparse(row) != ast.unparse(den.slice) or isinstance(row, ast.Slice):
                return False
            ckey, rkey = _table_key(num.value), _table_key(den.value)
            if not ckey or not rkey or ckey == rkey:
                return False
        width = _columns(self.facts, num.value)
        if not width:
            return False
        if a is not None:  # the smoothing over V columns: b = a * V
            if not (isinstance(b, ast.BinOp) and isinstance(b.op, ast.Mult)):
                return False
            fs = [b.left, b.right]
            if not any(ast.unparse(f) == ast.unparse(a) and _aliases(self.facts, ast.unparse(g)) & width
                       for f, g in (fs, fs[::-1])):
                return False
        elif b is not None and not (isinstance(b, ast.Constant) and isinstance(b.value, (int, float)) and b.value >= 0):
            return False
        if nfn is self.fn:
            rl = self.ev(row)
        else:  # the ratio sits in a helper the row's function passes the reads to: that function's labels
            env = self.tf.env.get(nfn.qualname, {})
            rl = frozenset().union(*(env.get(x.id, frozenset()) for x in ast_walk(row) if isinstance(x, ast.Name)))
        if has(rl, "T") or has(rl, "H"):
            return False
        return ckey is None or row_sums_of(self.facts, self.tf, ckey, rkey)

    def _resolve(self, e):
        """(value, function it is written in): a local assigned once stands for its value; a parameter of a
        helper called from one place stands for the argument there (``ratio(hit, tot)``)."""
        e = _strip(e)
        if isinstance(e, ast.Name) and e.id in self.fn.params:
            sites = [(c, f) for f in self.facts.functions.values() for short, c in f.calls
                     if short == self.fn.short and self.fn in self.facts.resolve(short, c, f)]
            params = [p for p in self.fn.params if p not in ("self", "cls")] if self.fn.cls else list(self.fn.params)
            if len(sites) == 1 and e.id in params:
                c, f = sites[0]
                i = params.index(e.id)
                arg = c.args[i] if i < len(c.args) and not any(isinstance(x, ast.Starred) for x in c.args) else \
                    next((k.value for k in c.keywords if k.arg == e.id), None)
                if arg is not None:
                    return _unique_def(f, _strip(arg)), f
        return _unique_def(self.fn, e), self.fn

    def _row_sum_update(self, node: ast.Call, short: str) -> bool:
        """``R.scatter_add_(0, r, w)`` beside ``C.view(-1).scatter_add_(0, r * V + tok, w)``, with R the row sums of
        C everywhere (``row_sums_of``): a context-row total, not a (context, target) key."""
        if short not in ("scatter_add_", "index_add_") or len(node.args) < 3 or not isinstance(node.func, ast.Attribute):
            return False
        rkey = _table_key(node.func.value)
        if not rkey:
            return False
        writes = table_writes(self.facts, self.tf)
        mine = (self.fn.qualname, "row", ast.unparse(node.args[1]), ast.unparse(node.args[2]))
        if mine not in writes.get(rkey, []):
            return False
        return any((self.fn.qualname, "cell", mine[2], mine[3]) in ws and row_sums_of(self.facts, self.tf, ckey, rkey)
                   for ckey, ws in writes.items() if ckey != rkey)

    def _inlined(self, call: ast.Call):
        return _inline_call(self.facts, self.fn, call)

    def _holds_stream(self, targets) -> bool:
        """``data = ValidationData(h, device)`` whose ``__init__`` stores on ``self`` what it loads from a
        validation path: the instance holds the validation stream (passing it passes the stream), whatever
        the class and fields are called."""
        for t in targets:
            if t.short != "__init__" or not t.cls:
                continue
            for n in _walk_own_fn(t.node):
                if isinstance(n, (ast.Assign, ast.AnnAssign)):
                    for tg in (n.targets if isinstance(n, ast.Assign) else [n.target]):
                        # the field is loaded from a validation path right here (not a ``tokens`` local of a shard reader)
                        if isinstance(tg, ast.Attribute) and isinstance(tg.value, ast.Name) and tg.value.id == "self" \
                                and n.value is not None and any(isinstance(c, ast.Call) and self.tf.loads_val.get(id(c))
                                                                and not PATH_CALLS.search(call_name(c.func))
                                                                for c in ast_walk(n.value)):
                            return True
        return False

    def _read_for_update(self, node: ast.Call) -> bool:
        """``counts[y] = counts.get(y, 0) + 1``: reading the old count to write it back."""
        p = self.ff.parent(node)
        while p is not None and not isinstance(p, ast.stmt):
            p = self.ff.parent(p)
        if isinstance(p, ast.Assign) and len(p.targets) == 1 and isinstance(p.targets[0], ast.Subscript):
            return ast.unparse(p.targets[0].value) == ast.unparse(node.func.value)
        return False

    def _hop(self, labels: frozenset, call: ast.Call) -> frozenset:
        """Labels returned through a call get the call site prepended to their path. Labels that
        entered the callee through an argument go back only to the call site they came from
        (one level of call-site sensitivity: a shared helper does not leak one caller's keys
        into another caller)."""
        out = set()
        site = self.site(call)
        marker = IN + site
        for kind, path in labels:
            if path and path[-1].startswith(IN):
                if path[-1] == marker:
                    out.add((kind, path[:-1]))
                continue
            if kind in ("H", "K") and len(path) < MAX_PATH and (not path or path[0] != site):
                out.add((kind, (site,) + path))
            else:
                out.add((kind, path))
        return frozenset(out)

    def _bind_params(self, t: FuncInfo, call: ast.Call, args, kws):
        params = list(t.params)
        if t.cls and params and params[0] in ("self", "cls"):
            params = params[1:]
        pm = self.tf.params.setdefault(t.qualname, {})
        marker = IN + self.site(call)
        args = [frozenset((k, p + (marker,)) if k in ("H", "K") and len(p) < MAX_PATH else (k, p) for k, p in lab)
                for lab in args]
        kws = {k: frozenset((kk, p + (marker,)) if kk in ("H", "K") and len(p) < MAX_PATH else (kk, p) for kk, p in lab)
               for k, lab in kws.items()}
        for i, lab in enumerate(args):
            if i < len(params) and lab:
                self._merge_param(pm, params[i], lab)
        for k, lab in kws.items():
            if k and k in t.params and lab:
                self._merge_param(pm, k, lab)

    def _merge_param(self, pm, name, lab):
        lab = frozenset(l for l in lab if l[0] != "S")
        old = pm.get(name, frozenset())
        if not lab <= old:
            pm[name] = old | lab
            self.changed = True

    def ev_Compare(self, node: ast.Compare):
        out = self.ev(node.left)
        for c in node.comparators:
            out |= self.ev(c)
        return frozenset(l for l in out if l[0] in ("T", "K", "H")) if out else out

    def ev_IfExp(self, node: ast.IfExp):
        cond = self.ev(node.test)
        if has(cond, "T"):
            self.sink(self.tf.conditions, node, cond)
        return self.ev(node.body) | self.ev(node.orelse)

    def _comp(self, node):
        out = frozenset()
        for g in node.generators:
            it = self.ev(g.iter)
            self.assign(g.target, it)
            out |= it
        if isinstance(node, ast.DictComp):
            return out | self.ev(node.key) | self.ev(node.value)
        return out | self.ev(node.elt)

    ev_ListComp = ev_SetComp = ev_GeneratorExp = ev_DictComp = _comp

    # --- statements ----------------------------------------------------------------------
    def assign(self, target, labels: frozenset, value_node=None):
        if isinstance(target, ast.Name):
            self.bind(target.id, labels - {V} if target.id in self.accounted else labels)
        elif isinstance(target, (ast.Tuple, ast.List)):
            per = None
            if isinstance(value_node, (ast.Tuple, ast.List)) and len(value_node.elts) == len(target.elts):
                per = [self.ev(e) for e in value_node.elts]
            elif isinstance(value_node, ast.Call):
                per = self._call_positions(value_node, len(target.elts))
            for i, t in enumerate(target.elts):
                self.assign(t, per[i] if per is not None else labels)
        elif isinstance(target, ast.Starred):
            self.assign(target.value, labels)
        elif isinstance(target, ast.Attribute):
            if isinstance(target.value, ast.Name) and target.value.id == "self":
                self.bind_attr(target.attr, labels)
            else:
                self.bind_attr(target.attr, frozenset(l for l in labels if l[0] in ("T", "H")))
                root = target.value
                while isinstance(root, (ast.Attribute, ast.Subscript)):
                    root = root.value
                if isinstance(root, ast.Name):
                    self.bind(root.id, labels)
        elif isinstance(target, ast.Subscript):
            root = target.value
            while isinstance(root, (ast.Attribute, ast.Subscript)):
                root = root.value
            if isinstance(root, ast.Name) and root.id != "self":
                self.bind(root.id, frozenset(l for l in labels if l[0] != "S"))

    def _call_positions(self, call: ast.Call, n: int):
        short = call_name(call.func).rsplit(".", 1)[-1]
        targets = [t for t in self.facts.resolve(short, call, self.fn) if t.qualname in self.tf.analysed]
        per = None
        for t in targets:
            rets = self.tf.returns.get(t.qualname)
            if rets and len(rets) == n + 1:  # [all, pos0, pos1, ...]
                hop = [self._hop(r, call) for r in rets[1:]]
                per = hop if per is None else [a | b for a, b in zip(per, hop)]
            elif rets:
                return None
        if per is not None:
            self.ev(call)  # still bind params
        return per

    def stmt(self, node):
        if isinstance(node, ast.Assign):
            lab = self.ev(node.value)
            for t in node.targets:
                self.assign(t, lab, node.value)
        elif isinstance(node, ast.AnnAssign):
            if node.value is not None:
                self.assign(node.target, self.ev(node.value), node.value)
        elif isinstance(node, ast.AugAssign):
            lab = self.ev(node.value)
            if isinstance(node.target, ast.Name):
                self.bind(node.target.id, lab)
                if has(lab, "K") and not isinstance(node.op, (ast.BitXor,)):
                    self.sink(self.tf.log_sinks, node, lab) \
                        if re.search(r"(loss|nll|bits|bpb)", node.target.id, re.I) else None
            # subscript / attribute targets are table updates: never taint the table
            if isinstance(node.target, ast.Subscript):
                sl = node.target.slice  # slices are ranges of positions (``W[:, i2:] -= …``), not keys
                idx = frozenset().union(*(self.ev(p) for p in (sl.elts if isinstance(sl, ast.Tuple) else [sl])
                                          if not isinstance(p, ast.Slice)))
                if has(idx, "H"):
                    self.sink(self.tf.hashed_updates, node, idx)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            self.assign(node.target, self.ev(node.iter))
            self.block(node.body)
            self.block(node.orelse)
        elif isinstance(node, ast.While):
            self.ev(node.test)
            self.block(node.body)
            self.block(node.orelse)
        elif isinstance(node, ast.If):
            cond = self.ev(node.test)
            if has(cond, "T") and not has(cond, "S"):
                self.sink(self.tf.conditions, node, cond)
            arm = training_arm(node.test)  # ``if self.training:``: that arm runs only while training
            self.train_depth += arm == "body"
            self.block(node.body)
            self.train_depth -= arm == "body"
            self.train_depth += arm == "else"
            self.block(node.orelse)
            self.train_depth -= arm == "else"
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for it in node.items:
                lab = self.ev(it.context_expr)
                if it.optional_vars is not None:
                    self.assign(it.optional_vars, lab)
            self.block(node.body)
        elif isinstance(node, ast.Try):
            self.block(node.body)
            for h in node.handlers:
                self.block(h.body)
            self.block(node.orelse)
            self.block(node.finalbody)
        elif isinstance(node, ast.Return):
            if node.value is not None:
                self.ret(node.value)
        elif isinstance(node, ast.Expr):
            self.ev(node.value)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return  # analysed on their own
        else:
            for ch in ast.iter_child_nodes(node):
                if isinstance(ch, ast.expr):
                    self.ev(ch)
                elif isinstance(ch, ast.stmt):
                    self.stmt(ch)

    def ret(self, value):
        rets = self.tf.returns.setdefault(self.fn.qualname, [])
        if isinstance(value, ast.Tuple):
            per = [self.ev(e) for e in value.elts]
            allv = frozenset().union(*per) if per else frozenset()
            new = [allv] + per
        else:
            allv = self.ev(value)
            new = [allv]
        if not rets:
            rets.extend(new)
            self.changed = self.changed or any(new)
            return
        if len(rets) != len(new):
            merged = frozenset().union(*rets, *new)
            if rets != [merged]:
                rets[:] = [merged]
                self.changed = True
            return
        for i, lab in enumerate(new):
            if not lab <= rets[i]:
                rets[i] = rets[i] | lab
                self.changed = True

    def block(self, stmts):
        for s in stmts:
            self.stmt(s)

    def _call_lambda(self, lam: ast.Lambda, call: ast.Call) -> frozenset:
        params = [a.arg for a in lam.args.posonlyargs + lam.args.args]
        saved = {p: self.env.get(p) for p in params}
        for i, p in enumerate(params):
            lab = self.ev(call.args[i]) if i < len(call.args) else frozenset()
            for k in call.keywords:
                if k.arg == p:
                    lab = self.ev(k.value)
            self.env[p] = lab
        try:
            return self.ev(lam.body)
        finally:
            for p, v in saved.items():
                if v is None:
                    self.env.pop(p, None)
                else:
                    self.env[p] = v

    def _scan_aliases(self):
        """``mk = lambda c, t: …``, ``key_of = functools.partial(f, salt=x)``, ``run = helper``: calls
        through these names reach the lambda body or the function, with the bound arguments."""
        self.lambdas, self.aliases, self._synth, self.lib_aliases = {}, {}, {}, {}
        # ``x = stream[pos - 1]`` in this function: ``stream[pos]`` is the token after the model's input
        self.prev_idx = {n.slice.left.id for n in _walk_own_fn(self.fn.node)
                         if isinstance(n, ast.Subscript) and isinstance(n.slice, ast.BinOp) and isinstance(n.slice.op, ast.Sub)
                         and isinstance(n.slice.left, ast.Name) and isinstance(n.slice.right, ast.Constant) and n.slice.right.value == 1}
        # ... or in a helper it hands ``pos`` to (``model(inputs_at(stream, pos))`` reading ``stream[pos - 1]``)
        for n in _walk_own_fn(self.fn.node):
            if isinstance(n, ast.Call) and any(isinstance(a, ast.Name) for a in n.args):
                for t in self.facts.resolve(call_name(n.func).rsplit(".", 1)[-1], n, self.fn):
                    prev = _prev_params(t) if t is not self.fn else ()
                    params = [p for p in t.params if p not in ("self", "cls")] if t.cls else list(t.params)
                    self.prev_idx |= {a.id for a, p in zip(n.args, params) if isinstance(a, ast.Name) and p in prev}
        for n in _walk_own_fn(self.fn.node):
            if not (isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)):
                continue
            name, v = n.targets[0].id, n.value
            if isinstance(v, ast.Lambda):
                self.lambdas[name] = v
            elif isinstance(v, ast.Call) and call_name(v.func).rsplit(".", 1)[-1] == "partial" and v.args:
                f = call_name(v.args[0]).rsplit(".", 1)[-1]
                if f in self.facts.by_short:
                    self.aliases[name] = (f, v.args[1:], v.keywords)
            elif isinstance(v, (ast.Name, ast.Attribute)):
                f = call_name(v).rsplit(".", 1)[-1]
                if f in self.facts.by_short and f != name and name not in self.facts.by_short:
                    self.aliases[name] = (f, [], [])
                elif isinstance(v, ast.Attribute) and call_name(v).split(".", 1)[0] in LIB_MODULES:
                    # ``_log = math.log``: a call through the local is the library call, whatever it is called
                    self.lib_aliases[name] = call_name(v) if self.lib_aliases.get(name, call_name(v)) == call_name(v) else ""
        self.lib_aliases = {k: v for k, v in self.lib_aliases.items() if v}

    def run(self) -> bool:
        self.changed = False
        if not hasattr(self, "lambdas"):
            self._scan_aliases()
            self.float_locals = _float_locals(self.fn)
            self.own_names = _own_names(self.fn)
            self.accounted = accounted_names(self.facts, self.tf, self.fn)
        for p, lab in self.tf.params.get(self.fn.qualname, {}).items():
            self.bind(p, lab - {V} if p in self.accounted else lab)
        self.block(self.fn.node.body)
        return self.changed


_PREV: dict[int, tuple] = {}


def _is_float_value(v: ast.AST) -> bool:
    """A value that is a real number, never a token id: a true division, a float literal, ``float(...)``."""
    if isinstance(v, ast.BinOp) and isinstance(v.op, ast.Div):
        return True
    if isinstance(v, ast.Constant) and isinstance(v.value, float):
        return True
    return isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id == "float"


_COMBINE = {"cat", "stack", "concatenate", "hstack", "vstack", "clone", "copy", "detach", "contiguous", "to", "long", "int",
            "float", "cuda", "cpu", "view", "reshape", "unsqueeze", "squeeze", "flatten", "tolist", "numpy", "tensor",
            "as_tensor", "from_numpy", "asarray", "array", "list", "tuple", "pin_memory", "type", "expand", "repeat"}


def accounted_names(facts: CodeFacts, tf: TaintFacts, fn: FuncInfo, params: bool = True, depth: int = 0) -> frozenset:
    """Names of ``fn`` whose every value is accounted for without the validation stream: random draws, samples
    or the argmax of a model's distribution, constant fills, data read from a training path (a loader built on
    ``fineweb_train_*.bin`` and what it hands out), and what is built from those (concatenations, slices,
    lists they are appended to, program functions returning only such values). They are not the validation
    stream, whatever they are called or whatever a loader's locals are called (``calibration_tokens =
    train_loader.take(n)``, ``tokens = cat([tokens, multinomial(p, 1)])``). Parameters count when every call
    passes such a value."""
    key = f"{fn.qualname}|{int(params)}"
    got = tf.accounted.get(key)
    if got is not None:
        return got
    tf.accounted[key] = frozenset()  # a recursion guard while this one is built
    binds: dict[str, list] = {}
    for n in _walk_own_fn(fn.node):
        if isinstance(n, (ast.Assign, ast.AnnAssign)) and n.value is not None:
            for t in (n.targets if isinstance(n, ast.Assign) else [n.target]):
                if isinstance(t, ast.Name):
                    binds.setdefault(t.id, []).append(n.value)
                elif isinstance(t, (ast.Tuple, ast.List)):
                    for e in t.elts:  # ``x, y = loader.next_batch()``: each element is part of the value
                        if isinstance(e, ast.Name):
                            binds.setdefault(e.id, []).append(n.value)
        elif isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name):
            binds.setdefault(n.target.id, []).append(n.value)
        elif isinstance(n, (ast.For, ast.comprehension)):
            for e in ast_walk(n.target):
                if isinstance(e, ast.Name):
                    binds.setdefault(e.id, []).append(n.iter)
        elif isinstance(n, ast.withitem) and n.optional_vars is not None:
            for e in ast_walk(n.optional_vars):
                if isinstance(e, ast.Name):
                    binds.setdefault(e.id, []).append(n.context_expr)
        elif isinstance(n, ast.NamedExpr):
            binds.setdefault(n.target.id, []).append(n.value)
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in ("append", "extend", "insert") \
                and isinstance(n.func.value, ast.Name) and n.args:
            binds.setdefault(n.func.value.id, []).append(n.args[-1])
        elif isinstance(n, (ast.Global, ast.Nonlocal)):
            for name in n.names:
                binds.setdefault(name, []).append(None)  # shared with another scope: not followed
    plist = [p for p in fn.params if p not in ("self", "cls")] if fn.cls else list(fn.params)
    for p in fn.params:
        binds.setdefault(p, []).append(None)  # bound by the caller: decided below
    good = set(binds) - set(fn.params)  # parameters are decided by their call sites, below

    def ok(e) -> bool:
        return _accounted_expr(facts, tf, fn, good, depth, e)

    changed = True
    while changed:  # the greatest set closed under the bindings (``tokens = cat([tokens, draw])`` stays in)
        changed = False
        for name in list(good):
            if not all(ok(v) for v in binds[name]):
                good.discard(name)
                changed = True
    if params and plist:
        sites = [(c, f) for f in facts.functions.values() for short, c in f.calls
                 if short == fn.short and fn in facts.resolve(short, c, f)]
        if sites:
            for i, p in enumerate(plist):
                passed = []
                for c, f in sites:
                    a = c.args[i] if i < len(c.args) and not any(isinstance(x, ast.Starred) for x in c.args[:i + 1]) else \
                        next((k.value for k in c.keywords if k.arg == p), None)
                    passed.append((a, f))
                if all(a is not None and _accounted_expr(facts, tf, f, set(accounted_names(facts, tf, f, False, depth + 1)),
                                                         depth + 1, a) for a, f in passed) \
                        and all(ok(v) for v in binds[p] if v is not None and not _mentions_name(v, p)):
                    good.add(p)
    out = frozenset(good)
    tf.accounted[key] = out
    return out


def _accounted_expr(facts, tf, fn, good, depth, e) -> bool:
    """``e`` is a draw or training data (see ``accounted_names``), given the names ``good`` that are."""

    def ok(x):
        return _accounted_expr(facts, tf, fn, good, depth, x)

    if e is None:
        return False
    if isinstance(e, ast.Constant):
        return not (isinstance(e.value, str) and VAL_PATH.search(e.value))
    if isinstance(e, (ast.List, ast.Tuple, ast.Set)):
        return all(ok(x) for x in e.elts)
    if isinstance(e, ast.Name):
        return e.id in good
    if isinstance(e, ast.Starred):
        return ok(e.value)
    if isinstance(e, ast.Subscript):
        return ok(e.value)
    if isinstance(e, ast.Attribute):
        return ok(e.value) and e.attr not in tf.val_paths and not VAL_ATTR.match(e.attr)
    if isinstance(e, ast.BinOp):
        return ok(e.left) and ok(e.right)
    if isinstance(e, ast.UnaryOp):
        return ok(e.operand)
    if isinstance(e, (ast.ListComp, ast.GeneratorExp)):
        return ok(e.elt) and all(ok(g.iter) for g in e.generators)
    if isinstance(e, ast.Call):
        name = call_name(e.func)
        short = name.rsplit(".", 1)[-1]
        args = list(e.args) + [k.value for k in e.keywords]
        walked = [c for a in args for c in ast_walk(a)]
        if any(isinstance(c, ast.Constant) and isinstance(c.value, str) and VAL_PATH.search(c.value)
               or isinstance(c, ast.Attribute) and (c.attr in tf.val_paths or VAL_FILE.search(c.attr))
               or isinstance(c, ast.Name) and c.id in tf.val_paths for c in walked):
            return False  # anything handed a validation location
        if short in DRAW_CALLS:
            return True
        if any(isinstance(c, ast.Constant) and isinstance(c.value, str) and TRAIN_PATH.search(c.value)
               or isinstance(c, ast.Attribute) and c.attr in tf.train_paths
               or isinstance(c, ast.Name) and c.id in tf.train_paths for c in walked):
            return True  # a reader or loader over a training path
        recv = e.func.value if isinstance(e.func, ast.Attribute) else None
        if recv is not None and name.split(".", 1)[0] not in LIB_MODULES | {"numpy", "random"}:
            return ok(recv)  # a method of a loader over training data (or of a draw) hands out the same
        if short in _COMBINE:
            return bool(e.args) and all(ok(a) for a in e.args)
        own = [t for t in facts.resolve(short, e, fn) if t.qualname in tf.analysed and not t.cls]
        if own and depth < 2:
            return all(_returns_accounted(facts, tf, t, depth + 1, e, ok) for t in own)
        return False
    return False


def _unique_def(fn: FuncInfo, e: ast.AST) -> ast.AST:
    """A name assigned exactly once in ``fn`` (or only ever to the same expression) stands for its value; anything
    else is itself."""
    if not isinstance(e, ast.Name):
        return e
    defs = [n for n in _walk_own_fn(fn.node) if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For))
            and any(isinstance(x, ast.Name) and x.id == e.id and isinstance(x.ctx, ast.Store)
                    for t in ([n.target] if not isinstance(n, ast.Assign) else n.targets) for x in ast_walk(t))]
    # one definition, or copies of one (``x = f(y)`` again behind ``if False:``): the same value
    if defs and all(isinstance(d, ast.Assign) and len(d.targets) == 1 and isinstance(d.targets[0], ast.Name) for d in defs) \
            and len({ast.unparse(d.value) for d in defs}) == 1:
        return defs[0].value
    return e


def _inline_call(facts: CodeFacts, fn: FuncInfo, call: ast.Call):
    """The single ``return`` expression of the program function ``call`` reaches, its parameters replaced by the
    call's arguments (a fresh tree whose substituted parts are the call's own argument nodes; None when there
    is no single such function)."""
    import copy

    short = call_name(call.func).rsplit(".", 1)[-1]
    ts = [t for t in facts.resolve(short, call, fn) if not t.cls]
    if len(ts) != 1:
        return None
    rets = [n for n in _walk_own_fn(ts[0].node) if isinstance(n, ast.Return)]
    if len(rets) != 1 or rets[0].value is None or any(isinstance(a, ast.Starred) for a in call.args):
        return None
    bound = dict(zip(ts[0].params, call.args))
    bound.update({k.arg: k.value for k in call.keywords if k.arg})

    class _Sub(ast.NodeTransformer):
        def visit_Name(self, n):
            return bound.get(n.id, n)

    return _Sub().visit(copy.deepcopy(rets[0].value))


def _row_sum_call(e):
    """``C[r].sum(-1)`` / ``C[r].sum(dim=-1)`` / ``C[r].sum(axis=1)`` → the subscript ``C[r]``; else None."""
    dims = [a for a in getattr(e, "args", [])[:1]] + [k.value for k in getattr(e, "keywords", []) if k.arg in ("dim", "axis")]
    if isinstance(e, ast.Call) and isinstance(e.func, ast.Attribute) and e.func.attr == "sum" and len(dims) == 1 \
            and ast.unparse(dims[0]) in ("-1", "1"):
        sub = _strip(e.func.value)
        if isinstance(sub, ast.Subscript) and not isinstance(sub.slice, (ast.Tuple, ast.Slice)):
            return sub
    return None


def _split_add(e):
    """``x + c`` → (x, c); anything else → (e, None)."""
    if isinstance(e, ast.BinOp) and isinstance(e.op, ast.Add):
        return e.left, e.right
    return e, None


_CASTS = {"float", "double", "to", "type", "half", "long", "int", "detach", "clone", "contiguous"}


def _strip(e):
    while isinstance(e, ast.Call) and isinstance(e.func, ast.Attribute) and e.func.attr in _CASTS:
        e = e.func.value
    return e


def _strip_clamp(e):
    """``t.clamp(min=1)``, ``t.clamp_min(1)``, ``torch.clamp(t, min=1)``: a larger denominator (Σ p ≤ 1 still)."""
    if isinstance(e, ast.Call) and isinstance(e.func, ast.Attribute) and e.func.attr in ("clamp", "clamp_min", "clip") \
            and not any(k.arg == "max" for k in e.keywords) and len(e.args) <= 1 \
            and call_name(e.func).split(".", 1)[0] not in ("torch", "np", "numpy"):
        return _strip(e.func.value)
    return e


def _table_key(e) -> str | None:
    e = _strip(e)
    if isinstance(e, ast.Attribute):
        return e.attr
    if isinstance(e, ast.Name):
        return e.id
    return None


_FLAT = ("view", "reshape", "flatten", "ravel")


def table_writes(facts: CodeFacts, tf: TaintFacts) -> dict:
    """Every in-place write to a named table in the program: ``cell`` (row r, column c), ``row`` (row r) or
    ``other`` (anything else that changes it), with the row and the weight as written."""
    if tf.table_writes is not None:
        return tf.table_writes
    out: dict[str, list] = {}
    for fn in facts.functions.values():
        ff = facts.file_of(fn)
        for n in _walk_own_fn(fn.node):
            if isinstance(n, (ast.Call, ast.AugAssign, ast.Assign)) and _dead(facts, ff, n):
                continue  # a write that never runs (``if False:``, a switch off in the run) changes nothing
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute):
                recv, m = n.func.value, n.func.attr
                if m in ("scatter_add_", "index_add_") and len(n.args) >= 3:
                    if isinstance(recv, ast.Call) and isinstance(recv.func, ast.Attribute) and recv.func.attr in _FLAT:
                        key = _table_key(recv.func.value)
                        idx = _unique_def(fn, n.args[1])
                        if isinstance(idx, ast.Call) and not (isinstance(idx.func, ast.Attribute) and idx.func.attr in _CASTS):
                            idx = _inline_call(facts, fn, idx) or idx
                        rc = None
                        if isinstance(idx, ast.BinOp) and isinstance(idx.op, ast.Add):
                            for prod in (idx.left, idx.right):
                                if isinstance(prod, ast.BinOp) and isinstance(prod.op, ast.Mult):
                                    rc = prod
                                    break
                        if key:
                            out.setdefault(key, []).append(
                                (fn.qualname, "cell", ast.unparse(rc.left), ast.unparse(n.args[2])) if rc is not None
                                else (fn.qualname, "other", ast.unparse(n), ""))
                    elif _table_key(recv):
                        out.setdefault(_table_key(recv), []).append((fn.qualname, "row", ast.unparse(n.args[1]), ast.unparse(n.args[2])))
                elif m.endswith("_") and not m.startswith("_") and _table_key(recv) and not isinstance(recv, ast.Call):
                    key = _table_key(recv)
                    out.setdefault(key, []).append((fn.qualname, "other", m + ast.unparse(ast.Tuple(elts=list(n.args), ctx=ast.Load())), ""))
            elif isinstance(n, ast.AugAssign):
                t = n.target
                if isinstance(t, ast.Subscript) and _table_key(t.value):
                    parts = t.slice.elts if isinstance(t.slice, ast.Tuple) else [t.slice]
                    kind = "cell" if len(parts) == 2 else "row" if len(parts) == 1 else "other"
                    out.setdefault(_table_key(t.value), []).append((fn.qualname, kind, ast.unparse(parts[0]), ast.unparse(n.value)))
                elif _table_key(t) and not isinstance(t, ast.Name):
                    out.setdefault(_table_key(t), []).append((fn.qualname, "other", type(n.op).__name__ + ast.unparse(n.value), ""))
            elif isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Attribute):
                key = n.targets[0].attr
                v = n.value
                if isinstance(v, ast.Call) and call_name(v.func).rsplit(".", 1)[-1] not in _ALLOC:
                    v = _inline_call(facts, fn, v) or v  # allocated by a helper that returns ``zeros(...)``
                alloc = isinstance(v, ast.Call) and call_name(v.func).rsplit(".", 1)[-1] in _ALLOC
                out.setdefault(key, []).append((fn.qualname, "alloc" if alloc else "other", ast.unparse(n.value), ""))
    tf.table_writes = out
    return out


def _dead(facts: CodeFacts, ff: FileFacts, node: ast.AST) -> bool:
    p = ff.parent(node)
    while p is not None and not isinstance(p, (ast.If, ast.FunctionDef, ast.AsyncFunctionDef)):
        p = ff.parent(p)
    if not isinstance(p, ast.If):
        return False  # no guard: the function's own reachability is not this table's concern
    from auditor.policy import UNREACHABLE

    return facts.reach(node, ff).state == UNREACHABLE


def _counted_tables(facts: CodeFacts, tf: TaintFacts) -> frozenset:
    """Tables the program counts into cell by cell (``A.view(-1).scatter_add_(0, r * V + c, w)``, ``A[r, c] += 1``)."""
    if tf.counted is None:
        tf.counted = frozenset(k for k, ws in table_writes(facts, tf).items() if any(w[1] == "cell" for w in ws))
    return tf.counted


def row_sums_of(facts: CodeFacts, tf: TaintFacts, ckey: str, rkey: str) -> bool:
    """``rkey`` holds the row sums of ``ckey``: every write to the cells has a row write at the same row with the
    same weight in the same function and vice versa, and nothing else changes either (allocations aside)."""
    writes = table_writes(facts, tf)
    cw, rw = writes.get(ckey, []), writes.get(rkey, [])
    cells = sorted((f, r, w) for f, k, r, w in cw if k == "cell")
    rows = sorted((f, r, w) for f, k, r, w in rw if k == "row")
    if not cells or cells != rows:
        return False
    return not any(k not in ("cell", "alloc") for _f, k, _r, _w in cw) and not any(k not in ("row", "alloc") for _f, k, _r, _w in rw)


_ALLOC = {"zeros", "ones", "empty", "full"}


def _columns(facts: CodeFacts, table: ast.AST) -> set[str]:
    """The text of the last dimension ``table`` is allocated with (``torch.zeros(V, V)``, ``np.zeros((H, V))``),
    wherever the program allocates a name/attribute of that name; empty when none or when they disagree."""
    key = table.attr if isinstance(table, ast.Attribute) else table.id if isinstance(table, ast.Name) else None
    if key is None:
        return set()
    out = set()
    for ff in facts.files:
        if ff.tree is None or key not in ff.text:
            continue
        for n in ff.nodes:
            if not (isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.value, ast.Call)):
                continue
            t = n.targets[0]
            if not ((isinstance(t, ast.Attribute) and t.attr == key) or (isinstance(t, ast.Name) and t.id == key)):
                continue
            if call_name(n.value.func).rsplit(".", 1)[-1] not in _ALLOC or not n.value.args:
                return set()
            a0 = n.value.args[0]
            dims = a0.elts if isinstance(a0, (ast.Tuple, ast.List)) else [a for a in n.value.args if not isinstance(a, ast.Starred)]
            if isinstance(a0, (ast.Tuple, ast.List)) or call_name(n.value.func).rsplit(".", 1)[-1] != "full":
                out.add(ast.unparse(dims[-1]))
    return out if len(out) == 1 else set()


def _aliases(facts: CodeFacts, text: str) -> set[str]:
    """``self.V`` and what ``self.V = vocab_size`` gave it (the same width under two spellings)."""
    out = {text}
    if text.startswith("self.") and text.count(".") == 1:
        attr = text[5:]
        for ff in facts.files:
            if ff.tree is None or attr not in ff.text:
                continue
            for n in ff.nodes:
                if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Attribute) \
                        and n.targets[0].attr == attr and isinstance(n.targets[0].value, ast.Name) and n.targets[0].value.id == "self" \
                        and isinstance(n.value, (ast.Name, ast.Attribute, ast.Constant)):
                    out.add(ast.unparse(n.value))
    return out


def _factors(e: ast.AST) -> list:
    """``a * b * c`` → [a, b, c] (the expression itself when it is no product)."""
    if isinstance(e, ast.BinOp) and isinstance(e.op, ast.Mult):
        return _factors(e.left) + _factors(e.right)
    return [e]


def _mentions_name(e, name: str) -> bool:
    return any(isinstance(x, ast.Name) and x.id == name for x in ast_walk(e))


def _returns_accounted(facts, tf, t: FuncInfo, depth: int, call: ast.Call | None = None, ok_arg=None) -> bool:
    """Every ``return`` of ``t`` is accounted for; its parameters count when this call passes accounted values."""
    names = set(accounted_names(facts, tf, t, False, depth))
    if call is not None and ok_arg is not None:
        params = [p for p in t.params if p not in ("self", "cls")] if t.cls else list(t.params)
        for p, a in zip(params, call.args):
            if not isinstance(a, ast.Starred) and ok_arg(a):
                names.add(p)
        for k in call.keywords:
            if k.arg in params and ok_arg(k.value):
                names.add(k.arg)
    rets = [n.value for n in _walk_own_fn(t.node) if isinstance(n, ast.Return) and n.value is not None]
    return bool(rets) and all(_accounted_expr(facts, tf, t, names, depth, r) for r in rets)


def _own_names(fn: FuncInfo) -> frozenset:
    """Names local to ``fn`` by Python's scoping: its parameters and every name it binds (not ``global``/``nonlocal``)."""
    out, shared = set(fn.params), set()
    for n in _walk_own_fn(fn.node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
            out.add(n.id)
        elif isinstance(n, (ast.Global, ast.Nonlocal)):
            shared.update(n.names)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            out.update((a.asname or a.name).split(".")[0] for a in n.names)
    return frozenset(out - shared)


def _float_locals(fn: FuncInfo) -> frozenset:
    """Locals of ``fn`` (not parameters) whose every binding is a real number (``share = n * left / total``):
    such a value is not a token, so its name does not make it the target (PR #1812's ``target`` quota)."""
    bound: dict[str, bool] = {}
    for n in _walk_own_fn(fn.node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)) and n.id not in bound:
            bound[n.id] = False  # bound by something not read below (a parent binding is seen first)
        if isinstance(n, ast.Assign):
            ok = _is_float_value(n.value)
            for t in n.targets:
                if isinstance(t, ast.Name):
                    bound[t.id] = bound.get(t.id, True) and ok
                else:
                    for m in ast_walk(t):
                        if isinstance(m, ast.Name):
                            bound[m.id] = False
        elif isinstance(n, (ast.AnnAssign, ast.AugAssign)) and isinstance(n.target, ast.Name):
            ok = n.value is not None and (_is_float_value(n.value) or isinstance(n, ast.AugAssign)
                                          and isinstance(n.op, ast.Div))
            bound[n.target.id] = bound.get(n.target.id, True) and ok
        elif isinstance(n, (ast.For, ast.AsyncFor, ast.comprehension)):
            for m in ast_walk(n.target):
                if isinstance(m, ast.Name):
                    bound[m.id] = False
        elif isinstance(n, ast.withitem) and n.optional_vars is not None:
            for m in ast_walk(n.optional_vars):
                if isinstance(m, ast.Name):
                    bound[m.id] = False
        elif isinstance(n, ast.NamedExpr):
            bound[n.target.id] = bound.get(n.target.id, True) and _is_float_value(n.value)
        elif isinstance(n, (ast.Global, ast.Nonlocal)):
            for name in n.names:
                bound[name] = False
    params = set(fn.params)
    return frozenset(k for k, ok in bound.items() if ok and k not in params)


def _prev_params(fn: FuncInfo) -> frozenset:
    """Parameters ``p`` of ``fn`` read as ``stream[p - 1]`` (the model's input one before position p)."""
    got = _PREV.get(id(fn.node))
    if got is None or got[0] is not fn.node:
        params = set(fn.params)
        got = (fn.node, frozenset(n.slice.left.id for n in _walk_own_fn(fn.node)
                                  if isinstance(n, ast.Subscript) and isinstance(n.slice, ast.BinOp) and isinstance(n.slice.op, ast.Sub)
                                  and isinstance(n.slice.left, ast.Name) and n.slice.left.id in params
                                  and isinstance(n.slice.right, ast.Constant) and n.slice.right.value == 1))
        if len(_PREV) > 20000:
            _PREV.clear()
        _PREV[id(fn.node)] = got
    return got[1]


def build_taint(facts: CodeFacts) -> TaintFacts:
    tf = TaintFacts()
    for ff in facts.files:  # ``val_files = os.path.join(data_path, "fineweb_val_*.bin")``: whatever it is renamed to
        if ff.tree is None:
            continue
        for n in ast_walk(ff.tree):
            if isinstance(n, (ast.Assign, ast.AnnAssign)) and n.value is not None and any(
                    isinstance(c, ast.Constant) and isinstance(c.value, str) and VAL_PATH.search(c.value) for c in ast_walk(n.value)):
                for t in (n.targets if isinstance(n, ast.Assign) else [n.target]):
                    if isinstance(t, ast.Name):
                        tf.val_paths.add(t.id)
                    elif isinstance(t, ast.Attribute):
                        tf.val_paths.add(t.attr)
            elif isinstance(n, (ast.Assign, ast.AnnAssign)) and n.value is not None and any(
                    isinstance(c, ast.Constant) and isinstance(c.value, str) and TRAIN_PATH.search(c.value) for c in ast_walk(n.value)):
                for t in (n.targets if isinstance(n, ast.Assign) else [n.target]):
                    if isinstance(t, (ast.Name, ast.Attribute)):
                        tf.train_paths.add(t.id if isinstance(t, ast.Name) else t.attr)
    work: list[tuple[FuncInfo, FileFacts]] = []
    for ff in facts.files:
        if ff.tree is None:
            continue
        for fn in ff.functions.values():
            if fn.cls:
                tf.self_attrs |= {n.attr for n in _walk_own_fn(fn.node) if isinstance(n, ast.Attribute)
                                  and isinstance(n.ctx, ast.Store) and isinstance(n.value, ast.Name) and n.value.id == "self"}
            if _is_opaque(facts, fn):
                continue
            work.append((fn, ff))
            tf.analysed.add(fn.qualname)
    passes = [_FnPass(tf, facts, fn, ff) for fn, ff in work]
    for _ in range(8):
        changed = False
        for p in passes:
            changed |= p.run()
        if not changed:
            break
    return tf
