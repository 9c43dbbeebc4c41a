"""A metamorphic generator: rewrites a record's Python without changing what it computes.

    from tests.metamorphic.rewrite import mutate, TRANSFORMS
    m = mutate({"train_gpt.py": src, "README.md": readme}, seed=3, transforms=["rename_locals"])
    m.files, m.applied   # the rewritten file map (new helper modules included), what was done

Transforms (each deterministic given the seed; each either applies or reports that it found no
candidate):

* ``rename_locals``       locals and parameters of every function, consistently (keywords checked)
* ``rename_attributes``   attributes and methods the program's own classes define (``self.x = ``,
                          method defs), at every access and in constant getattr/setattr/hasattr
* ``rename_functions``    module-level functions, at every call site and ``from mod import`` line
* ``inline_helper``       a one-``return`` helper inlined at a call site with simple arguments
* ``extract_expression``  an assigned expression extracted into a new module-level helper
* ``move_helper``         a self-contained module-level helper moved into a sibling module and imported
* ``reorder_definitions`` module-level defs shuffled inside runs of defs (definition-time deps kept)
* ``dead_code``           a copy of a statement behind a false constant (``if False:`` or a flag)

What is never touched, because it is not only code: names that appear in string constants (an
``exec`` payload, a state-dict key; for attributes also a word of a longer string, such as the
``"attn_scale,mlp_scale"`` pattern lists records match parameter names against), class-body attributes (hyperparameters are dumped to the logs by
name), dunders, ``self``/``cls``, attribute names of library objects (torch, numpy, builtins), and
files that carry ``pgolf:`` comments (ast.unparse drops comments) or do not parse.
"""
from __future__ import annotations

import ast
import builtins
import copy
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

TRANSFORMS = ("rename_locals", "rename_attributes", "rename_functions", "inline_helper", "extract_expression",
              "move_helper", "reorder_definitions", "dead_code")

_WORDS = ("amber", "basil", "cedar", "delta", "ember", "fjord", "grove", "heron", "iris", "juniper", "kelp", "lumen",
          "maple", "nectar", "onyx", "pylon", "quartz", "raven", "sable", "thyme", "umber", "vapor", "willow", "yarrow",
          "zephyr")
_DYNAMIC = {"locals", "vars", "eval", "exec", "globals", "dir"}
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEEP_PARAMS = {"self", "cls"}
_NAMED_ATTR_CALLS = {"getattr": 1, "setattr": 1, "hasattr": 1, "delattr": 1, "register_buffer": 0,
                     "register_parameter": 0, "register_module": 0, "add_module": 0}


@dataclass
class Mutant:
    files: dict[str, str]
    applied: list[str] = field(default_factory=list)  # "transform: detail"


# -- helpers ------------------------------------------------------------------------------------

def _library_attrs() -> frozenset[str]:
    """Attribute names library objects have (renaming one would change meaning on those objects)."""
    names: set[str] = set()
    for obj in (object, int, float, str, bytes, list, dict, set, tuple, type, BaseException):
        names |= set(dir(obj))
    try:
        import numpy as np
        names |= set(dir(np.ndarray)) | set(dir(np.zeros(1)))
    except ImportError:  # pragma: no cover
        pass
    try:
        import torch
        from torch import nn
        p = torch.zeros(1, requires_grad=True)
        for obj in (torch.Tensor, torch.zeros(1), nn.Module, nn.Linear(2, 2), nn.Embedding(2, 2), nn.LayerNorm(2),
                    nn.Conv1d(1, 1, 1), torch.optim.Optimizer, torch.optim.SGD([p], lr=0.1), torch.autograd.Function,
                    torch.nn.parallel.DistributedDataParallel, torch.utils.data.Dataset):
            names |= set(dir(obj))
    except Exception:  # pragma: no cover - torch is a dev dependency; without it we are more conservative
        names |= {"weight", "bias", "forward", "step", "train", "eval", "state", "param_groups", "data", "grad"}
    names |= {"weight", "bias", "running_mean", "running_var", "lr", "momentum", "shape", "dtype", "device"}
    return frozenset(names)


_LIB_ATTRS: frozenset[str] | None = None


