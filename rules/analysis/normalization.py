"""Is the scored probability still a distribution over the vocabulary? (C2 transforms, class 6)

A flow-sensitive walk of each function that tracks, per local name, what a value is:

- ``N`` / ``LN``: a normalized distribution over V (``softmax`` / ``log_softmax``, ``q / q.sum(-1)``,
  ``x - logsumexp(x)``, a convex mixture ``a * N + b * N2``);
- ``U`` / ``LU``: a transform of one that is not renormalized: ``N ** 0.93``, ``N * bonus``,
  ``N + c * recent``, ``LN + c * seen``, ``N.scatter(…)`` (a top-k floor);
- ``SN`` / ``SU``: the value read at the target (``gather``, ``p[arange, y]``) from either; a scalar
  boost added to ``SN`` after the read (``p.gather(…) + c * recent[y]``) makes it ``SU``.

A function that returns or takes the log of an ``SU`` value scores something that is not a
distribution: the finding points at the transform. Training code (a function that calls
``backward()``) is not evaluation and is skipped.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from rules.analysis.index import call_name
from rules.analysis.index import walk as ast_walk  # ast.walk, faster (same nodes, same order)

_SOFTMAX = {"softmax": "N", "log_softmax": "LN"}
_SUM = {"sum", "logsumexp", "nansum"}
_SCALAR_CALLS = {"float", "int", "len", "item", "min", "max", "abs", "round", "sqrt", "exp", "log", "pow", "math.exp",
                 "math.log", "math.sqrt", "numel", "size", "mean"}
_KEEP = {"squeeze", "unsqueeze", "float", "double", "to", "view", "reshape", "contiguous", "clamp_min", "clamp", "clip",
         "detach", "cpu", "cuda", "expand", "expand_as", "flatten", "half", "bfloat16", "type_as"}
_SCATTER = {"scatter", "scatter_", "masked_fill", "masked_fill_", "index_put", "index_put_", "index_fill", "index_fill_",
            "scatter_add", "scatter_add_"}
_UPPER = re.compile(r"^[A-Z][A-Z0-9_]*$")


@dataclass
class Transform:
    fn: object  # FuncInfo
    ff: object  # FileFacts
    node: ast.AST  # the transform
    line: int
    what: str  # a short phrase


class _Walk:
    def __init__(self, fn, ff, facts=None):
        self.fn, self.ff, self.facts = fn, ff, facts
        self.state: dict[str, tuple[str, ast.AST | None]] = {}
        self.tensors: set[str] = set()
        self.hits: list[Transform] = []

    # kinds ---------------------------------------------------------------------------------
    def scalar(self, e) -> bool:
        if isinstance(e, ast.Constant):
            return True
        if isinstance(e, ast.Name):
            return e.id not in self.tensors and e.id not in self.state
        if isinstance(e, ast.Attribute):
            if not isinstance(e.value, ast.Name):
                return False
            # a hyperparameter: a field declared in a class body (``mix_w = float(os.environ…)``), whatever the
            # object holding it is called
            return e.value.id in ("args", "self", "h", "hp", "cfg", "config", "math") or (
                self.facts is not None and e.value.id not in self.tensors and e.value.id not in self.state
                and e.attr in _class_fields(self.facts))
        if isinstance(e, ast.UnaryOp):
            return self.scalar(e.operand)
        if isinstance(e, ast.BinOp):
            return self.scalar(e.left) and self.scalar(e.right)
        if isinstance(e, ast.Call):
            return call_name(e.func).rsplit(".", 1)[-1] in _SCALAR_CALLS and all(self.scalar(a) for a in e.args)
        return False

    def weighted(self, e) -> tuple[str | None, bool]:
        """(kind, weighted): ``a * N`` is a weighted N (a mixture term)."""
        if isinstance(e, ast.BinOp) and isinstance(e.op, ast.Mult):
            for d, w in ((e.left, e.right), (e.right, e.left)):
                k = self.kind(d)
                if k in ("N", "U") and self.scalar(w):
                    return k, True
        return self.kind(e), False

    def kind(self, e) -> str | None:
        if isinstance(e, ast.Name):
            got = self.state.get(e.id)
            return got[0] if got else None
        if isinstance(e, ast.Call):
            name = call_name(e.func)
            short = name.rsplit(".", 1)[-1]
            recv = e.func.value if isinstance(e.func, ast.Attribute) else None
            if short in _SOFTMAX:
                return _SOFTMAX[short]
            rk = self.kind(recv) if recv is not None else None
            if short in ("gather", "take_along_dim", "take_along_axis"):
                src = rk if rk else (self.kind(e.args[0]) if e.args else None)
                return {"N": "SN", "LN": "SN", "U": "SU", "LU": "SU"}.get(src or "", None)
            if short in _SCATTER and rk in ("N", "LN"):
                self.mark(e, "rewrites entries of a normalized distribution (scatter/fill) without renormalizing it")
                return "U" if rk == "N" else "LU"
            if short in ("exp",) and rk in ("LN", "LU", "SN", "SU"):
                return {"LN": "N", "LU": "U"}.get(rk, rk)
            if short in ("log",) and rk in ("N", "U", "SN", "SU"):
                return {"N": "LN", "U": "LU"}.get(rk, rk)
            if short in _KEEP and rk:
                return rk
            if short in ("pow",) and rk == "N" and e.args and not _is_one(e.args[0]):
                self.mark(e, "raises a distribution to a power without renormalizing it")
                return "U"
            return None
        if isinstance(e, ast.Subscript):
            k = self.kind(e.value)
            if k in ("N", "LN", "U", "LU") and _pairs_index(e):
                return "SN" if k in ("N", "LN") else "SU"
            if k in ("N", "LN", "U", "LU", "SN", "SU"):
                return k  # a slice of rows stays what it was
            return None
        if isinstance(e, ast.BinOp):
            return self.binop(e)
        return None

    def binop(self, e: ast.BinOp) -> str | None:
        op = e.op
        lk, rk = self.kind(e.left), self.kind(e.right)
        if isinstance(op, ast.Pow):
            if lk == "N" and not _is_one(e.right) and not _reciprocal(e.right):
                self.mark(e, f"raises the distribution to the power {ast.unparse(e.right)[:30]} without renormalizing it")
                return "U"
            return lk if lk in ("SN", "SU") else None
        if isinstance(op, ast.Div):
            if lk in ("N", "U") and _is_sum_of(e.right):
                return "N"
            if lk in ("N", "U", "SN", "SU") and self.scalar(e.right):
                return lk if lk in ("SN", "SU") else ("U" if lk == "U" else "N")  # N / T is rare; keep
            return lk if lk in ("U", "SU") else None
        if isinstance(op, ast.Sub):
            if lk in ("LN", "LU") and _is_sum_of(e.right):
                return "LN"
            if lk in ("LN", "LU") and self.scalar(e.right):
                return lk
            return lk if lk in ("LU", "SU") else None
        if isinstance(op, ast.Mult):
            for k, other in ((lk, e.right), (rk, e.left)):
                if k == "N":
                    if self.scalar(other):
                        return "N"  # a weighted term; the mixture's sum decides
                    self.mark(e, "multiplies the distribution by a per-token factor without renormalizing it")
                    return "U"
                if k == "SN" and not self.scalar(other) and self.kind(other) not in ("SN", "N"):
                    self.mark(e, "scales the target's probability by a factor after the read, without renormalizing")
                    return "SU"
                if k in ("U", "SU", "LU"):
                    return k
            return None
        if isinstance(op, ast.Add):
            (lk2, lw), (rk2, rw) = self.weighted(e.left), self.weighted(e.right)
            if lk2 in ("N", "U") and rk2 in ("N", "U"):
                return "U" if "U" in (lk2, rk2) else "N"  # a mixture of distributions
            for (k, w), other in (((lk2, lw), e.right), ((rk2, rw), e.left)):
                if k == "N" and not w and not self.scalar(other) and self.kind(other) is None:
                    self.mark(e, "adds a boost to the distribution without renormalizing it")
                    return "U"
                if k == "LN" and self.kind(other) is None and not self.scalar(other):
                    self.mark(e, "adds a boost to the log-probabilities after normalization (no log-partition)")
                    return "LU"
                if k == "SN" and self.kind(other) is None and not self.scalar(other):
                    self.mark(e, "adds a term to the target's (log-)probability after the read, without a normalizer")
                    return "SU"
                if k in ("U", "LU", "SU"):
                    return k
            return None
        return None

    def mark(self, node, what: str):
        self._last = (node, what)

    # statements -----------------------------------------------------------------------------
    def value(self, e) -> tuple[str | None, ast.AST | None]:
        self._last = None
        k = self.kind(e)
        origin = self._last[0] if self._last else None
        if k in ("U", "LU", "SU") and origin is None:
            # inherited from a name: keep where that name was transformed
            for n in ast_walk(e):
                if isinstance(n, ast.Name) and n.id in self.state and self.state[n.id][0] in ("U", "LU", "SU") \
                        and self.state[n.id][1] is not None:
                    return k, self.state[n.id][1]
        if origin is not None:
            self._what = self._last[1]
        return k, origin

    def assign(self, target, e):
        k, origin = self.value(e)
        if isinstance(target, ast.Name):
            if k:
                self.state[target.id] = (k, origin if origin is not None else (self.state.get(target.id, (None, None))[1]
                                                                               if k in ("U", "LU", "SU") else None))
                if origin is not None:
                    self._origins[id(origin)] = self._what
            else:
                self.state.pop(target.id, None)
            if not self.scalar(e):
                self.tensors.add(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for t in target.elts:
                if isinstance(t, ast.Name):
                    self.state.pop(t.id, None)
                    self.tensors.add(t.id)

    def sink(self, e):
        k, origin = self.value(e)
        if k == "SU" and origin is not None:
            self.hits.append(Transform(self.fn, self.ff, origin, origin.lineno, self._origins.get(id(origin), self._what)))

    def _guarded(self, st) -> bool:
        p = self.ff.parent(st)
        while p is not None and p is not self.fn.node:
            if isinstance(p, ast.If):
                return True
            p = self.ff.parent(p)
        return False

    def run(self):
        self._origins: dict[int, str] = {}
        self._what = ""
        for st in _statements(self.fn.node):
            if self.facts is not None and self._guarded(st) and self.facts.reach(st, self.ff).state == "unreachable":
                continue  # a dead branch (``if False:``) never changes what the live code computes
            if isinstance(st, ast.Assign) and len(st.targets) == 1:
                self.assign(st.targets[0], st.value)
            elif isinstance(st, ast.AugAssign) and isinstance(st.target, ast.Name):
                self.sink(st.value)
            elif isinstance(st, ast.Return) and st.value is not None:
                for v in (st.value.elts if isinstance(st.value, ast.Tuple) else [st.value]):
                    self.sink(v)
            for c in ast_walk(st) if not isinstance(st, (ast.Assign, ast.Return)) else ():
                if isinstance(c, ast.Call) and call_name(c.func).rsplit(".", 1)[-1] in ("log", "log2", "nll_loss") and c.args:
                    self.sink(c.args[0])
        return self.hits


def _class_fields(facts) -> frozenset:
    """Names assigned in class bodies of the program (configuration fields, not tensors built at run time)."""
    def build():
        out = set()
        for ff in facts.files:
            for c in ast_walk(ff.tree) if ff.tree is not None else ():
                if isinstance(c, ast.ClassDef):
                    for st in c.body:
                        for t in (st.targets if isinstance(st, ast.Assign) else [st.target] if isinstance(st, ast.AnnAssign) else []):
                            if isinstance(t, ast.Name):
                                out.add(t.id)
        return frozenset(out)
    return facts.cached("class_fields", build)


def _statements(fn_node):
    """The function's statements in source order, not descending into nested defs."""
    out = []
    todo = list(reversed(fn_node.body))
    while todo:
        st = todo.pop()
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        out.append(st)
        for field in ("body", "orelse", "finalbody"):
            todo.extend(reversed(getattr(st, field, []) or []))
        for h in getattr(st, "handlers", []) or []:
            todo.extend(reversed(h.body))
    return out


