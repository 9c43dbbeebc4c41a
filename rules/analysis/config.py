"""The configuration a run used, and a tiny evaluator for ``if`` guards under it.

Sources, strongest first: a value the logs print (``ngram_eval: True`` / ``NGRAM_EVAL=1`` in the
hyperparameter dump), an env assignment in the README's run command, the code's default.
"""
from __future__ import annotations

import ast
import re
import threading
from dataclasses import dataclass, field

from rules.analysis.index import EnvDefault, call_name, env_call

UNKNOWN = object()


@dataclass
class RunConfig:
    defaults: dict[str, EnvDefault] = field(default_factory=dict)  # field/module name -> default
    env_defaults: dict[str, EnvDefault] = field(default_factory=dict)  # ENV_VAR -> default
    readme_env: dict[str, str] = field(default_factory=dict)  # from the README run command
    logged: dict[str, str] = field(default_factory=dict)  # key -> value from the logs' dump
    markers: dict[str, list] = field(default_factory=dict)  # kind -> [LogLine]
    has_run_evidence: bool = False  # logs or a README run command exist
    script_env: dict[str, str] = field(default_factory=dict)  # from the folder's shell scripts (run*.sh)
    world_size: int | None = None  # processes the run used (logs, torchrun --nproc_per_node)
    env_helpers: dict[str, ast.AST] = field(default_factory=dict)  # the program's own env readers (short name -> def)

    def __post_init__(self):
        # embedded source printed into a log (``X = int(os.environ.get("X", "0"))``) is never configuration
        self.logged = {k: v for k, v in self.logged.items() if not _code_value(v)}

    def env_value(self, var: str) -> tuple[object, str]:
        """The string an env var had in the run, and where that came from."""
        if var in self.logged:
            return self.logged[var], "log"
        if var in self.readme_env:
            return self.readme_env[var], "readme"
        if var in self.script_env:
            return self.script_env[var], "readme"
        if var in _LAUNCHER_ENV:  # set by torchrun, not by the code's default
            return (str(self.world_size), "log") if self.world_size is not None and "WORLD" in var else (..., "default")
        ed = self.env_defaults.get(var)
        if ed is not None:
            return ed.default, "default"
        return None, "default"  # unset

    def configured_env(self, var: str) -> tuple[object, str] | None:
        """The string the run set an env var to (logs, README, scripts), or None when the run left it unset."""
        for src, table in (("log", self.logged), ("readme", self.readme_env), ("readme", self.script_env)):
            if var in table:
                return table[var], src
        return None

    def field_value(self, name: str) -> tuple[object, set[str]]:
        """Value of a Hyperparameters field / module constant under the run's configuration."""
        if name in self.logged:
            return _coerce(self.logged[name]), {"log"}
        ed = self.defaults.get(name)
        if ed is None:
            return UNKNOWN, set()
        if ed.expr is None:
            return ed.default, {"default"}
        srcs: set[str] = set()
        val = evaluate(ed.expr, self, srcs, depth=1)
        return val, srcs or (set() if not ed.var else {"default"})  # ``FLAG = False`` in the code: no configuration


_CODE_VALUE = re.compile(r"[()\[\]{}]|\bos\.|environ|getenv|^(self|args|h|hp|cfg)\.")


def _code_value(v: object) -> bool:
    return isinstance(v, str) and bool(_CODE_VALUE.search(v))


def _coerce(v: str):
    s = v.strip().strip("\"'")
    if s in ("True", "true"):
        return True
    if s in ("False", "false", "None"):
        return False if s != "None" else None
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return s


_LAUNCHER_ENV = {"WORLD_SIZE", "LOCAL_WORLD_SIZE", "RANK", "LOCAL_RANK"}
_WORLD = {"world_size", "WORLD_SIZE", "n_gpus", "num_gpus", "ngpus", "nproc"}
_CASTS = {"int": int, "float": float, "bool": bool, "str": str}


_LOCAL = threading.local()  # locals of an env helper being interpreted (``_run_helper``)


