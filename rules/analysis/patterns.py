"""Structural facts the order-sensitive rules share: where a function scores (accumulates the
reported loss), where it updates state (backward / optimizer step / cache update), and which
functions do either, transitively through the call graph."""
from __future__ import annotations

import ast
import re

from rules.analysis.facts import CodeFacts
from rules.analysis.index import FuncInfo, call_name

ACC_NAME = re.compile(r"(loss|nll|bits|bpb|score|logprob|log_prob)", re.I)
VAL_NAME = re.compile(r"(val|eval)_?(tok|data|stream|ids|np|seq|chunk|docs?)|^val_tokens|^val$|valid", re.I)
CACHE_UPDATE = re.compile(r"^(update\w*|add_?\w*|observe\w*|insert\w*|record\w*|push\w*|absorb\w*|ingest\w*|commit\w*)$", re.I)


def _acc_target(t: ast.AST) -> str:
    if isinstance(t, ast.Name):
        return t.id
    if isinstance(t, ast.Attribute):
        return t.attr
    if isinstance(t, ast.Subscript):
        return _acc_target(t.value)
    return ""


def is_score_accum(node: ast.AST) -> bool:
    """``loss_sum += nll.sum()`` / ``nll_total = nll_total + ...`` / ``loss_sum.add_(...)``."""
    if isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add):
        name = _acc_target(node.target)
        return bool(ACC_NAME.search(name)) and not any(k in name.lower() for k in ("grad", "train", "ema", "smooth"))
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.value, ast.BinOp) \
            and isinstance(node.value.op, ast.Add):
        name = _acc_target(node.targets[0])
        if ACC_NAME.search(name) and any(isinstance(s, ast.Name) and s.id == name for s in (node.value.left, node.value.right)):
            return True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_":
        return bool(ACC_NAME.search(_acc_target(node.func.value)))
    return False


def update_kind(node: ast.AST) -> str | None:
    """"step" / "backward" / "cache" for a state update, else None."""
    if isinstance(node, ast.Call):
        name = call_name(node.func)
        short = name.rsplit(".", 1)[-1]
        recv = name.rsplit(".", 1)[0].lower() if "." in name else ""
        if short == "backward" or (short == "grad" and "autograd" in name):
            return "backward"
        if short in ("sub_", "add_") and node.args and _lr_scaled(node):
            return "step"  # ``p.sub_(lr * g)``: a hand-written optimizer step
        if short == "step" and ("opt" in recv or "sgd" in recv or "adam" in recv or "muon" in recv or recv.endswith("optim")):
            return "step"
        if name in ("np.add.at", "numpy.add.at") or short in ("scatter_add_", "index_add_", "index_put_"):
            return "cache"
        if CACHE_UPDATE.match(short) and recv and ("cache" in recv or "ngram" in recv or "mixer" in recv or "table" in recv
                                                   or "model" in recv and "ngram" in name.lower()):
            return "cache"
    if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Subscript):
        name = _acc_target(node.target).lower()
        if any(k in name for k in ("count", "table", "tbl", "cache", "freq", "hist")):
            return "cache"
    return None


def _lr_scaled(call: ast.Call) -> bool:
    """``p.sub_(lr * g)`` / ``p.add_(g, alpha=-lr)``: a parameter moved by a learning-rate-scaled gradient."""
    parts = list(call.args) + [k.value for k in call.keywords if k.arg == "alpha"]
    for a in parts:
        for n in ast.walk(a):
            if isinstance(n, (ast.Name, ast.Attribute)) and re.search(r"(^|_)(lr|eta|step_size|learning_rate)($|_)",
                                                                     n.id if isinstance(n, ast.Name) else n.attr, re.I):
                return True
    return False


def _value_score_accum(node: ast.AST, env: dict, returned: set[str]) -> bool:
    """``tot += float(model(a, b)) * b.numel()`` where ``tot`` is returned: a loss accumulated from a call
    on validation tokens (labelled V/T by the taint), whatever the accumulator is called."""
    if not (isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add) and isinstance(node.target, ast.Name)
            and node.target.id in returned):
        return False
    for c in ast.walk(node.value):
        if isinstance(c, ast.Call) and call_name(c.func).rsplit(".", 1)[-1] not in ("numel", "len", "size", "count_bytes", "sum"):
            for a in c.args:
                for x in ast.walk(a):
                    if isinstance(x, ast.Name) and any(l[0] in ("V", "T") for l in env.get(x.id, ())):
                        return True
    return False


def target_update(node: ast.AST, env: dict) -> bool:
    """``succ[x] += one_hot(y)`` / ``tbl[ctx, y] += 1``: a table updated with the target token (by value)."""
    if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Subscript):
        for part in (node.target.slice, node.value):
            for n in ast.walk(part):
                if isinstance(n, ast.Name) and any(l[0] == "T" for l in env.get(n.id, ())):
                    return True
    return False


