"""Structural facts the order-sensitive rules share: where a function scores (accumulates the
reported loss), where it updates state (backward / optimizer step / cache update), and which
functions do either, transitively through the call graph."""
from __future__ import annotations

import ast
import re

from rules.analysis.facts import CodeFacts
from rules.analysis.index import FuncInfo, call_name
from rules.analysis.index import walk as ast_walk  # ast.walk, faster (same nodes, same order)

ACC_NAME = re.compile(r"(loss|nll|bits|bpb|score|logprob|log_prob)", re.I)
# a hint only (the taint's V label decides): never a length or count setting (``eval_seq_len``, ``valid_count``)
VAL_NAME = re.compile(r"^(?!.*_(len|length|size|count|steps|lr|every|num|n)$)(?:.*?((val|eval)_?(tok|data|stream|ids|np|seq|chunk|docs?)"
                      r"|^val_tokens|^val$|valid))", re.I)
CACHE_UPDATE = re.compile(r"^(update\w*|add_?\w*|observe\w*|insert\w*|record\w*|push\w*|absorb\w*|ingest\w*|commit\w*)$", re.I)


def _acc_target(t: ast.AST) -> str:
    if isinstance(t, ast.Name):
        return t.id
    if isinstance(t, ast.Attribute):
        return t.attr
    if isinstance(t, ast.Subscript):
        return _acc_target(t.value)
    return ""


_LOSS_CALLS = {"log", "log2", "log10", "log1p", "log_softmax", "logsumexp", "cross_entropy", "nll_loss",
               "binary_cross_entropy", "softcapped_cross_entropy", "fused_cross_entropy", "kl_div"}


_BUILTINS = frozenset(dir(__import__("builtins")))


def _acc_key(t: ast.AST) -> str:
    """The variable a value lives in: ``a`` for ``a``, ``a[i]``; ``.a`` for ``self.a`` / ``obj.a``."""
    if isinstance(t, ast.Name):
        return "" if t.id in ("self", "cls") else t.id
    if isinstance(t, ast.Attribute):
        return "." + t.attr
    if isinstance(t, ast.Subscript):
        return _acc_key(t.value)
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


OPTIMIZER = re.compile(r"(Adam\w*|SGD|RMSprop|LBFGS|Adagrad|Adadelta|Adamax|Lion|Muon\w*|Optimizer|NorMuon)$")


def optimizers(fn_node: ast.AST) -> set[str]:
    """Variables of a function that hold an optimizer, by value: bound to an optimizer constructor
    (``torch.optim.SGD(...)``) or the receiver of ``.zero_grad()``, whatever they are called."""
    out = set()
    for n in _walk_own(fn_node):
        if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.value, ast.Call) \
                and OPTIMIZER.search(call_name(n.value.func)):
            k = _acc_key(n.targets[0])
            if k:
                out.add(k)
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "zero_grad":
            k = _acc_key(n.func.value)
            if k:
                out.add(k)
    return out


def update_kind(node: ast.AST, opts: set[str] = frozenset()) -> str | None:
    """"step" / "backward" / "cache" for a state update, else None (``opts``: the optimizers in scope)."""
    if isinstance(node, ast.Call):
        name = call_name(node.func)
        short = name.rsplit(".", 1)[-1]
        recv = name.rsplit(".", 1)[0].lower() if "." in name else ""
        if short == "backward" or (short == "grad" and "autograd" in name):
            return "backward"
        if short in ("sub_", "add_") and node.args and _lr_scaled(node):
            return "step"  # ``p.sub_(lr * g)``: a hand-written optimizer step
        if short == "step" and ("opt" in recv or "sgd" in recv or "adam" in recv or "muon" in recv or recv.endswith("optim")
                                or (isinstance(node.func, ast.Attribute) and _acc_key(node.func.value) in opts)):
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
        for n in ast_walk(a):
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
    for c in ast_walk(node.value):
        if isinstance(c, ast.Call) and call_name(c.func).rsplit(".", 1)[-1] not in ("numel", "len", "size", "count_bytes", "sum"):
            for a in c.args:
                for x in ast_walk(a):
                    if isinstance(x, ast.Name) and any(l[0] in ("V", "T") for l in env.get(x.id, ())):
                        return True
    return False