def evaluate(node: ast.AST, cfg: RunConfig, sources: set[str], depth: int = 0):
    """Evaluate a guard-like expression; UNKNOWN when any part cannot be known statically."""
    if depth > 12:
        return UNKNOWN
    scope = getattr(_LOCAL, "scope", None)
    if scope is not None:
        got = _scoped(node, scope, cfg, sources, depth)
        if got is not _NOT_SCOPED:
            return got
    got = env_call(node)
    if got is not None:
        val, src = cfg.env_value(got[0])
        sources.add(src)
        if val is ...:
            return UNKNOWN
        return val
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Attribute) and node.attr in _WORLD and node.attr not in cfg.defaults:
        if cfg.world_size is not None:
            sources.add("log")
            return cfg.world_size
        return UNKNOWN
    if isinstance(node, ast.Attribute):
        if node.attr in cfg.defaults:
            val, srcs = cfg.field_value(node.attr)
            sources.update(srcs)
            return val
        return UNKNOWN
    if isinstance(node, ast.Name):
        if node.id == "__name__":
            return "__main__"
        if node.id in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[node.id]
        if node.id in cfg.defaults:
            val, srcs = cfg.field_value(node.id)
            sources.update(srcs)
            return val
        if node.id in _WORLD and cfg.world_size is not None:
            sources.add("log")
            return cfg.world_size
        return UNKNOWN
    if isinstance(node, ast.Call):
        name = call_name(node.func)
        helper = cfg.env_helpers.get(name) if isinstance(node.func, ast.Name) else None
        if helper is not None:
            return _run_helper(helper, node, cfg, sources, depth + 1)
        if name.rsplit(".", 1)[-1] == "get_world_size" and cfg.world_size is not None:
            sources.add("log")
            return cfg.world_size
        if name in _CASTS and len(node.args) == 1:
            v = evaluate(node.args[0], cfg, sources, depth + 1)
            if v is UNKNOWN:
                return UNKNOWN
            try:
                if name == "bool" and isinstance(v, str):
                    return bool(v)
                return _CASTS[name](v if v is not None else 0)
            except (TypeError, ValueError):
                return UNKNOWN
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("lower", "strip", "upper") and not node.args:
            v = evaluate(node.func.value, cfg, sources, depth + 1)
            return getattr(v, node.func.attr)() if isinstance(v, str) else UNKNOWN
        return UNKNOWN
    if isinstance(node, ast.IfExp):
        t = evaluate(node.test, cfg, sources, depth + 1)
        return UNKNOWN if t is UNKNOWN else evaluate(node.body if t else node.orelse, cfg, sources, depth + 1)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        v = evaluate(node.operand, cfg, sources, depth + 1)
        return UNKNOWN if v is UNKNOWN else (not v)
    if isinstance(node, ast.BoolOp):
        vals = [evaluate(v, cfg, sources, depth + 1) for v in node.values]
        if isinstance(node.op, ast.And):
            if any(v is not UNKNOWN and not v for v in vals):
                return False
            return UNKNOWN if any(v is UNKNOWN for v in vals) else vals[-1]
        if any(v is not UNKNOWN and v for v in vals):
            return True
        return UNKNOWN if any(v is UNKNOWN for v in vals) else vals[-1]
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        a = evaluate(node.left, cfg, sources, depth + 1)
        b = evaluate(node.comparators[0], cfg, sources, depth + 1)
        if a is UNKNOWN or b is UNKNOWN:
            return UNKNOWN
        op = node.ops[0]
        try:
            if isinstance(op, ast.Eq):
                return a == b
            if isinstance(op, ast.NotEq):
                return a != b
            if isinstance(op, ast.Gt):
                return a > b
            if isinstance(op, ast.GtE):
                return a >= b
            if isinstance(op, ast.Lt):
                return a < b
            if isinstance(op, ast.LtE):
                return a <= b
            if isinstance(op, ast.In):
                return a in b
            if isinstance(op, ast.NotIn):
                return a not in b
            if isinstance(op, ast.Is):
                return a is b
            if isinstance(op, ast.IsNot):
                return a is not b
        except TypeError:
            return UNKNOWN
        return UNKNOWN
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        vals = [evaluate(e, cfg, sources, depth + 1) for e in node.elts]
        return UNKNOWN if any(v is UNKNOWN for v in vals) else tuple(vals)
    return UNKNOWN


_NOT_SCOPED = object()


def _scoped(node: ast.AST, scope: dict, cfg: RunConfig, sources: set[str], depth: int):
    """Inside an env helper: its locals, and env reads whose name is one of them (``os.environ.get(name)``)."""
    if isinstance(node, ast.Name) and node.id in scope:
        return scope[node.id]
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id in scope \
            and call_name(node.func).endswith(("environ.get", "getenv")):
        var = scope[node.args[0].id]
        if not isinstance(var, str):
            return UNKNOWN
        got = cfg.configured_env(var)
        if got is not None:
            sources.add(got[1])
            return got[0]
        sources.add("default")
        d = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "default"), None)
        return None if d is None else evaluate(d, cfg, sources, depth + 1)
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], (ast.In, ast.NotIn)) \
            and call_name(node.comparators[0]).endswith("environ") and isinstance(node.left, ast.Name) and node.left.id in scope:
        var = scope[node.left.id]  # ``name in os.environ``
        if not isinstance(var, str):
            return UNKNOWN
        got = cfg.configured_env(var)
        sources.add(got[1] if got is not None else "default")
        return (got is not None) == isinstance(node.ops[0], ast.In)
    return _NOT_SCOPED