def library_attrs() -> frozenset[str]:
    """The committed list (importing torch costs seconds per process) plus this Python's built-ins."""
    global _LIB_ATTRS
    if _LIB_ATTRS is None:
        text = Path(__file__).with_name("library_attrs.txt").read_text(encoding="utf-8")
        listed = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
        builtin = set().union(*(dir(o) for o in (object, int, float, str, bytes, list, dict, set, tuple, type, BaseException)))
        _LIB_ATTRS = frozenset(listed) | builtin
    return _LIB_ATTRS


def _string_constants(trees: dict[str, ast.Module]) -> set[str]:
    out = set()
    for t in trees.values():
        for n in ast.walk(t):
            if isinstance(n, ast.Constant) and isinstance(n.value, str):
                out.add(n.value)
    return out


def _all_identifiers(trees: dict[str, ast.Module]) -> set[str]:
    out = set(dir(builtins))
    for t in trees.values():
        for n in ast.walk(t):
            if isinstance(n, ast.Name):
                out.add(n.id)
            elif isinstance(n, ast.Attribute):
                out.add(n.attr)
            elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                out.add(n.name)
            elif isinstance(n, ast.arg):
                out.add(n.arg)
            elif isinstance(n, ast.alias):
                out.add((n.asname or n.name).split(".")[0])
            elif isinstance(n, ast.keyword) and n.arg:
                out.add(n.arg)
    return out


class _Fresh:
    def __init__(self, rng: random.Random, taken: set[str]):
        self.rng, self.taken = rng, taken

    def __call__(self, hint: str = "") -> str:
        while True:
            name = f"{self.rng.choice(_WORDS)}_{self.rng.randrange(10, 999)}"
            if name not in self.taken:
                self.taken.add(name)
                return name


def _functions(tree: ast.AST):
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _calls_named(tree: ast.AST, names: set[str]) -> bool:
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in names for n in ast.walk(tree))


def _bound_in(fn: ast.AST) -> set[str]:
    """Names bound anywhere in a function's subtree (params, targets, imports, defs inside it)."""
    out: set[str] = set()
    for n in ast.walk(fn):
        if isinstance(n, ast.arg):
            out.add(n.arg)
        elif isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
            out.add(n.id)
        elif isinstance(n, ast.alias) and n is not None:
            out.add((n.asname or n.name).split(".")[0])
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n is not fn:
            out.add(n.name)
        elif isinstance(n, ast.ExceptHandler) and n.name:
            out.add(n.name)
        elif isinstance(n, (ast.MatchAs, ast.MatchStar)) and n.name:
            out.add(n.name)
    return out


def _keyword_names(trees: dict[str, ast.Module]) -> set[str]:
    return {k.arg for t in trees.values() for n in ast.walk(t) if isinstance(n, ast.Call) for k in n.keywords if k.arg}


def _declared_global(fn: ast.AST) -> set[str]:
    return {name for n in ast.walk(fn) if isinstance(n, ast.Global) for name in n.names}


def _module_level_bound(tree: ast.Module) -> set[str]:
    out: set[str] = set()
    for st in tree.body:
        for n in ast.walk(st) if not isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else []:
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                out.add(n.id)
            elif isinstance(n, ast.alias):
                out.add((n.asname or n.name).split(".")[0])
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(st.name)
    return out


# -- transforms ---------------------------------------------------------------------------------

