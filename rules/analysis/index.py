"""Per-file facts: the parse, the module index, env defaults and log-string literals.

Everything here depends only on a file's text, so it is cached process-wide by the sha256 of
that text (hundreds of PRs ship byte-identical ``train_gpt.py`` files).
"""
from __future__ import annotations

import ast
import hashlib
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field

_LRU_SIZE = 256


@dataclass
class EnvDefault:
    """``os.environ.get("VAR", default)`` (or ``os.getenv``) and the name it is bound to."""

    var: str
    default: object  # the literal default (str/int/float/bool/None); ``...`` when not a literal
    line: int
    attr: str | None = None  # the Hyperparameters field or module name it is assigned to
    expr: ast.AST | None = None  # the whole right-hand side (e.g. ``bool(int(os.environ.get(...)))``)


@dataclass
class FuncInfo:
    qualname: str  # "Class.method" or "fn" (nested: "outer.inner")
    short: str
    cls: str | None
    file: str
    node: ast.AST  # ast.FunctionDef | ast.AsyncFunctionDef
    line: int
    params: list[str] = field(default_factory=list)
    calls: list[tuple[str, ast.Call]] = field(default_factory=list)  # (callee short name, call)
    refs: set[str] = field(default_factory=set)  # every name/attribute referenced (for generous call edges)


@dataclass
class ClassInfo:
    name: str
    line: int
    bases: list[str]
    methods: dict[str, str]  # short -> qualname


@dataclass
class FileFacts:
    path: str
    text: str
    sha256: str
    lines: list[str]
    tree: ast.Module | None
    parse_error: str | None = None
    parents: dict[int, ast.AST] = field(default_factory=dict)  # id(node) -> parent
    functions: dict[str, FuncInfo] = field(default_factory=dict)
    classes: dict[str, ClassInfo] = field(default_factory=dict)
    assignments: dict[str, int] = field(default_factory=dict)  # module-level name -> line
    env: dict[str, EnvDefault] = field(default_factory=dict)  # env var -> default
    fields: dict[str, EnvDefault] = field(default_factory=dict)  # config field / module name -> default
    top_calls: list[tuple[str, ast.Call]] = field(default_factory=list)  # calls outside any function
    top_refs: set[str] = field(default_factory=set)
    skipped_lines: list[int] = field(default_factory=list)  # lines this Python could not parse (e.g. 3.12 f-strings)
    nodes: list[ast.AST] = field(default_factory=list, repr=False)  # every node of ``tree`` in ``ast.walk`` order
    _fn_at: dict[int, FuncInfo] | None = field(default=None, repr=False, compare=False)  # id(def node) -> FuncInfo

    def line_text(self, line: int | None) -> str:
        if line is None or not (1 <= line <= len(self.lines)):
            return ""
        return self.lines[line - 1].strip()

    def parent(self, node: ast.AST) -> ast.AST | None:
        return self.parents.get(id(node))

    def enclosing_function(self, node: ast.AST) -> FuncInfo | None:
        fn_at = self._fn_at
        if fn_at is None:  # a def whose qualname a later def took has no FuncInfo: the search goes on up
            fn_at = self._fn_at = {}
            for f in self.functions.values():
                fn_at.setdefault(id(f.node), f)
        parents = self.parents
        p = parents.get(id(node))
        while p is not None:
            f = fn_at.get(id(p))
            if f is not None:
                return f
            p = parents.get(id(p))
        return None


def call_name(func: ast.AST) -> str:
    """Dotted name of a call's callee: ``np.add.at`` → "np.add.at"; unknown parts are dropped."""
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        inner = call_name(func.value)
        return f"{inner}.{func.attr}" if inner else func.attr
    if isinstance(func, ast.Call):
        return call_name(func.func)
    if isinstance(func, ast.Subscript):
        return call_name(func.value)
    return ""


def _literal(node: ast.AST):
    try:
        return ast.literal_eval(node)
    except Exception:
        return ...


def env_call(node: ast.AST) -> tuple[str, object] | None:
    """``os.environ.get("X", d)`` / ``os.getenv("X", d)`` / ``os.environ["X"]`` → (X, d)."""
    if isinstance(node, ast.Call):
        name = call_name(node.func)
        if name.endswith(("environ.get", "getenv")) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            d = _literal(node.args[1]) if len(node.args) > 1 else None
            for kw in node.keywords:
                if kw.arg == "default":
                    d = _literal(kw.value)
            return node.args[0].value, d
    if isinstance(node, ast.Subscript) and call_name(node.value).endswith("environ") \
            and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
        return node.slice.value, None
    return None