def target_update(node: ast.AST, env: dict) -> bool:
    """``succ[x] += one_hot(y)`` / ``tbl[ctx, y] += 1``: a table updated with the target token (by value)."""
    if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Subscript):
        root = node.target.value
        if isinstance(root, ast.Name) and any(l[0] == "S" for l in env.get(root.id, ())):
            return False  # ``nll[:k] *= ~match``: a loss masked in place, not a table
        for part in (node.target.slice, node.value):
            for n in ast_walk(part):
                if isinstance(n, ast.Name) and any(l[0] == "T" for l in env.get(n.id, ())):
                    return True
    return False


class Summaries:
    """Per-function: does it (transitively) train / update a cache / accumulate a score?"""

    def __init__(self, facts: CodeFacts):
        self.facts = facts
        self._direct: dict[str, dict[str, list[ast.AST]]] = {}
        self._trans: dict[tuple[str, str], set[str]] = {}
        self._lossy: dict[str, tuple[set[str], set[str]]] = {}
        self._retloss: dict[str, bool] = {}
        self._scored: dict[str, set[str]] = {}
        self._opts: dict[str, set[str]] = {}
        self._lparams: dict[str, set[str]] = {}

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
                        for x in ast_walk(r.value) if isinstance(x, ast.Name)}
            opts = self.optimizers(fn)
            for n in _walk_own(fn.node):
                k = update_kind(n, opts) or ("cache" if target_update(n, env) else None)
                if k:
                    d[k].append(n)
                if not isinstance(n, (ast.AugAssign, ast.Assign, ast.Call)):
                    continue
                if (is_score_accum(n) or _value_score_accum(n, env, returned) or self._value_accum(fn, n, env)) \
                        and not _logs_training_loss(n, back_names):
                    d["score"].append(n)
                    if fn_nograd or _under_nograd(ff, n, fn.node):
                        d["ngscore"].append(n)
            self._direct[fn.qualname] = d
        return d

    # -- accumulators by value: a sum of loss-like values that reaches the printed / returned score --
    def _value_accum(self, fn: FuncInfo, node: ast.AST, env: dict) -> bool:
        """``a += -log(p).sum()`` / ``a = a + ce(...)`` / ``a.add_(nll)`` where the added value is a loss
        (a log, a cross-entropy, a score at the target, a model call on validation tokens, or a helper
        that returns one) and ``a`` flows into a return value or a printed/formatted string, whatever
        ``a`` is called."""
        if isinstance(node, ast.AugAssign) and isinstance(node.op, (ast.Add, ast.Sub)):
            tgt, val = node.target, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.value, ast.BinOp) \
                and isinstance(node.value.op, ast.Add):
            tgt = node.targets[0]
            key = _acc_key(tgt)
            sides = [node.value.left, node.value.right]
            same = [x for x in sides if _acc_key(x) == key]
            if not key or not same:
                return False
            val = next(x for x in sides if x is not same[0])
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_" and node.args \
                and not _lr_scaled(node):
            tgt, val = node.func.value, node.args[0]
        else:
            return False
        key = _acc_key(tgt)
        if not key or (isinstance(tgt, ast.Subscript) and not isinstance(tgt.slice, ast.Constant)):
            return False  # ``tbl[ctx] += …`` writes a table at a key: state, not a running score
        info = self._lossy_info(fn, env)
        return self._lossy_expr(val, info[0], env, fn) and key in info[1]

    def _lossy_info(self, fn: FuncInfo, env: dict):
        """(names bound to loss-like values, accumulator keys that reach a sink) of ``fn``."""
        got = self._lossy.get(fn.qualname)
        if got is not None:
            return got
        self._lossy[fn.qualname] = (set(), set())  # recursion guard
        assigns = []
        for n in _walk_own(fn.node):
            if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and n.value is not None:
                tg = n.targets if isinstance(n, ast.Assign) else [n.target]
                keys = {k for t in tg for x in (t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t]) if (k := _acc_key(x))}
                assigns.append((keys, n.value))
        # a caller's loss handed in matters where the function sums into a caller's tensor (``loss_sum += …``)
        into_param = any(isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name) and n.target.id in fn.params
                         for n in _walk_own(fn.node))
        lossy: set[str] = set(self._lossy_params(fn)) if into_param else set()
        changed = True
        while changed:
            changed = False
            for keys, v in assigns:
                if keys - lossy and self._lossy_expr(v, lossy, env, fn):
                    lossy |= keys
                    changed = True
        sinks: set[str] = set(fn.params) - {"self", "cls"}  # ``loss_sum += …`` on a caller's tensor: the caller sees it
        for n in _walk_own(fn.node):
            if isinstance(n, ast.Return) and n.value is not None:
                sinks |= {k for x in ast_walk(n.value) if (k := _acc_key(x))}
            elif isinstance(n, ast.FormattedValue):
                sinks |= {k for x in ast_walk(n.value) if (k := _acc_key(x))}
            elif isinstance(n, ast.Call) and call_name(n.func).rsplit(".", 1)[-1] in ("print", "log0", "write", "info"):
                sinks |= {k for a in n.args for x in ast_walk(a) if (k := _acc_key(x))}
        changed = True
        while changed:  # ``val_loss = loss_sum / count`` then ``return val_loss``: loss_sum reaches the sink
            changed = False
            for keys, v in assigns:
                if keys & sinks:
                    more = {k for x in ast_walk(v) if (k := _acc_key(x))} - sinks
                    if more:
                        sinks |= more
                        changed = True
        got = (lossy, sinks)
        self._lossy[fn.qualname] = got
        return got

    def scored_keys(self, fn: FuncInfo) -> set[str]:
        """Variables whose value reaches the score of ``fn``: arguments of a log / cross-entropy and the
        values added into its score accumulators, closed backwards over the function's assignments."""
        got = self._scored.get(fn.qualname)
        if got is not None:
            return got
        keys: set[str] = set()
        d = self.direct(fn)
        for n in _walk_own(fn.node):
            if isinstance(n, ast.Call) and call_name(n.func).rsplit(".", 1)[-1] in _LOSS_CALLS:
                keys |= {k for a in n.args for x in ast_walk(a) if (k := _acc_key(x))}
        for n in d["score"]:
            v = n.value if isinstance(n, (ast.AugAssign, ast.Assign)) else n.args[0] if isinstance(n, ast.Call) and n.args else None
            if v is not None:
                keys |= {k for x in ast_walk(v) if (k := _acc_key(x))}
        assigns = [({_acc_key(t) for t in (n.targets if isinstance(n, ast.Assign) else [n.target])} - {""}, n.value)
                   for n in _walk_own(fn.node) if isinstance(n, (ast.Assign, ast.AnnAssign)) and n.value is not None]
        changed = True
        while changed:
            changed = False
            for ks, v in assigns:
                if ks & keys:
                    more = {k for x in ast_walk(v) if (k := _acc_key(x))} - keys
                    if more:
                        keys |= more
                        changed = True
        self._scored[fn.qualname] = keys
        return keys

    def _lossy_params(self, fn: FuncInfo) -> set[str]:
        """Parameters some caller hands a loss (``accumulate(ptl, …)`` where ``ptl`` is the model's per-token
        loss there), whatever they are called."""
        got = self._lparams.get(fn.qualname)
        if got is not None:
            return got
        self._lparams[fn.qualname] = set()  # recursion guard
        params = list(fn.params)
        if fn.cls and params and params[0] in ("self", "cls"):
            params = params[1:]
        out: set[str] = set()
        for _ff, caller, call in self.facts.call_sites.get(fn.short, [])[:50]:
            if caller is None or caller is fn or call_name(call.func).rsplit(".", 1)[-1] != fn.short:
                continue
            cenv = self._env(caller)
            clossy = self._lossy_info(caller, cenv)[0]
            for i, a in enumerate(call.args):
                if i < len(params) and not isinstance(a, ast.Starred) and self._lossy_expr(a, clossy, cenv, caller):
                    out.add(params[i])
            for k in call.keywords:
                if k.arg in params and self._lossy_expr(k.value, clossy, cenv, caller):
                    out.add(k.arg)
        self._lparams[fn.qualname] = out
        return out

    def _lossy_expr(self, v: ast.AST, lossy: set[str], env: dict, fn: FuncInfo) -> bool:
        for x in ast_walk(v):
            if isinstance(x, (ast.Name, ast.Attribute)):
                k = _acc_key(x)
                if k in lossy or (isinstance(x, ast.Name) and any(l[0] == "S" for l in env.get(x.id, ()))):
                    return True
            elif isinstance(x, ast.Call):
                short = call_name(x.func).rsplit(".", 1)[-1]
                if short in _LOSS_CALLS:
                    return True
                if short in ("numel", "len", "size", "sum", "item", "float", "detach", "to", "double"):
                    continue
                own = [c for c in self.facts.resolve(short, x, fn) if c is not fn]
                if own:  # a function of the program: a loss when it returns one
                    if any(self._returns_loss(c) for c in own):
                        return True
                    continue
                # a callable value (``model``, ``self.model``, a function passed in), not a library function or a
                # tensor method (``y.reshape_as(t)``): handed the targets, it returns their loss
                callable_value = (isinstance(x.func, ast.Name) and short not in _BUILTINS) or (
                    isinstance(x.func, ast.Attribute) and isinstance(x.func.value, ast.Name) and x.func.value.id == "self")
                if callable_value and any(isinstance(y, ast.Name) and any(l[0] == "T" for l in env.get(y.id, ()))
                                   for a in list(x.args) + [k.value for k in x.keywords] for y in ast_walk(a)):
                    return True  # the model (or a callable passed in) handed the targets: ``model(x, y)`` is its loss
        return False

    def _returns_loss(self, fn: FuncInfo) -> bool:
        got = self._retloss.get(fn.qualname)
        if got is None:
            self._retloss[fn.qualname] = False  # recursion guard
            env = self._env(fn)
            lossy = self._lossy_info(fn, env)[0]
            got = any(isinstance(r, ast.Return) and r.value is not None and self._lossy_expr(r.value, lossy, env, fn)
                      for r in _walk_own(fn.node))
            self._retloss[fn.qualname] = got
        return got

    def optimizers(self, fn: FuncInfo | None) -> set[str]:
        if fn is None:
            return set()
        got = self._opts.get(fn.qualname)
        if got is None:
            got = self._opts[fn.qualname] = optimizers(fn.node)
        return got

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
            callees = {f.qualname: [c.qualname for c in self.facts.callees(f)] + self._passed(f) for f in fns}
            changed = True
            while changed:
                changed = False
                for q, cs in callees.items():
                    if q not in got and any(c in got for c in cs):
                        got.add(q)
                        changed = True
            self._trans[key] = got
        return got

    def _passed(self, fn: FuncInfo) -> list[str]:
        """Functions ``fn`` hands to a call as values (``opt.step(closure)``, ``timed(eval_val, …)``): the
        callee calls them back, so what they do ``fn`` does (whatever they are called)."""
        out = []
        for n in _walk_own(fn.node):
            if isinstance(n, ast.Call):
                for a in list(n.args) + [k.value for k in n.keywords]:
                    if isinstance(a, ast.Name):
                        nested = self.facts.functions.get(f"{fn.qualname}.{a.id}")
                        if nested is not None:
                            out.append(nested.qualname)
                        else:
                            out += [f.qualname for f in self.facts.by_short.get(a.id, []) if not f.cls]
        return out

    def stmt_does(self, stmt: ast.AST, kind: str, caller: FuncInfo | None) -> ast.AST | None:
        """The first node in ``stmt`` that does ``kind`` (directly or through a call)."""
        env = self._env(caller) if kind == "cache" else {}
        own_scores = {id(x) for x in self.direct(caller)["score"]} if kind == "score" and caller is not None else set()
        opts = self.optimizers(caller)
        for n in ast_walk(stmt):
            if kind == "score" and (is_score_accum(n) or id(n) in own_scores):
                return n
            if kind in ("step", "backward", "cache") and update_kind(n, opts) == kind:
                return n
            if kind == "cache" and target_update(n, env):
                return n
            if kind == "train" and update_kind(n, opts) in ("step", "backward"):
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
    return any(isinstance(x, ast.Name) and x.id in back_names for x in ast_walk(value))


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
    for n in ast_walk(node):
        if isinstance(n, ast.Name) and pattern.search(n.id):
            return True
        if isinstance(n, ast.Attribute) and pattern.search(n.attr):
            return True
    return False