class _Ctx:
    def __init__(self, trees: dict[str, ast.Module], rng: random.Random, entry: str):
        self.trees, self.rng, self.entry = trees, rng, entry
        self.new_files: dict[str, ast.Module] = {}
        self.fresh = _Fresh(rng, _all_identifiers(trees) | set(_WORDS))


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _own_bound(fn: ast.AST) -> set[str]:
    """Names bound in fn's own scope (not in nested functions, lambdas or comprehensions)."""
    out: set[str] = set()
    a = fn.args
    out |= {x.arg for x in a.args + a.kwonlyargs + a.posonlyargs}
    out |= {x.arg for x in (a.vararg, a.kwarg) if x}
    stack = list(fn.body)
    while stack:
        n = stack.pop()
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(n.name)
            continue
        if isinstance(n, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            continue
        if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
            out.add(n.id)
        elif isinstance(n, ast.ExceptHandler) and n.name:
            out.add(n.name)
        elif isinstance(n, ast.alias):
            out.add((n.asname or n.name).split(".")[0])
        stack.extend(ast.iter_child_nodes(n))
    return out


def _header_nodes(fn: ast.AST) -> set[int]:
    """ids of the nodes of fn's decorators, defaults and annotations: evaluated in the enclosing scope."""
    a = fn.args
    parts = list(fn.decorator_list) + a.defaults + [d for d in a.kw_defaults if d is not None]
    parts += [x.annotation for x in a.args + a.kwonlyargs + a.posonlyargs if x.annotation]
    if fn.returns:
        parts.append(fn.returns)
    return {id(n) for p in parts for n in ast.walk(p)}


def rename_locals(ctx: _Ctx) -> str | None:
    keywords = _keyword_names(ctx.trees)
    strings = _string_constants(ctx.trees)
    done = 0
    for tree in ctx.trees.values():
        globals_ = _module_level_bound(tree) | set(dir(builtins))
        tops = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        nested = {id(m) for f in tops for m in ast.walk(f) if m is not f and isinstance(m, _SCOPES)}
        for fn in tops:
            if id(fn) in nested or _calls_named(fn, _DYNAMIC) or any(isinstance(n, ast.ClassDef) for n in ast.walk(fn)):
                continue
            own = _own_bound(fn)
            inner = _bound_in(fn) - own - globals_  # bound only in nested scopes, never a global
            bound = (own | inner) - _declared_global(fn) - _KEEP_PARAMS - strings
            bound -= {n.name for n in ast.walk(fn) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
            params = {a.arg for a in ast.walk(fn) if isinstance(a, ast.arg)}
            bound -= params & keywords  # a parameter passed by keyword somewhere keeps its name
            bound -= {(a.asname or a.name).split(".")[0] for a in ast.walk(fn) if isinstance(a, ast.alias)}
            bound -= {name for n in ast.walk(fn) if isinstance(n, ast.Nonlocal) for name in n.names}
            if not bound:
                continue
            header = _header_nodes(fn)
            mapping = {b: ctx.fresh() for b in sorted(bound)}
            for n in ast.walk(fn):
                if id(n) in header:
                    continue
                if isinstance(n, ast.Name) and n.id in mapping:
                    n.id = mapping[n.id]
                elif isinstance(n, ast.arg) and n.arg in mapping:
                    n.arg = mapping[n.arg]
                elif isinstance(n, ast.ExceptHandler) and n.name in mapping:
                    n.name = mapping[n.name]
            done += len(mapping)
    return f"{done} locals/parameters" if done else None


def _class_defined_attrs(trees: dict[str, ast.Module]) -> tuple[set[str], set[str]]:
    """(attributes set through self.X = / methods of the program's classes, names to keep)."""
    attrs: set[str] = set()
    keep: set[str] = set()
    for t in trees.values():
        for cls in [n for n in ast.walk(t) if isinstance(n, ast.ClassDef)]:
            special = any(isinstance(d, (ast.Name, ast.Attribute, ast.Call)) for d in cls.decorator_list) or any(
                (isinstance(b, ast.Name) and b.id in {"NamedTuple", "TypedDict", "Enum", "IntEnum"}) or
                (isinstance(b, ast.Attribute) and b.attr in {"NamedTuple", "Enum"}) for b in cls.bases)
            for st in cls.body:
                if isinstance(st, (ast.Assign, ast.AnnAssign)):  # class-body attributes: keep (dumped by name)
                    for tgt in (st.targets if isinstance(st, ast.Assign) else [st.target]):
                        for n in ast.walk(tgt):
                            if isinstance(n, ast.Name):
                                keep.add(n.id)
                if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    if any(isinstance(d, ast.Name) and d.id == "property" or isinstance(d, ast.Attribute) for d in st.decorator_list):
                        keep.add(st.name)
                    attrs.add(st.name)
                    first = st.args.args[0].arg if st.args.args else None
                    for n in ast.walk(st):
                        if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store) and isinstance(n.value, ast.Name) \
                                and n.value.id == first:
                            attrs.add(n.attr)
            if special:
                keep |= {n.attr for n in ast.walk(cls) if isinstance(n, ast.Attribute)}
                keep |= {st.name for st in cls.body if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef))}
    return attrs, keep