def find_env(expr: ast.AST) -> tuple[str, object] | None:
    for n in walk(expr):
        got = env_call(n)
        if got:
            return got
    return None


def _children(node: ast.AST) -> list[ast.AST]:
    """``list(ast.iter_child_nodes(node))``, without its two generator layers (this runs per node)."""
    out = []
    for name in node._fields:
        try:
            v = getattr(node, name)
        except AttributeError:
            continue
        if isinstance(v, ast.AST):
            out.append(v)
        elif isinstance(v, list):
            out.extend(x for x in v if isinstance(x, ast.AST))
    return out


def walk(node: ast.AST):
    """``ast.walk``: the same nodes in the same order, faster. The analysis walks subtrees hundreds of
    times per folder; the stdlib version pays two generator layers per node, this one reads the child
    list the index stored on each node of an indexed file, and a whole indexed module is the list
    ``FileFacts.nodes`` (trees are never changed)."""
    whole = node.__dict__.get("_pg_walk")
    return iter(whole) if whole is not None else _walk(node)


def _walk(node: ast.AST):
    todo = deque([node])
    pop, extend = todo.popleft, todo.extend
    while todo:
        node = pop()
        try:
            extend(node._pg_kids)
        except AttributeError:  # a node of a tree nobody indexed
            extend(_children(node))
        yield node


class _Indexer(ast.NodeVisitor):
    def __init__(self, ff: FileFacts):
        self.ff = ff
        self.stack: list[str] = []  # qualname parts
        self.cls_stack: list[str | None] = [None]
        self.func: list[FuncInfo] = []
        self._visitors: dict[type, object] = {}

    def visit(self, node):
        v = self._visitors.get(node.__class__)
        if v is None:
            v = self._visitors[node.__class__] = getattr(self, "visit_" + node.__class__.__name__, self.generic_visit)
        return v(node)

    def generic_visit(self, node):
        parents = self.ff.parents
        node._pg_kids = kids = _children(node)  # for ``walk``
        for child in kids:
            parents[id(child)] = node
            self.visit(child)

    def visit_ClassDef(self, node: ast.ClassDef):
        qual = ".".join(self.stack + [node.name])
        self.ff.classes.setdefault(node.name, ClassInfo(node.name, node.lineno, [call_name(b) for b in node.bases], {}))
        self.stack.append(node.name)
        self.cls_stack.append(node.name)
        self.generic_visit(node)
        self.cls_stack.pop()
        self.stack.pop()
        _ = qual

    def _func(self, node):
        qual = ".".join(self.stack + [node.name])
        cls = self.cls_stack[-1]
        a = node.args
        params = [p.arg for p in a.posonlyargs + a.args] + ([a.vararg.arg] if a.vararg else []) + \
            [p.arg for p in a.kwonlyargs] + ([a.kwarg.arg] if a.kwarg else [])
        fi = FuncInfo(qual, node.name, cls, self.ff.path, node, node.lineno, params)
        self.ff.functions[qual] = fi
        if cls is not None and self.stack and self.stack[-1] == cls:
            self.ff.classes[cls].methods[node.name] = qual
        self.stack.append(node.name)
        self.cls_stack.append(None)
        self.func.append(fi)
        self.generic_visit(node)
        self.func.pop()
        self.cls_stack.pop()
        self.stack.pop()

    visit_FunctionDef = _func
    visit_AsyncFunctionDef = _func

    def visit_Call(self, node: ast.Call):
        name = call_name(node.func)
        short = name.rsplit(".", 1)[-1]
        if self.func:
            self.func[-1].calls.append((short, node))
        else:
            self.ff.top_calls.append((short, node))
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name):
        (self.func[-1].refs if self.func else self.ff.top_refs).add(node.id)
        node._pg_kids = [node.ctx]  # for ``walk`` (``_children`` of a Name)
        node.ctx._pg_kids = []  # the parser shares one Load/Store/Del leaf among all names

    def visit_Attribute(self, node: ast.Attribute):
        (self.func[-1].refs if self.func else self.ff.top_refs).add(node.attr)
        self.generic_visit(node)

    def _assign(self, node, targets, value):
        # children first: ``find_env`` then walks the value over the child lists this stores (an
        # expression holds no statement, so nothing below touches env, fields or assignments)
        self.generic_visit(node)
        if value is not None:
            env = find_env(value)
            if env:
                var, default = env
                names = [t.id if isinstance(t, ast.Name) else t.attr if isinstance(t, ast.Attribute) else None for t in targets]
                attr = next((n for n in names if n), None)
                ed = EnvDefault(var, default, node.lineno, attr, value)
                self.ff.env.setdefault(var, ed)
                if attr and (not self.func or self.cls_stack[-1] is None):
                    self.ff.fields.setdefault(attr, ed)
                if attr and self.func and self.func[-1].short == "__init__":
                    self.ff.fields.setdefault(attr, ed)
            elif not self.func:
                for t in targets:
                    if isinstance(t, ast.Name):
                        lit = _literal(value)
                        if lit is not ... and isinstance(lit, (int, float, str, bool)):
                            self.ff.fields.setdefault(t.id, EnvDefault("", lit, node.lineno, t.id, value))
        if not self.func and len(self.cls_stack) == 1:
            for t in targets:
                if isinstance(t, ast.Name):
                    self.ff.assignments.setdefault(t.id, node.lineno)

    def visit_Assign(self, node: ast.Assign):
        self._assign(node, node.targets, node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign):
        self._assign(node, [node.target], node.value)