class Summaries:
    """Per-function: does it (transitively) train / update a cache / accumulate a score?"""

    def __init__(self, facts: CodeFacts):
        self.facts = facts
        self._direct: dict[str, dict[str, list[ast.AST]]] = {}
        self._trans: dict[tuple[str, str], set[str]] = {}

    def direct(self, fn: FuncInfo) -> dict[str, list[ast.AST]]:
        d = self._direct.get(fn.qualname)
        if d is None:
            d = {"backward": [], "step": [], "cache": [], "score": [], "ngscore": []}
            ff = self.facts.file_of(fn)
            back_names = {b.func.value.id for b in _walk_own(fn.node) if isinstance(b, ast.Call)
                          and isinstance(b.func, ast.Attribute) and b.func.attr == "backward" and isinstance(b.func.value, ast.Name)}
            fn_nograd = any(_NOGRAD.search(ast.unparse(dec)) for dec in getattr(fn.node, "decorator_list", []))
            env = self._env(fn)
            returned = {x.id for r in _walk_own(fn.node) if isinstance(r, ast.Return) and r.value is not None
                        for x in ast.walk(r.value) if isinstance(x, ast.Name)}
            for n in _walk_own(fn.node):
                k = update_kind(n) or ("cache" if target_update(n, env) else None)
                if k:
                    d[k].append(n)
                if (is_score_accum(n) or _value_score_accum(n, env, returned)) and not _logs_training_loss(n, back_names):
                    d["score"].append(n)
                    if fn_nograd or _under_nograd(ff, n, fn.node):
                        d["ngscore"].append(n)
            self._direct[fn.qualname] = d
        return d

    def _env(self, fn: FuncInfo | None) -> dict:
        if fn is None:
            return {}
        from rules.analysis import taint

        return taint(self.facts).env.get(fn.qualname, {})

    def does(self, fn: FuncInfo, kind: str) -> bool:
        """Whether ``fn`` or anything it calls does ``kind`` ("train" = backward and step)."""
        if kind == "train":
            return self.does(fn, "backward") and self.does(fn, "step")
        closed = self._closure(kind)
        return fn.qualname in closed

    def _closure(self, kind: str) -> set[str]:
        key = ("closure", kind)
        got = self._trans.get(key)
        if got is None:
            fns = list(self.facts.functions.values())
            got = {f.qualname for f in fns if self.direct(f)[kind]}
            callees = {f.qualname: [c.qualname for c in self.facts.callees(f)] for f in fns}
            changed = True
            while changed:
                changed = False
                for q, cs in callees.items():
                    if q not in got and any(c in got for c in cs):
                        got.add(q)
                        changed = True
            self._trans[key] = got
        return got

    def stmt_does(self, stmt: ast.AST, kind: str, caller: FuncInfo | None) -> ast.AST | None:
        """The first node in ``stmt`` that does ``kind`` (directly or through a call)."""
        env = self._env(caller) if kind == "cache" else {}
        own_scores = {id(x) for x in self.direct(caller)["score"]} if kind == "score" and caller is not None else set()
        for n in ast.walk(stmt):
            if kind == "score" and (is_score_accum(n) or id(n) in own_scores):
                return n
            if kind in ("step", "backward", "cache") and update_kind(n) == kind:
                return n
            if kind == "cache" and target_update(n, env):
                return n
            if kind == "train" and update_kind(n) in ("step", "backward"):
                return n
            if isinstance(n, ast.Call):
                short = call_name(n.func).rsplit(".", 1)[-1]
                for c in self.facts.resolve(short, n, caller):
                    if c is caller:
                        continue
                    if self.does(c, kind):
                        return n
        return None


def _logs_training_loss(node, back_names: set[str]) -> bool:
    """``epoch_loss += loss.item()`` where ``loss.backward()`` ran: bookkeeping of a training loss."""
    value = node.value if isinstance(node, ast.AugAssign) else getattr(node, "value", None)
    if value is None:
        return False
    return any(isinstance(x, ast.Name) and x.id in back_names for x in ast.walk(value))


_NOGRAD = re.compile(r"(no_grad|inference_mode|set_grad_enabled\(False\))")


def _under_nograd(ff, node, stop) -> bool:
    p = ff.parent(node)
    while p is not None and p is not stop:
        if isinstance(p, (ast.With, ast.AsyncWith)) and any(_NOGRAD.search(ast.unparse(i.context_expr)) for i in p.items):
            return True
        p = ff.parent(p)
    return False


_WALKS: dict[int, tuple[ast.AST, list[ast.AST]]] = {}


def _walk_own(fn_node: ast.AST):
    """Nodes of a function body, not descending into nested defs/classes. Every rule walks every
    function several times; the list is kept per node (parsed trees are shared and immutable here)."""
    got = _WALKS.get(id(fn_node))
    if got is not None and got[0] is fn_node:
        return got[1]
    out = []
    todo = list(ast.iter_child_nodes(fn_node))
    while todo:
        n = todo.pop()
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        out.append(n)
        todo.extend(ast.iter_child_nodes(n))
    if len(_WALKS) > 20000:
        _WALKS.clear()
    _WALKS[id(fn_node)] = (fn_node, out)
    return out


def walk_own(fn_node: ast.AST):
    return _walk_own(fn_node)


def summaries(facts: CodeFacts) -> Summaries:
    return facts.cached("summaries", lambda: Summaries(facts))


def loops(fn: FuncInfo):
    for n in _walk_own(fn.node):
        if isinstance(n, (ast.For, ast.While, ast.AsyncFor)):
            yield n


def mentions(node: ast.AST, pattern: re.Pattern) -> bool:
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and pattern.search(n.id):
            return True
        if isinstance(n, ast.Attribute) and pattern.search(n.attr):
            return True
    return False
