"""A libcst transform of a COPY of a scorer: report every committed score and every state update.

Score sites (the accumulation statement): ``ACC += expr`` / ``ACC -= expr`` where ACC names a loss
accumulator (``nll``, ``loss_sum``, ``total_bits`` …), ``NLL[i] = expr`` into a per-token array, and
``NLLS.append(expr)``. After each, ``__pgolf_probe__.scored(value, {loop vars})`` records the value
with the enclosing ``for`` variables, which give the position.
Update sites: calls ``x.update(…)``/``.add(…)``/``.step(…)``/``.observe(…)``… and ``COUNTS[k] += …`` into a
table; before each, ``__pgolf_probe__.updated({loop vars})``.

The transformed source is only ever executed in a child process (inside the sandbox when there
is one); the auditor process never imports it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import libcst as cst
from libcst.metadata import PositionProvider

ACCUMULATOR = re.compile(r"(?i)(^|_)(nll|nlls|loss|losses|loss_sum|bits|neglog|logloss|xent|ce)(_|$|sum|total)|^(total|sum)_?(nll|loss|bits)")
PER_TOKEN_ARRAY = re.compile(r"(?i)^(nll|nlls|losses|token_nll|per_token(_nll|_loss)?|scores|bits)$")
PER_TOKEN_NAME = re.compile(r"(?i)^(nll|nlls|token_nll|per_token_(nll|loss)|losses|token_losses|bits)$")
UPDATE_CALLS = {"update", "add", "observe", "step", "learn", "push", "increment", "record_token", "add_token", "update_cache"}
TABLE = re.compile(r"(?i)(count|table|cache|freq|hist|ctx_|ngram)")
RUNTIME = "auditor.reproduce.probe_runtime"


@dataclass
class Site:
    kind: str  # "score" | "update"
    line: int
    code: str
    function: str = ""  # the enclosing def ("" at module level)


@dataclass
class Instrumented:
    source: str
    sites: list[Site] = field(default_factory=list)
    reentered: list[tuple[str, int]] = field(default_factory=list)  # (function, def line) decorated for re-entry

    @property
    def score_sites(self) -> list[Site]:
        return [s for s in self.sites if s.kind == "score"]


def _base_name(node: cst.BaseExpression) -> str | None:
    while isinstance(node, (cst.Subscript, cst.Attribute)):
        if isinstance(node, cst.Attribute) and not isinstance(node.value, (cst.Subscript, cst.Attribute, cst.Name)):
            return node.attr.value
        node = node.value
    return node.value if isinstance(node, cst.Name) else None


def _target_name(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return node.attr.value
    if isinstance(node, cst.Subscript):
        return _base_name(node)
    return None


def _per_token_value(expr: cst.BaseExpression) -> cst.BaseExpression:
    """``nll.double().sum()``, ``float((-np.log(p)).sum())`` → ``nll``, ``(-np.log(p))``: record the
    per-token tensor, not its reduction."""
    while True:
        if (isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and not expr.args
                and expr.func.attr.value in ("sum", "double", "float", "item", "detach", "cpu")):
            expr = expr.func.value
        elif (isinstance(expr, cst.Call) and isinstance(expr.func, cst.Name) and expr.func.value == "float"
              and len(expr.args) == 1 and expr.args[0].keyword is None and not expr.args[0].star):
            expr = expr.args[0].value
        else:
            return expr


class _AccumulatedNames(cst.CSTVisitor):
    """(function, NAME) of every ``ACC += NAME`` into a loss accumulator: where ``NAME = reduce(per-token)``
    is assigned in that function, the per-token values are tapped at the assignment instead."""

    def __init__(self, acc: re.Pattern):
        self.acc = acc
        self.functions: list[str] = []
        self.names: set[tuple[str, str]] = set()
        self.neg_logs: set[tuple[str, str]] = set()  # (function, NAME) assigned a negative log: NAME = -np.log(p)

    def visit_Assign(self, node: cst.Assign) -> None:
        if len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name) and _is_neg_log(node.value):
            self.neg_logs.add((self.functions[-1] if self.functions else "", node.targets[0].target.value))

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.functions.append(node.name.value)

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.functions.pop()

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        name = _target_name(node.target) or ""
        if (isinstance(node.operator, cst.AddAssign) and isinstance(node.value, cst.Name) and self.acc.search(name)
                and not TABLE.search(name) and not isinstance(node.target, cst.Subscript)):
            self.names.add((self.functions[-1] if self.functions else "", node.value.value))


def _is_neg_log(expr: cst.BaseExpression) -> bool:
    """``-np.log(p)``, ``-math.log2(p)``, ``-(log_softmax(…)…)``."""
    if not (isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus)):
        return False
    for node in _walk(expr.expression):
        if isinstance(node, cst.Call):
            f = node.func
            name = f.attr.value if isinstance(f, cst.Attribute) else f.value if isinstance(f, cst.Name) else ""
            if name in ("log", "log2", "log_softmax", "log1p"):
                return True
    return False


def _walk(node: cst.CSTNode):
    yield node
    for child in node.children:
        yield from _walk(child)


def _loop_names(target: cst.BaseExpression) -> list[str]:
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, (cst.Tuple, cst.List)):
        return [n for el in target.elements for n in _loop_names(el.value)]
    return []


def _call(fn: str, args: list[cst.BaseExpression]) -> cst.SimpleStatementLine:
    return cst.SimpleStatementLine([cst.Expr(cst.Call(
        func=cst.Attribute(cst.Name("__pgolf_probe__"), cst.Name(fn)), args=[cst.Arg(a) for a in args]))])


def _loop_dict(names: list[str]) -> cst.Dict:
    return cst.Dict([cst.DictElement(cst.SimpleString(repr(n)), cst.Name(n)) for n in names])


class _Transform(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, accumulator: re.Pattern | None, tapped: set[tuple[str, str]] = frozenset(), reentry: bool = False,
                 neg_logs: set[tuple[str, str]] = frozenset()):
        super().__init__()
        self.neg_logs = neg_logs
        self.acc = accumulator or ACCUMULATOR
        self.loops: list[list[str]] = []
        self.sites: list[Site] = []
        self.functions: list[tuple[str, int]] = []  # (name, loop depth when entered)
        self.tapped = tapped  # (function, NAME): per-token values recorded where NAME is assigned
        self.done_taps: set[tuple[str, str]] = set()
        self.reentry = reentry
        self.reentered: list[tuple[str, int]] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.functions.append((node.name.value, len(self.loops)))

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
        name, _ = self.functions.pop()
        line = self.get_metadata(PositionProvider, original).start.line
        inner = any(s.function == name and s.kind == "score" and s.line > line for s in self.sites)
        # main() builds the model and the stream itself: re-entering it is re-running the script
        if self.reentry and inner and name != "main" and not isinstance(original.asynchronous, cst.Asynchronous):
            self.reentered.append((name, line))
            deco = cst.Decorator(cst.Call(func=cst.Attribute(cst.Name("__pgolf_probe__"), cst.Name("reentry")),
                                          args=[cst.Arg(cst.SimpleString(repr(name))), cst.Arg(cst.Integer(str(line)))]))
            return updated.with_changes(decorators=[*updated.decorators, deco])
        return updated

    def visit_For(self, node: cst.For) -> None:
        self.loops.append(_loop_names(node.target))

    def leave_For(self, original: cst.For, updated: cst.For) -> cst.For:
        self.loops.pop()
        return updated

    def _vars(self) -> list[str]:
        # innermost first, and only the loops of the enclosing function (outer frames are not in scope)
        start = self.functions[-1][1] if self.functions else 0
        return [n for frame in reversed(self.loops[start:]) for n in frame]

    def _fn(self) -> str:
        return self.functions[-1][0] if self.functions else ""

    def _classify(self, stmt: cst.BaseSmallStatement) -> tuple[str, cst.BaseExpression | None] | None:
        if (isinstance(stmt, cst.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0].target, cst.Name)
                and (self._fn(), stmt.targets[0].target.value) in self.tapped):
            inner = _per_token_value(stmt.value)
            if inner is not stmt.value:  # seg_loss = float((-np.log(p)).sum()): tap the per-token values
                return "tap", inner
        if isinstance(stmt, cst.AugAssign) and isinstance(stmt.operator, (cst.AddAssign, cst.SubtractAssign)):
            if isinstance(stmt.value, cst.Name) and (self._fn(), stmt.value.value) in self.done_taps:
                return None  # loss_sum += seg_loss: already recorded, per token, where seg_loss was assigned
            name = _target_name(stmt.target) or ""
            per_token = _per_token_value(stmt.value)
            if isinstance(per_token, cst.Name) and PER_TOKEN_NAME.match(per_token.value) and per_token is not stmt.value:
                return "score", per_token  # sums[0] += nll.double().sum(): the per-token tensor, whatever the target
            if per_token is not stmt.value and not isinstance(stmt.target, cst.Subscript) and (
                    _is_neg_log(per_token) or isinstance(per_token, cst.Name) and (self._fn(), per_token.value) in self.neg_logs):
                # cl += float((-np.log(p)).sum()), or ls += float(snll.sum()) after snll = -np.log(…): a sum of negative logs
                return "score", per_token
            if isinstance(stmt.target, cst.Subscript) and not self.acc.search(name):
                return "update", None  # a table entry bumped: counts[key] += 1
            if self.acc.search(name) and not TABLE.search(name):
                value = _per_token_value(stmt.value)
                if isinstance(stmt.operator, cst.SubtractAssign):
                    value = cst.UnaryOperation(cst.Minus(), value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()]))
                return "score", value
        if isinstance(stmt, cst.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0].target, cst.Subscript):
            # a per-token array by name, or any slice assignment of a negative log (``out[s:e] = -np.log(p)``)
            if PER_TOKEN_ARRAY.match(_base_name(stmt.targets[0].target) or "") or _is_neg_log(stmt.value):
                return "score", stmt.targets[0].target
        if isinstance(stmt, cst.Expr) and isinstance(stmt.value, cst.Call) and isinstance(stmt.value.func, cst.Attribute):
            attr = stmt.value.func.attr.value
            owner = _base_name(stmt.value.func.value) or ""
            if attr == "append" and PER_TOKEN_ARRAY.match(owner) and stmt.value.args:
                return "score", stmt.value.args[0].value
            if attr in UPDATE_CALLS and not (attr == "add" and owner in ("torch", "np", "numpy")):
                return "update_call", None
        if isinstance(stmt, cst.Return) and stmt.value is not None and _is_neg_log(stmt.value):
            return "score_return", stmt.value
        return None

    def leave_SimpleStatementLine(self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine):
        line = self.get_metadata(PositionProvider, original).start.line
        if len(updated.body) == 1:
            out = self._one(updated, updated.body[0], line)
            return updated if out is None else out
        # a; b; c on one line (minified records): one line per statement when any of them is a site
        lines = self._split(list(updated.body), line, leading=updated.leading_lines)
        return cst.FlattenSentinel(lines) if lines else updated

    def leave_SimpleStatementSuite(self, original: cst.SimpleStatementSuite, updated: cst.SimpleStatementSuite):
        # ``for x in xs: a; b`` (minified records): an indented block when any of its statements is a site
        lines = self._split(list(updated.body), self.get_metadata(PositionProvider, original).start.line)
        return cst.IndentedBlock(body=lines) if lines else updated

    def _split(self, body: list, line: int, leading=()) -> list | None:
        out, hit = [], False
        for k, stmt in enumerate(body):
            one = cst.SimpleStatementLine([stmt.with_changes(semicolon=cst.MaybeSentinel.DEFAULT)],
                                          leading_lines=leading if k == 0 else ())
            got = self._one(one, one.body[0], line)
            hit |= got is not None
            got = one if got is None else got
            out.extend(got.nodes if isinstance(got, cst.FlattenSentinel) else [got])
        return out if hit else None

    def _one(self, updated: cst.SimpleStatementLine, small: cst.BaseSmallStatement, line: int):
        cls = self._classify(small)
        if cls is None:
            return None
        kind, value = cls
        self.sites.append(Site("score" if kind == "tap" else kind.split("_")[0], line, cst.Module([]).code_for_node(small).strip(),
                               self.functions[-1][0] if self.functions else ""))
        names = self._vars()
        if kind == "tap":  # NAME = reduce(X) → NAME = reduce(tap(X)): X evaluated once, recorded on its way
            self.done_taps.add((self._fn(), small.targets[0].target.value))
            tap = cst.Call(func=cst.Attribute(cst.Name("__pgolf_probe__"), cst.Name("passthrough")),
                           args=[cst.Arg(value), cst.Arg(_loop_dict(names)), cst.Arg(cst.Integer(str(line)))])
            return updated.with_changes(body=[small.with_changes(value=small.value.deep_replace(_same_in(small.value, value), tap))])
        if kind == "score_return":  # return -log(p): record the value on its way out
            wrapped = cst.Call(func=cst.Attribute(cst.Name("__pgolf_probe__"), cst.Name("passthrough")),
                               args=[cst.Arg(value), cst.Arg(_loop_dict(names)), cst.Arg(cst.Integer(str(line)))])
            return updated.with_changes(body=[small.with_changes(value=wrapped)])
        if kind == "update_call":  # obj.update(a, b) → call_update(obj.update, loop, line, a, b): args evaluated once
            call = small.value
            wrapped = cst.Call(func=cst.Attribute(cst.Name("__pgolf_probe__"), cst.Name("call_update")),
                               args=[cst.Arg(call.func), cst.Arg(_loop_dict(names)), cst.Arg(cst.Integer(str(line)))] + list(call.args))
            return updated.with_changes(body=[small.with_changes(value=wrapped)])
        if kind == "score":
            after = _call("scored", [value, _loop_dict(names), cst.Integer(str(line))])  # type: ignore[list-item]
            return cst.FlattenSentinel([updated, after])
        before = _call("updated", [_loop_dict(names), cst.Integer(str(line))])
        return cst.FlattenSentinel([before, updated])


def _same_in(tree: cst.CSTNode, original: cst.CSTNode) -> cst.CSTNode:
    """The node of ``tree`` (the updated statement) equal to ``original`` (found in the original one)."""
    for node in _walk(tree):
        if node is original or node.deep_equals(original):
            return node
    return original


def instrument_source(source: str, accumulator: str | None = None, *, reentry: bool = False) -> Instrumented:
    """``reentry``: decorate each function holding a score site (except ``main``) with the runtime's
    ``reentry``, which replays it on mutated validation streams when the probe asks for it."""
    module = cst.parse_module(source)
    wrapper = cst.MetadataWrapper(module)
    acc = re.compile(accumulator) if accumulator else ACCUMULATOR
    names = _AccumulatedNames(acc)
    wrapper.module.visit(names)
    tr = _Transform(acc if accumulator else None, names.names, reentry, names.neg_logs)
    new = wrapper.visit(tr)
    header = cst.parse_statement(f"import {RUNTIME} as __pgolf_probe__\n")
    body = list(new.body)
    # after the docstring and __future__ imports, which must stay first
    i = 0
    while i < len(body) and isinstance(body[i], cst.SimpleStatementLine) and (
            isinstance(body[i].body[0], cst.Expr) and isinstance(body[i].body[0].value, cst.SimpleString)
            or isinstance(body[i].body[0], cst.ImportFrom) and getattr(body[i].body[0].module, "value", "") == "__future__"):
        i += 1
    body.insert(i, header)
    return Instrumented(new.with_changes(body=body).code, tr.sites, tr.reentered)