def rename_attributes(ctx: _Ctx) -> str | None:
    attrs, keep = _class_defined_attrs(ctx.trees)
    strings = _string_constants(ctx.trees)
    named_strings = set()
    for t in ctx.trees.values():
        for n in ast.walk(t):
            if isinstance(n, ast.Call):
                pos = _attr_string_pos(n)
                if pos is not None:
                    named_strings.add(n.args[pos].value)
    lib = library_attrs()
    module_names = set().union(*(_module_level_bound(t) for t in ctx.trees.values()))
    # a word inside a longer string names the attribute too: ``"attn_scale,mlp_scale".split(",")`` matched
    # against parameter names (``any(p in name for p in patterns)``) must keep matching
    words = {w for c in strings - named_strings for w in _WORD.findall(c) if w != c}
    cands = sorted(a for a in attrs - keep - lib if not a.startswith("__") and (a not in strings or a in named_strings)
                   and a not in module_names and a not in words)
    # a string that names the attribute elsewhere (not in a getattr-like call) blocks the rename
    blocked = set()
    for t in ctx.trees.values():
        allowed = {id(n.args[_attr_string_pos(n)]) for n in ast.walk(t) if isinstance(n, ast.Call) and _attr_string_pos(n) is not None}
        for n in ast.walk(t):
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in cands and id(n) not in allowed:
                blocked.add(n.value)
    cands = [c for c in cands if c not in blocked]
    if not cands:
        return None
    mapping = {a: ctx.fresh() for a in cands}
    for t in ctx.trees.values():
        methods = _method_ids(t)
        for n in ast.walk(t):
            if isinstance(n, ast.Attribute) and n.attr in mapping:
                n.attr = mapping[n.attr]
            elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name in mapping and id(n) in methods:
                n.name = mapping[n.name]
            elif isinstance(n, ast.Call):
                pos = _attr_string_pos(n)
                if pos is not None and n.args[pos].value in mapping:
                    n.args[pos] = ast.Constant(mapping[n.args[pos].value])
    return f"{len(mapping)} attributes/methods"


def _attr_string_pos(call: ast.Call) -> int | None:
    f = call.func
    name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
    pos = _NAMED_ATTR_CALLS.get(name or "")
    if pos is None or len(call.args) <= pos:
        return None
    arg = call.args[pos]
    return pos if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None


def _method_ids(tree: ast.Module) -> set[int]:
    return {id(st) for c in ast.walk(tree) if isinstance(c, ast.ClassDef) for st in c.body}


def _module_functions(tree: ast.Module) -> list[ast.FunctionDef]:
    return [st for st in tree.body if isinstance(st, ast.FunctionDef)]


def rename_functions(ctx: _Ctx) -> str | None:
    strings = _string_constants(ctx.trees)
    locally_bound = set()
    for t in ctx.trees.values():
        for fn in _functions(t):
            locally_bound |= _bound_in(fn) - {fn.name}
        for cls in [n for n in ast.walk(t) if isinstance(n, ast.ClassDef)]:
            locally_bound |= {st.name for st in cls.body if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef))}
    attr_names = {n.attr for t in ctx.trees.values() for n in ast.walk(t) if isinstance(n, ast.Attribute)}
    mapping: dict[tuple[str, str], str] = {}  # (module file, name) -> new
    for rel, t in ctx.trees.items():
        for fn in _module_functions(t):
            if fn.name in {"main"} or fn.name.startswith("__") or fn.name in strings or fn.name in locally_bound:
                continue
            if fn.name in attr_names and rel != ctx.entry:  # used as module.attr elsewhere: handled below only for entry
                continue
            mapping[(rel, fn.name)] = ctx.fresh()
    if not mapping:
        return None
    by_module = {}
    for (rel, name), new in mapping.items():
        by_module.setdefault(rel[:-3].replace("/", "."), {})[name] = new
    for rel, t in ctx.trees.items():
        own = {name: new for (r, name), new in mapping.items() if r == rel}
        imported: dict[str, str] = {}
        for n in ast.walk(t):
            if isinstance(n, ast.ImportFrom) and n.module in by_module and n.level == 0:
                for a in n.names:
                    if a.name in by_module[n.module]:
                        new = by_module[n.module][a.name]
                        if a.asname is None:
                            imported[a.name] = new
                        a.name = new
        names = {**own, **imported}
        for n in ast.walk(t):
            if isinstance(n, ast.Name) and n.id in names:
                n.id = names[n.id]
            elif isinstance(n, ast.FunctionDef) and n in t.body and n.name in own:
                n.name = own[n.name]
            elif isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in by_module \
                    and n.attr in by_module[n.value.id]:
                n.attr = by_module[n.value.id][n.attr]
    return f"{len(mapping)} functions"