def _run_helper(fn: ast.AST, call: ast.Call, cfg: RunConfig, sources: set[str], depth: int):
    """Interpret the program's own env reader (``def env_flag(name, default): raw = os.environ.get(name); if raw is
    None: return default; return raw.lower() in {...}``) at a call with constant arguments: straight-line
    assignments, ``if``/``else`` on known values and ``return``; anything else is UNKNOWN."""
    if depth > 12:
        return UNKNOWN
    a = fn.args
    params = [p.arg for p in a.posonlyargs + a.args]
    scope: dict[str, object] = {}
    defaults = a.defaults
    for p, d in zip(params[len(params) - len(defaults):], defaults):
        scope[p] = _literal_or_unknown(d)
    for p, d in zip(a.kwonlyargs, a.kw_defaults):
        if d is not None:
            scope[p.arg] = _literal_or_unknown(d)
    for p, v in zip(params, call.args):
        scope[p] = evaluate(v, cfg, sources, depth + 1)
    for k in call.keywords:
        if k.arg is None:
            return UNKNOWN
        scope[k.arg] = evaluate(k.value, cfg, sources, depth + 1)
    if len(call.args) > len(params) or any(v is UNKNOWN for k, v in scope.items() if k in params[:1]):
        return UNKNOWN
    saved = getattr(_LOCAL, "scope", None)
    _LOCAL.scope = scope
    try:
        return _exec_block(fn.body, scope, cfg, sources, depth)[1]
    finally:
        _LOCAL.scope = saved


def _exec_block(body, scope, cfg, sources, depth) -> tuple[bool, object]:
    """(returned, value); value UNKNOWN when the block cannot be followed."""
    for st in body:
        if isinstance(st, ast.Expr) and isinstance(st.value, ast.Constant):
            continue  # docstring
        if isinstance(st, (ast.Assign, ast.AnnAssign)):
            targets = st.targets if isinstance(st, ast.Assign) else [st.target]
            if st.value is None or len(targets) != 1 or not isinstance(targets[0], ast.Name):
                return True, UNKNOWN
            scope[targets[0].id] = evaluate(st.value, cfg, sources, depth + 1)
            continue
        if isinstance(st, ast.If):
            test = evaluate(st.test, cfg, sources, depth + 1)
            if test is UNKNOWN:
                return True, UNKNOWN
            done, val = _exec_block(st.body if test else st.orelse, scope, cfg, sources, depth)
            if done:
                return True, val
            continue
        if isinstance(st, ast.Return):
            return True, (evaluate(st.value, cfg, sources, depth + 1) if st.value is not None else None)
        return True, UNKNOWN
    return False, None


def _literal_or_unknown(node):
    try:
        return ast.literal_eval(node)
    except Exception:
        return UNKNOWN


_SH_ASSIGN = re.compile(r"(?<![\w-])(?:export\s+)?([A-Z][A-Z0-9_]{1,60})=(\"[^\"]*\"|'[^']*'|[^\s\\`;]+)")
_NPROC = re.compile(r"--nproc[_-]per[_-]node[= ](\d+)")


def script_env(text: str) -> dict[str, str]:
    """Env assignments a shell script (or a README command) makes: ``X=1 torchrun …``, ``export X=1``,
    ``X=1 \\`` continuations; ``--nproc_per_node=N`` becomes NPROC_PER_NODE. Comments are skipped;
    a ``${X:-d}`` value is read as ``d``."""
    out: dict[str, str] = {}
    for raw in text.split("\n"):
        line = raw.strip()
        if not line or line.startswith("#") or len(line) > 2000:
            continue
        line = line.split(" #", 1)[0]
        for k, v in _SH_ASSIGN.findall(line):
            v = v.strip("\"'")
            m = re.fullmatch(r"\$\{\w+:?-([^}]*)\}", v)
            if m:
                v = m.group(1)
            if "$" in v:
                continue
            out.setdefault(k, v)
        m = _NPROC.search(line)
        if m:
            out.setdefault("NPROC_PER_NODE", m.group(1))
    return out