def _index(path: str, text: str, sha: str, tree: ast.Module | None = None, nodes: list[ast.AST] | None = None) -> FileFacts:
    ff = FileFacts(path=path, text=text, sha256=sha, lines=text.split("\n"), tree=tree)
    if tree is None:
        nodes = None
        try:
            ff.tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            ff.tree, skipped = _parse_skipping(text)
            if ff.tree is None:
                ff.parse_error = f"does not parse as Python: {getattr(exc, 'msg', None) or type(exc).__name__}"
                return ff
            ff.skipped_lines = skipped
    ff.nodes = nodes if nodes is not None else list(walk(ff.tree))
    ff.tree._pg_walk = ff.nodes  # for ``walk(ff.tree)``
    try:
        _Indexer(ff).visit(ff.tree)
    except RecursionError:
        ff.parse_error = "nested too deeply to analyse"
    # env reads that are not assignments (e.g. ``if os.environ.get("X", "0") == "1":``)
    for node in ff.nodes:
        got = env_call(node)
        if got and got[0] not in ff.env:
            ff.env[got[0]] = EnvDefault(got[0], got[1], getattr(node, "lineno", 0), None)
    return ff


def _parse_skipping(text: str, max_skips: int = 200):
    """Parse code written for a newer Python (PEP 701 f-strings such as ``f'{d['k']}'``) by
    replacing each line the parser rejects with ``pass`` at the same indent. Returns (tree, lines)."""
    lines = text.split("\n")
    skipped: list[int] = []
    for _ in range(max_skips):
        try:
            return ast.parse("\n".join(lines)), skipped
        except SyntaxError as exc:
            ln = exc.lineno
            if not ln or ln > len(lines) or ln in skipped:
                return None, skipped
            raw = lines[ln - 1]
            if raw.rstrip().endswith((":", "(", "[", "{", ",", "\\")):
                return None, skipped  # a compound statement or a continued line: not safe to blank
            indent = raw[: len(raw) - len(raw.lstrip())]
            lines[ln - 1] = indent + "pass"
            skipped.append(ln)
        except (ValueError, RecursionError, MemoryError):
            return None, skipped
    return None, skipped


_cache: OrderedDict[str, FileFacts] = OrderedDict()
_lock = threading.Lock()


def file_facts(path: str, text: str, tree: ast.Module | None = None, nodes: list[ast.AST] | None = None) -> FileFacts:
    """Parse and index ``text``; identical texts share one FileFacts (LRU keyed by sha256).

    ``tree`` (and ``nodes``, its ``ast.walk`` order) may hand in the code reader's parse of this
    very text, so the file is parsed and walked once; the tree is read, never changed.
    A cached FileFacts may carry another folder's ``path``; callers use the path they passed.
    """
    sha = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    with _lock:
        hit = _cache.get(sha)
        if hit is not None:
            _cache.move_to_end(sha)
    if hit is None:
        hit = _index(path, text, sha, tree, nodes)
        with _lock:
            _cache[sha] = hit
            while len(_cache) > _LRU_SIZE:
                _cache.popitem(last=False)
    if hit.path != path:
        # same content, another folder: share the heavy parts, relabel the file
        clone = FileFacts(**{**hit.__dict__, "path": path, "_fn_at": None})
        clone.functions = {k: FuncInfo(**{**v.__dict__, "file": path}) for k, v in hit.functions.items()}
        return clone
    return hit