def _simple_return_helpers(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    out = {}
    for fn in _module_functions(tree):
        a = fn.args
        if fn.decorator_list or a.vararg or a.kwarg or a.kwonlyargs or a.defaults or a.posonlyargs:
            continue
        body = [st for st in fn.body if not (isinstance(st, ast.Expr) and isinstance(st.value, ast.Constant))]
        if len(body) == 1 and isinstance(body[0], ast.Return) and body[0].value is not None:
            expr = body[0].value
            if any(isinstance(n, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.NamedExpr,
                                  ast.Yield, ast.YieldFrom, ast.Await)) for n in ast.walk(expr)):
                continue
            out[fn.name] = fn
    return out


class _Subst(ast.NodeTransformer):
    def __init__(self, mapping: dict[str, ast.expr]):
        self.mapping = mapping

    def visit_Name(self, node: ast.Name):
        if node.id in self.mapping and isinstance(node.ctx, ast.Load):
            return copy.deepcopy(self.mapping[node.id])
        return node


def inline_helper(ctx: _Ctx) -> str | None:
    sites = []
    for rel, t in ctx.trees.items():
        helpers = _simple_return_helpers(t)
        if not helpers:
            continue
        module_names = _module_level_bound(t)
        for fn in _functions(t):
            bound = _bound_in(fn)
            for call in ast.walk(fn):
                if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in helpers):
                    continue
                h = helpers[call.func.id]
                if h is fn or call.keywords or len(call.args) != len(h.args.args):
                    continue
                if not all(isinstance(a, (ast.Name, ast.Constant)) for a in call.args):
                    continue
                params = {a.arg for a in h.args.args}
                free = {n.id for n in ast.walk(h.body[-1].value) if isinstance(n, ast.Name)} - params
                # the helper's globals must mean the same at the call site
                if free & bound or not free <= (module_names | set(dir(builtins))):
                    continue
                sites.append((rel, fn, call, h))
    if not sites:
        return None
    rel, fn, call, h = ctx.rng.choice(sites)
    expr = copy.deepcopy(h.body[-1].value)
    new = _Subst({p.arg: a for p, a in zip(h.args.args, call.args)}).visit(expr)
    _replace_node(fn, call, new)
    return f"{h.name} inlined in {fn.name}"


def _replace_node(root: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(root):
        for fname, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, fname, new)
                return
            if isinstance(value, list):
                for i, v in enumerate(value):
                    if v is old:
                        value[i] = new
                        return
    raise ValueError("node not found")


def extract_expression(ctx: _Ctx) -> str | None:
    cands = []
    for rel, t in ctx.trees.items():
        methods = _method_ids(t)
        for fn in _functions(t):
            if id(fn) in methods and any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "super"
                                         for n in ast.walk(fn)):
                continue
            for st in ast.walk(fn):
                if isinstance(st, ast.Assign) and isinstance(st.value, (ast.BinOp, ast.Call, ast.Subscript, ast.Compare)):
                    e = st.value
                    if any(isinstance(n, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp,
                                          ast.NamedExpr, ast.Yield, ast.YieldFrom, ast.Await, ast.Starred)) for n in ast.walk(e)):
                        continue
                    if any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in _DYNAMIC | {"super"}
                           for n in ast.walk(e)):
                        continue
                    cands.append((rel, t, fn, st))
    if not cands:
        return None
    rel, t, fn, st = ctx.rng.choice(cands)
    names = []
    for n in ast.walk(st.value):
        if isinstance(n, ast.Name) and n.id not in names:
            names.append(n.id)
    helper_name = ctx.fresh()
    helper = ast.FunctionDef(name=helper_name, args=ast.arguments(posonlyargs=[], args=[ast.arg(arg=n) for n in names],
                                                                  kwonlyargs=[], kw_defaults=[], defaults=[]),
                             body=[ast.Return(value=st.value)], decorator_list=[], returns=None, type_params=[])
    st.value = ast.Call(func=ast.Name(id=helper_name, ctx=ast.Load()), args=[ast.Name(id=n, ctx=ast.Load()) for n in names],
                        keywords=[])
    t.body.insert(_first_def_index(t), helper)
    return f"expression at {fn.name} extracted into {helper_name}"