def _is_one(e) -> bool:
    return isinstance(e, ast.Constant) and e.value in (1, 1.0)


def _reciprocal(e) -> bool:
    return isinstance(e, ast.BinOp) and isinstance(e.op, ast.Div) and _is_one(e.left)


def _is_sum_of(e) -> bool:
    """``x.sum(-1, keepdim=True)``, ``torch.logsumexp(x, -1)``, ``(x.sum(...) + eps)``."""
    for n in ast_walk(e):
        if isinstance(n, ast.Call) and call_name(n.func).rsplit(".", 1)[-1] in _SUM:
            return True
    return False


def _pairs_index(e: ast.Subscript) -> bool:
    """``p[arange(n), y]``: one entry per row (a read at the target), not a slice."""
    sl = e.slice
    return isinstance(sl, ast.Tuple) and len(sl.elts) == 2 and not any(isinstance(x, ast.Slice) for x in sl.elts) \
        and not any(isinstance(x, ast.Constant) and x.value is None for x in sl.elts)


def unnormalized_transforms(facts) -> list[Transform]:
    """Every place a scored value is built from a transformed, not renormalized, distribution."""
    def build():
        out = []
        for fn in facts.functions.values():
            if any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "backward"
                   for n in ast_walk(fn.node)):
                continue  # training code
            try:
                out.extend(_Walk(fn, facts.file_of(fn), facts).run())
            except RecursionError:
                continue
        return out
    return facts.cached("unnormalized", build)