def _first_def_index(t: ast.Module) -> int:
    for i, st in enumerate(t.body):
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return i
    return len(t.body)


def _imports(t: ast.Module) -> list[ast.stmt]:
    return [st for st in t.body if isinstance(st, (ast.Import, ast.ImportFrom))]


def move_helper(ctx: _Ctx) -> str | None:
    t = ctx.trees.get(ctx.entry)
    if t is None:
        return None
    imported = set()
    for st in _imports(t):
        for a in st.names:
            imported.add((a.asname or a.name).split(".")[0])
    strings = _string_constants(ctx.trees)
    cands = []
    for fn in _module_functions(t):
        if fn.decorator_list or fn.name == "main" or fn.name in strings or _calls_named(fn, _DYNAMIC):
            continue
        if any(isinstance(n, (ast.Global, ast.Nonlocal)) for n in ast.walk(fn)):
            continue
        local = _bound_in(fn)
        free = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - local
        # annotations are evaluated where the def runs; they too must resolve in the new module
        if free <= (imported | set(dir(builtins))):
            cands.append(fn)
    if not cands:
        return None
    fn = ctx.rng.choice(cands)
    mod = f"{ctx.fresh()}_helpers"
    body = [copy.deepcopy(st) for st in _imports(t)] + [fn]
    ctx.new_files[f"{mod}.py"] = ast.Module(body=body, type_ignores=[])
    i = t.body.index(fn)
    t.body[i] = ast.ImportFrom(module=mod, names=[ast.alias(name=fn.name)], level=0)
    return f"{fn.name} moved to {mod}.py"


def _def_time_names(st: ast.stmt) -> set[str]:
    """Names a def/class statement reads when it runs (decorators, defaults, bases, annotations, class body)."""
    parts: list[ast.AST] = list(getattr(st, "decorator_list", []))
    if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)):
        a = st.args
        parts += a.defaults + [d for d in a.kw_defaults if d is not None]
        parts += [x.annotation for x in a.args + a.kwonlyargs + a.posonlyargs if x.annotation]
        if st.returns:
            parts.append(st.returns)
    elif isinstance(st, ast.ClassDef):
        parts += st.bases + [k.value for k in st.keywords]
        for b in st.body:
            if isinstance(b, (ast.FunctionDef, ast.AsyncFunctionDef)):
                parts.append(ast.Module(body=[], type_ignores=[]))
                parts += _def_parts(b)
            else:
                parts.append(b)
    return {n.id for p in parts for n in ast.walk(p) if isinstance(n, ast.Name)}


def _def_parts(fn) -> list[ast.AST]:
    a = fn.args
    out = list(fn.decorator_list) + a.defaults + [d for d in a.kw_defaults if d is not None]
    out += [x.annotation for x in a.args + a.kwonlyargs + a.posonlyargs if x.annotation]
    return out + ([fn.returns] if fn.returns else [])


def reorder_definitions(ctx: _Ctx) -> str | None:
    moved = 0
    for t in ctx.trees.values():
        runs, cur = [], []
        for i, st in enumerate(t.body):
            if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                cur.append(i)
            else:
                if len(cur) > 1:
                    runs.append(cur)
                cur = []
        if len(cur) > 1:
            runs.append(cur)
        for run in runs:
            defs = [t.body[i] for i in run]
            names = {d.name for d in defs}
            if len(names) < len(defs):  # a redefinition: the order decides which one wins
                continue
            deps = {id(d): _def_time_names(d) & (names - {d.name}) for d in defs}
            order, placed = [], set()
            pending = list(defs)
            while pending:
                ready = [d for d in pending if deps[id(d)] <= placed]
                if not ready:  # a cycle cannot happen for defs; keep the rest in place
                    order += pending
                    break
                d = ctx.rng.choice(ready)
                order.append(d)
                placed.add(d.name)
                pending.remove(d)
            moved += sum(1 for a, b in zip(order, defs) if a is not b)
            for i, d in zip(run, order):
                t.body[i] = d
    return f"{moved} definitions moved" if moved else None


def dead_code(ctx: _Ctx) -> str | None:
    cands = []
    for rel, t in ctx.trees.items():
        for fn in _functions(t):
            simple = [st for st in fn.body if isinstance(st, (ast.Assign, ast.AugAssign, ast.Expr))
                      and not (isinstance(st, ast.Expr) and isinstance(st.value, ast.Constant))]
            if simple and len(fn.body) > 1:
                cands.append((rel, t, fn, simple))
    if not cands:
        return None
    rel, t, fn, simple = ctx.rng.choice(cands)
    st = ctx.rng.choice(simple)
    if ctx.rng.random() < 0.5:
        test: ast.expr = ast.Constant(False)
        how = "if False"
    else:
        flag = ctx.fresh().upper()
        t.body.insert(_after_imports(t), ast.Assign(targets=[ast.Name(id=flag, ctx=ast.Store())], value=ast.Constant(False),
                                                   lineno=0))
        test = ast.Name(id=flag, ctx=ast.Load())
        how = f"if {flag} (= False)"
    start = 1 if fn.body and isinstance(fn.body[0], ast.Expr) and isinstance(fn.body[0].value, ast.Constant) else 0
    at = ctx.rng.randrange(start, len(fn.body) + 1)
    fn.body.insert(at, ast.If(test=test, body=[copy.deepcopy(st)], orelse=[]))
    return f"{how}: copy of a statement of {fn.name}"


def _after_imports(t: ast.Module) -> int:
    idx = 0
    for i, st in enumerate(t.body):
        if isinstance(st, (ast.Import, ast.ImportFrom)) or (i == 0 and isinstance(st, ast.Expr) and isinstance(st.value, ast.Constant)):
            idx = i + 1
        elif isinstance(st, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            break
    return idx


_FUNCS = {name: globals()[name] for name in TRANSFORMS}


def _compiles(trees: dict[str, ast.Module]) -> bool:
    try:
        for rel, t in trees.items():
            compile(ast.fix_missing_locations(t), rel, "exec")
        return True
    except (SyntaxError, ValueError, TypeError):
        return False


# -- entry point --------------------------------------------------------------------------------

def parseable(rel: str, text: str) -> ast.Module | None:
    if not rel.endswith(".py") or "pgolf:" in text:
        return None
    try:
        tree = ast.parse(text)
        compile(tree, rel, "exec")
        return tree
    except (SyntaxError, ValueError):
        return None


def mutate(files: dict[str, str | bytes], seed: int, transforms: list[str] | tuple[str, ...] | None = None,
           entry: str = "train_gpt.py") -> Mutant:
    """Apply ``transforms`` (default: all, in a seeded order) to the Python files of a record.

    Returns the new file map; ``applied`` lists what each transform did (transforms without a
    candidate are left out). Non-Python and unparseable files are returned unchanged."""
    rng = random.Random(seed)
    trees = {rel: t for rel, text in files.items() if isinstance(text, str) and (t := parseable(rel, text)) is not None}
    names = list(transforms) if transforms is not None else rng.sample(TRANSFORMS, len(TRANSFORMS))
    unknown = [n for n in names if n not in _FUNCS]
    if unknown:
        raise ValueError(f"unknown transform(s): {unknown}")
    ctx = _Ctx(trees, rng, entry)
    applied, used = [], []
    for name in names:
        done = _FUNCS[name](ctx)
        ctx.trees.update(ctx.new_files)
        ctx.new_files = {}
        if done:
            applied.append(f"{name}: {done}")
            used.append(name)
    if used and not _compiles(ctx.trees):
        # rare (e.g. a dead copy placed above a `global` declaration): redo without the last transform
        # that applied; the result is still a function of (files, seed, transforms)
        keep = [n for n in names if n != used[-1]]
        return mutate(files, seed, keep, entry)
    out = dict(files)
    for rel, t in ctx.trees.items():
        ast.fix_missing_locations(t)
        out[rel] = ast.unparse(t) + "\n"
    return Mutant(files=out, applied=applied)
