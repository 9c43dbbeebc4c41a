"""The code a record runs: the entry script, what it decodes, execs and imports from its folder.

Never executes anything. Self-extracting wrappers (``exec(lzma.decompress(base64.b85decode("…")))``,
7 merged records ship one), stubs that exec a sidecar (``exec(open(__file__.replace(…)).read())``),
``compile(S, F, "exec")`` of a variable, helper modules and C/C++/CUDA sources built at run time are
all followed by a tiny evaluator that knows only a whitelist of path operations and decoders, with a
cap on the decompressed size (zip bombs are reported, not expanded). What it cannot resolve is kept
in ``CodeBundle.dynamic`` so rules can say the static pass could not see it.

Records are written for Python 3.12 (PEP 701 f-strings with nested quotes); when ``ast`` of the
running interpreter refuses such a file, ``parse_python`` rewrites only the quotes of the offending
f-strings (``fstrings.requote``, else libcst), keeping every line number, so the analysis still sees
the same code.
"""
from __future__ import annotations

import ast
import base64
import bz2
import codecs
import hashlib
import lzma
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from auditor.evidence.fstrings import requote
from auditor.fs import MAX_DECOMPRESSED_BYTES, UnreadableFile, read_bytes, decode_text
from auditor.model import Problem

MAX_CODE_FILE_BYTES = 8 * 1024 * 1024
MAX_WRAPPER_DEPTH = 4
WRAPPER_MAX_LINES = 20  # a file this short that execs a payload is a wrapper: analyse the payload instead
NATIVE_SUFFIXES = (".c", ".cc", ".cpp", ".cxx", ".cu", ".cuh", ".h", ".hpp")
# words that show a file builds native code at run time (the source it names is then executed code)
_BUILD_WORDS = re.compile(r"\b(g\+\+|gcc|clang\+\+|clang|nvcc|cpp_extension|load_inline|ctypes|cffi|CDLL|BuildExtension|setuptools)\b")


@dataclass
class CodeFile:
    path: str  # relative to the record folder
    text: str
    sha256: str  # of the bytes as shipped (for decoded code: of the decoded bytes)
    size_bytes: int  # bytes as shipped on disk (decoded code: decoded length)
    role: str = "entry"  # entry | decoded | exec | import | native | payload (a data file a wrapper decodes)
    decoded_from: str | None = None  # wrapper file this source was decoded from
    wrapper_chain: list[str] = field(default_factory=list)  # e.g. ["b85decode", "lzma.decompress"]
    parse_error: str | None = None
    reached_from: str | None = None  # "train_gpt.py:12" — where the entry point reaches this file
    compat_text: str | None = None  # same code, f-string quotes rewritten so this Python's ast parses it
    # the reader's parse and its ``ast.walk`` order, kept so the analysis does not parse or walk again
    _tree: ast.Module | None = field(default=None, init=False, repr=False, compare=False)
    _nodes: list[ast.AST] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def is_python(self) -> bool:
        return self.role not in ("native", "payload")

    def tree(self) -> ast.Module | None:
        """The parsed module (None when it does not parse); line numbers are those of ``text``."""
        if not self.is_python:
            return None
        if self._tree is None:
            self._tree, _err, _compat = parse_python(self.compat_text or self.text)
        return self._tree

    def nodes(self) -> list[ast.AST]:
        """Every node of ``tree()`` in ``ast.walk`` order (empty when it does not parse)."""
        if self._nodes is None:
            tree = self.tree()
            self._nodes = _walk_list(tree) if tree is not None else []
        return self._nodes


def _walk_list(tree: ast.AST) -> list[ast.AST]:
    """``list(ast.walk(tree))`` (same breadth-first order) without a generator per node."""
    out = [tree]
    i = 0
    while i < len(out):
        node = out[i]
        i += 1
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


@dataclass
class DynamicCode:
    """Code the entry point runs that the static pass could not resolve (``exec(name)``, ``__import__(x)``)."""

    file: str
    line: int
    what: str  # "exec", "import", "subprocess"
    text: str  # the source line, verbatim
    why: str


@dataclass
class CodeBytes:
    """Code bytes as measured from the files (records.md §4.2)."""

    shipped: int  # every shipped file the entry point executes
    entry: int
    helpers: int  # helper .py modules imported or exec'd from the folder
    native: int  # .c/.cpp/.cu sources built at run time
    decoded: int  # what the wrappers decode to (not shipped; for reference)
    files: list[tuple[str, str, int]] = field(default_factory=list)  # (path, role, bytes)


@dataclass
class CodeBundle:
    entry: str | None = None
    files: list[CodeFile] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    undecodable: list[tuple[str, int, str]] = field(default_factory=list)  # (file, line, why)
    dynamic: list[DynamicCode] = field(default_factory=list)
    inline_native: list[tuple[str, int, str]] = field(default_factory=list)  # (file, line, source) of load_inline strings
    opaque_native: list[tuple[str, int, str]] = field(default_factory=list)  # (file, line, why): native code with no source to read
    scripts: list[tuple[str, str]] = field(default_factory=list)  # (path, text) of the folder's shell scripts: run configuration

    def python_sources(self) -> list[CodeFile]:
        """Files to analyse: thin wrappers are replaced by what they decode to; a long file that also
        execs a decoded payload is analysed too."""
        wrapped = {f.decoded_from for f in self.files if f.decoded_from}
        return [f for f in self.files
                if f.decoded_from or (f.is_python and (f.path not in wrapped or _code_lines(f.text) > WRAPPER_MAX_LINES))]

    def counted_bytes(self) -> int:
        """Bytes of every shipped file the entry point executes (decoded text is not shipped)."""
        return sum(f.size_bytes for f in self.files if f.role != "decoded")

    def code_bytes(self) -> CodeBytes:
        shipped = [f for f in self.files if f.role != "decoded"]
        return CodeBytes(
            shipped=sum(f.size_bytes for f in shipped),
            entry=sum(f.size_bytes for f in shipped if f.role == "entry"),
            helpers=sum(f.size_bytes for f in shipped if f.role in ("exec", "import", "payload")),
            native=sum(f.size_bytes for f in shipped if f.role == "native"),
            decoded=sum(f.size_bytes for f in self.files if f.role == "decoded"),
            files=[(f.path, f.role, f.size_bytes) for f in shipped],
        )

    def get(self, path: str) -> CodeFile | None:
        for f in self.files:
            if f.path == path and f.role != "decoded":
                return f
        return None


class DecodeRefused(Exception):
    pass


def _code_lines(text: str) -> int:
    return sum(1 for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#"))


# --- parsing 3.12 sources on 3.11 --------------------------------------------------------------

def parse_python(text: str) -> tuple[ast.Module | None, str | None, str | None]:
    """(tree, error, compat_text). ``compat_text`` is set when the f-string rewrite was needed."""
    try:
        return ast.parse(text), None, None
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        err = f"does not parse as Python: {getattr(exc, 'msg', None) or type(exc).__name__}" + (
            f" (line {exc.lineno})" if getattr(exc, "lineno", None) else "")
        if not isinstance(exc, SyntaxError) or "f-string" not in str(getattr(exc, "msg", "")):
            return None, err, None
    compat = requote(text)  # the fast scanner; libcst below where it is unsure or its text does not parse
    if compat is not None:
        try:
            return ast.parse(compat), None, compat
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            pass
    compat = _requote_fstrings(text)
    if compat is None:
        return None, err, None
    try:
        return ast.parse(compat), None, compat
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None, err, None


def _requote_fstrings(text: str) -> str | None:
    try:
        import libcst as cst
    except ImportError:  # pragma: no cover - libcst is a dependency
        return None

    class _Requote(cst.CSTTransformer):
        def leave_FormattedString(self, original, updated):
            quote = updated.start[len(updated.prefix):]
            inner = cst.Module([]).code_for_node(updated)[len(updated.start):-len(updated.end)]
            exprs = "".join(cst.Module([]).code_for_node(p) for p in updated.parts if isinstance(p, cst.FormattedStringExpression))
            if quote not in exprs:
                return updated
            for q in ("'", '"', "'''", '"""'):
                if q[0] in exprs or q in inner.replace("\\" + q[0], ""):
                    continue
                cand = f"{updated.prefix}{q}{inner}{q}"
                try:
                    ast.parse(cand, mode="eval")
                except SyntaxError:
                    continue
                return updated.with_changes(start=updated.prefix + q, end=q)
            return updated

    try:
        return cst.parse_module(text).visit(_Requote()).code
    except Exception:  # libcst refuses too: the file is reported as not parsing
        return None


# --- entry point ---------------------------------------------------------------------------------

_TORCHRUN_SCRIPT = re.compile(r"(?:torchrun|python3?)\b[^\n`]*?\s(\S*train[^\s`'\"]*\.py)")


def resolve_entry(files: list[str], readme: str | None) -> str | None:
    top = [f for f in files if "/" not in f]
    if "train_gpt.py" in top:
        return "train_gpt.py"
    if readme:
        named = {Path(m).name for m in _TORCHRUN_SCRIPT.findall(readme)}
        cands = [f for f in top if f in named]
        if len(cands) == 1:
            return cands[0]
    cands = [f for f in top if f.startswith("train_gpt") and f.endswith(".py")]
    if len(cands) == 1:
        return cands[0]
    cands = [f for f in top if f.startswith("train") and f.endswith(".py")]
    return cands[0] if len(cands) == 1 else None


class _Reader:
    """Walks from the entry point through everything it runs. One per folder."""

    def __init__(self, folder: Path, root: Path, files: list[str]):
        self.folder, self.root = folder, root
        self.files = set(files)
        self.bundle = CodeBundle()
        self.seen: set[str] = set()

    def load(self, rel: str) -> tuple[bytes, str] | None:
        try:
            data = read_bytes(self.folder / rel, self.root, MAX_CODE_FILE_BYTES)
        except UnreadableFile as exc:
            self.bundle.problems.append(Problem(rel, str(exc)))
            return None
        text, _enc, _rep = decode_text(data)
        return data, text

    def add_python(self, rel: str, role: str, reached_from: str | None = None) -> None:
        cf = self._add(rel, role, reached_from)
        if cf is not None:
            self.follow(cf, depth=0)

    def add_native(self, rel: str, reached_from: str) -> None:
        self._add(rel, "native", reached_from)  # counted, never followed: the analysis reads Python only

    def _add(self, rel: str, role: str, reached_from: str | None) -> CodeFile | None:
        if rel in self.seen:
            return None
        self.seen.add(rel)
        loaded = self.load(rel)
        if loaded is None:
            return None
        data, text = loaded
        cf = CodeFile(rel, text, hashlib.sha256(data).hexdigest(), len(data), role, reached_from=reached_from)
        self.bundle.files.append(cf)
        return cf

    def follow(self, cf: CodeFile, depth: int) -> None:
        tree, err, compat = parse_python(cf.text)
        cf.compat_text = compat
        if tree is None:
            cf.parse_error = err
            return
        cf._tree = tree
        nodes = cf.nodes()
        where = cf.decoded_from or cf.path
        base = str(Path(where).parent)
        base = "" if base == "." else base + "/"
        lines = cf.text.splitlines()
        env = _Env(nodes, where)
        for node in nodes:
            if isinstance(node, ast.Call):
                self.call(cf, node, env, base, lines, depth)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for name in _import_names(node):
                    self.import_module(name, base, f"{where}:{node.lineno}")
        self.native_sources(cf, nodes, base, where)

    def import_module(self, name: str, base: str, reached: str) -> bool:
        for b in dict.fromkeys((base, "")):
            for cand in (name.replace(".", "/") + ".py", name.replace(".", "/") + "/__init__.py"):
                c = _norm(b + cand)
                if c in self.files:
                    self.add_python(c, "import", reached)
                    return True
        return False

    def call(self, cf: CodeFile, node: ast.Call, env: "_Env", base: str, lines: list[str], depth: int) -> None:
        where = cf.decoded_from or cf.path
        fname = _resolved_callee(node, env)
        src_line = lines[node.lineno - 1].strip() if 0 < node.lineno <= len(lines) else ""
        reached = f"{where}:{node.lineno}"
        if fname in ("exec", "eval", "builtins.exec", "builtins.eval") and node.args:
            self.run_payload(cf, node, node.args[0], env, base, src_line, depth)
        elif fname in ("runpy.run_path", "run_path") and node.args:
            ev = _Eval(env, self)
            try:
                target = ev.path_of(ev.ev(node.args[0]))
            except DecodeRefused as exc:
                self.bundle.dynamic.append(DynamicCode(where, node.lineno, "exec", src_line, str(exc)))
                return
            if target in self.files:
                self.add_python(target, "exec", reached)
        elif fname in ("importlib.util.spec_from_file_location", "spec_from_file_location", "util.spec_from_file_location") \
                and len(node.args) >= 2:
            try:
                ev = _Eval(env, self)
                target = ev.path_of(ev.text_of(ev.ev(node.args[1])))
            except (DecodeRefused, RecursionError):
                self.bundle.dynamic.append(DynamicCode(where, node.lineno, "import", src_line,
                                                       "module file is computed at run time; the static pass cannot resolve it"))
                return
            if target in self.files:
                self.add_python(target, "import", reached)
        elif fname in ("importlib.import_module", "import_module", "__import__", "importlib.__import__") and node.args:
            lit = _str_const(node.args[0])
            if lit is None:
                try:
                    v = _Eval(env, self).ev(node.args[0])
                    lit = v if isinstance(v, str) else None
                except (DecodeRefused, RecursionError):
                    lit = None
            if lit is None:
                self.bundle.dynamic.append(DynamicCode(where, node.lineno, "import", src_line,
                                                       "module name is computed at run time; the static pass cannot resolve it"))
            elif not self.import_module(lit, base, reached) and _str_const(node.args[0]) is None:
                # a computed name that resolves outside the folder: not hidden code, but a module chosen at run time
                self.bundle.dynamic.append(DynamicCode(where, node.lineno, "module", src_line,
                                                       f"imports {lit!r} through a computed name"))
        elif fname.rsplit(".", 1)[-1] == "load_inline":
            for kw in node.keywords:
                if kw.arg in ("cpp_sources", "cuda_sources"):
                    try:
                        v = _Eval(env, self).ev(kw.value)
                    except (DecodeRefused, RecursionError):
                        v = None
                    parts = v if isinstance(v, list) else [v]
                    if v is None or not all(isinstance(x, str) for x in parts):
                        self.bundle.opaque_native.append((where, node.lineno, f"the {kw.arg} of load_inline are computed at run time"))
                        continue
                    for x in parts:
                        self.bundle.inline_native.append((where, node.lineno, x))
        elif fname.startswith(("subprocess.", "os.system", "os.popen", "os.exec")) or fname in ("Popen", "check_call", "check_output"):
            for n in ast.walk(node):
                lit = _str_const(n)
                if not lit:
                    continue
                for word in lit.split():
                    c = _norm(base + word)
                    if c.endswith(".py") and c in self.files:
                        self.add_python(c, "exec", reached)

    def run_payload(self, cf: CodeFile, call: ast.Call, arg: ast.AST, env: "_Env", base: str, src_line: str, depth: int) -> None:
        where = cf.decoded_from or cf.path
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and len(arg.value) < 64:
            return  # exec("x = 1"): nothing hidden
        if depth >= MAX_WRAPPER_DEPTH:
            self.bundle.undecodable.append((where, call.lineno, "wrappers nested too deeply"))
            return
        ev = _Eval(env, self)
        try:
            out = ev.ev(arg)
        except DecodeRefused as exc:
            if _has_string_payload(arg) or ev.touched_payload:
                self.bundle.undecodable.append((where, call.lineno, str(exc)))
            self.bundle.dynamic.append(DynamicCode(where, call.lineno, "exec", src_line,
                                                   f"the static pass cannot resolve what is executed: {exc}"))
            return
        except (RecursionError, MemoryError):
            self.bundle.undecodable.append((where, call.lineno, "payload too complex to decode"))
            return
        if isinstance(out, _FileText):
            if out.rel in self.files:
                self.add_python(out.rel, "exec", f"{where}:{call.lineno}")
            return
        for rel, data in ev.read_files.items():  # e.g. train_gpt.py.lzma: shipped bytes the wrapper runs
            if rel not in self.seen:
                self.seen.add(rel)
                self.bundle.files.append(CodeFile(rel, "", hashlib.sha256(data).hexdigest(), len(data), "payload",
                                                  reached_from=f"{where}:{call.lineno}"))
        if isinstance(out, (bytes, bytearray)):
            data = bytes(out)
            text, _e, _r = decode_text(data)
        elif isinstance(out, str):
            text = out
            data = out.encode("utf-8", errors="replace")
        else:
            self.bundle.dynamic.append(DynamicCode(where, call.lineno, "exec", src_line, "payload did not decode to source text"))
            return
        dec = CodeFile(where, text, hashlib.sha256(data).hexdigest(), len(data), "decoded", decoded_from=where,
                       wrapper_chain=list(ev.chain) or ["literal"], reached_from=f"{where}:{call.lineno}")
        self.bundle.files.append(dec)
        self.follow(dec, depth + 1)

    def native_sources(self, cf: CodeFile, nodes: list[ast.AST], base: str, where: str) -> None:
        """C/C++/CUDA sources of the folder that this file names and builds (g++, nvcc, cpp_extension…)."""
        natives = {f for f in self.files if f.lower().endswith(NATIVE_SUFFIXES)}
        shipped_libs = {f.rsplit("/", 1)[-1] for f in self.files if f.lower().endswith((".so", ".dll", ".dylib"))}
        if not (natives or shipped_libs) or not _BUILD_WORDS.search(cf.text):
            return
        by_name: dict[str, list[str]] = {}
        for f in natives:
            by_name.setdefault(f.rsplit("/", 1)[-1], []).append(f)
        for node in nodes:
            lit = _str_const(node)
            if not lit or len(lit) > 300:
                continue
            for word in re.split(r"[\s'\",]+", lit):
                name = word.rsplit("/", 1)[-1]
                if name.endswith((".so", ".dll", ".dylib")):  # ctypes.CDLL("libpairs.so") runs pairs.c
                    stem = name.rsplit(".", 1)[0]
                    stem = stem[3:] if stem.startswith("lib") else stem
                    got = [n for n in by_name if n.rsplit(".", 1)[0] in (stem, "lib" + stem)]
                    if not got and name in shipped_libs:
                        self.bundle.opaque_native.append((where, node.lineno, f"loads {name}, whose source is not in the folder"))
                    for n in got:
                        self.add_native(sorted(by_name[n])[0], f"{where}:{node.lineno}")
                    continue
                if name in by_name:
                    cands = by_name[name]
                    exact = _norm(base + word)
                    target = exact if exact in cands else sorted(cands)[0]
                    self.add_native(target, f"{where}:{node.lineno}")


def read_code(folder: Path, root: Path, files: list[str], readme: str | None) -> CodeBundle:
    reader = _Reader(folder, root, files)
    entry = resolve_entry(files, readme)
    reader.bundle.entry = entry
    if entry is not None:
        reader.add_python(entry, "entry")
    for rel in sorted(files):
        if rel.count("/") <= 1 and rel.lower().endswith((".sh", ".bash")) and len(reader.bundle.scripts) < 16:
            loaded = reader.load(rel)
            if loaded is not None:
                reader.bundle.scripts.append((rel, loaded[1][:200_000]))
    return reader.bundle


def _import_names(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level <= 1 and node.module:
            return [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        if node.level == 1 and not node.module:
            return [a.name for a in node.names]
    return []


def _norm(p: str) -> str:
    parts: list[str] = []
    for seg in p.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if parts:
                parts.pop()
            continue
        parts.append(seg)
    return "/".join(parts)


def _call_name(func: ast.AST) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        inner = _call_name(func.value)
        return f"{inner}.{func.attr}" if inner else func.attr
    if isinstance(func, ast.Call):
        return _call_name(func.func)
    return ""


_RUNNERS = {"exec", "eval", "compile", "__import__", "importlib.import_module", "import_module", "builtins.exec",
            "builtins.eval", "runpy.run_path", "run_path"}


def _resolved_callee(node: ast.Call, env: "_Env") -> str:
    """The callee's dotted name, seen through ``_run = exec`` / ``_load = importlib.import_module``
    aliases and ``getattr(builtins, "ex" + "ec")``."""
    func = node.func
    if isinstance(func, ast.Call) and _call_name(func.func) == "getattr" and len(func.args) == 2:
        try:
            attr = _Eval(env, None).ev(func.args[1])
        except (DecodeRefused, RecursionError, AttributeError):
            return "getattr"
        if isinstance(attr, str):
            return "builtins." + attr if _call_name(func.args[0]) in ("builtins", "__builtins__") else attr
        return "getattr"
    name = _call_name(func)
    for _ in range(4):  # alias of an alias
        if not isinstance(func, ast.Name):
            break
        bound = env.lookup(func.id, node.lineno)
        if not isinstance(bound, (ast.Name, ast.Attribute)):
            break
        cand = _call_name(bound)
        head = cand.split(".", 1)[0]
        if head in env.aliases:
            cand = env.aliases[head] + cand[len(head):]
        if cand in _RUNNERS or cand.endswith(".import_module"):
            return cand
        func = bound
    return name


def _str_const(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _has_string_payload(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Constant) and isinstance(n.value, (str, bytes)) and len(n.value) > 64 for n in ast.walk(node))


# --- the evaluator: only these functions, only on literals, paths and folder files --------------

_ROOT = "\x00folder"  # the record folder in evaluated paths; ``__file__`` is _ROOT + "/train_gpt.py"


@dataclass
class _FileText:
    """The content of a folder file, read by ``open(p).read()`` in the evaluated expression."""

    rel: str
    data: bytes

    @property
    def text(self) -> str:
        return decode_text(self.data)[0]


@dataclass
class _Handle:
    rel: str  # an ``open(p)`` not yet read


def _capped(out: bytes) -> bytes:
    if len(out) > MAX_DECOMPRESSED_BYTES:
        _refuse_bomb()
    return out


def _refuse_bomb():
    raise DecodeRefused(f"decompresses to more than {MAX_DECOMPRESSED_BYTES // (1024 * 1024)} MB; not expanded")


def _capped_lzma(data: bytes, **kw) -> bytes:
    fmt = kw.get("format", lzma.FORMAT_AUTO)
    filters = kw.get("filters")
    return _capped_streams(data, lambda: lzma.LZMADecompressor(format=fmt, filters=filters) if fmt == lzma.FORMAT_RAW
                           else lzma.LZMADecompressor(format=fmt))


def _capped_zlib(data: bytes, wbits: int = 15, *a) -> bytes:
    return _capped(zlib.decompressobj(wbits).decompress(data, MAX_DECOMPRESSED_BYTES + 1))


def _capped_bz2(data: bytes) -> bytes:
    return _capped_streams(data, bz2.BZ2Decompressor)


def _capped_streams(data: bytes, make) -> bytes:
    """Like lzma/bz2.decompress, which read concatenated streams, but stop at the cap over all of them
    (a bomb of many small streams is as big as one large one)."""
    out: list[bytes] = []
    total = 0
    while data:
        dec = make()
        chunk = dec.decompress(data, max_length=MAX_DECOMPRESSED_BYTES + 1 - total)
        out.append(chunk)
        total += len(chunk)
        if total > MAX_DECOMPRESSED_BYTES:
            _refuse_bomb()
        if not dec.eof:
            break
        data = dec.unused_data
    return b"".join(out)


def _capped_gzip(data: bytes) -> bytes:
    return _capped_zlib(data, 31)


def _capped_brotli(data: bytes) -> bytes:
    try:
        import brotli  # optional: only records that ship brotli-wrapped code need it
    except ImportError:
        raise DecodeRefused("brotli payload; the brotli module is not installed") from None
    dec = brotli.Decompressor()
    out = b""
    for i in range(0, len(data), 65536):
        out += dec.process(data[i:i + 65536])
        _capped(out)
    return out


def _capped_zstd(data: bytes) -> bytes:
    import zstandard

    with zstandard.ZstdDecompressor().stream_reader(data) as r:
        return _capped(r.read(MAX_DECOMPRESSED_BYTES + 1))


def _bytes_of(x) -> bytes:
    if isinstance(x, _FileText):
        return x.data
    return x.encode("latin-1") if isinstance(x, str) else x


def _codec(s, enc="utf-8", *a):
    if enc not in ("base64", "hex", "zlib", "bz2", "utf-8", "utf8", "rot13", "rot_13", "latin-1"):
        raise DecodeRefused(f"codec {enc}")
    # the compressing codecs go through the same capped decompressors as the direct calls
    if enc == "zlib":
        return _capped_zlib(_bytes_of(s))
    if enc == "bz2":
        return _capped_bz2(_bytes_of(s))
    return codecs.decode(s, enc)


_DECODERS = {
    "lzma.decompress": _capped_lzma,
    "zlib.decompress": _capped_zlib,
    "bz2.decompress": _capped_bz2,
    "gzip.decompress": _capped_gzip,
    "brotli.decompress": _capped_brotli,
    "zstandard.decompress": _capped_zstd,
    "base64.b85decode": lambda s: base64.b85decode(_bytes_of(s)),
    "base64.b64decode": lambda s, *a, **k: base64.b64decode(_bytes_of(s)),
    "base64.a85decode": lambda s, **k: base64.a85decode(_bytes_of(s)),
    "base64.b32decode": lambda s, *a: base64.b32decode(_bytes_of(s)),
    "base64.b16decode": lambda s, *a: base64.b16decode(_bytes_of(s)),
    "base64.standard_b64decode": lambda s: base64.standard_b64decode(_bytes_of(s)),
    "base64.urlsafe_b64decode": lambda s: base64.urlsafe_b64decode(_bytes_of(s)),
    "codecs.decode": _codec,
    "bytes.fromhex": lambda s: bytes.fromhex(s),
}
_CONSTS = {
    "lzma.FORMAT_RAW": lzma.FORMAT_RAW, "lzma.FORMAT_XZ": lzma.FORMAT_XZ, "lzma.FORMAT_ALONE": lzma.FORMAT_ALONE,
    "lzma.FORMAT_AUTO": lzma.FORMAT_AUTO, "lzma.FILTER_LZMA2": lzma.FILTER_LZMA2, "lzma.FILTER_LZMA1": lzma.FILTER_LZMA1,
    "lzma.PRESET_EXTREME": lzma.PRESET_EXTREME, "lzma.FILTER_DELTA": lzma.FILTER_DELTA, "lzma.FILTER_X86": lzma.FILTER_X86,
}
_PATH_CTORS = {"Path", "pathlib.Path", "PurePath", "pathlib.PurePath", "os.fspath", "str", "os.path.abspath",
               "os.path.realpath", "os.path.normpath", "os.path.expanduser"}
_OPENERS = {"open", "io.open", "builtins.open", "codecs.open"}


class _Env:
    """Single-name assignments of a module (``S = lzma.decompress(…)``, ``with open(p) as f``)."""

    def __init__(self, nodes: list[ast.AST], where: str):
        """``nodes``: the module's nodes in ``ast.walk`` order (``CodeFile.nodes``)."""
        self.where = where
        self.assigns: dict[str, list[tuple[int, ast.AST]]] = {}
        self.aliases: dict[str, str] = {}
        for node in nodes:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                self.assigns.setdefault(node.targets[0].id, []).append((node.lineno, node.value))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                self.assigns.setdefault(node.target.id, []).append((node.lineno, node.value))
            elif isinstance(node, ast.NamedExpr) and isinstance(node.target, ast.Name):
                self.assigns.setdefault(node.target.id, []).append((node.lineno, node.value))
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    if isinstance(item.optional_vars, ast.Name):
                        self.assigns.setdefault(item.optional_vars.id, []).append((node.lineno, item.context_expr))
            elif isinstance(node, ast.Import):
                for a in node.names:
                    self.aliases[a.asname or a.name] = a.name
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"

    def lookup(self, name: str, line: int) -> ast.AST | None:
        cands = self.assigns.get(name)
        if not cands:
            return None
        before = [c for c in cands if c[0] <= line]
        return (before or cands)[-1][1] if len(cands) == 1 or before else None


class _Eval:
    def __init__(self, env: _Env, reader: _Reader):
        self.env, self.reader = env, reader
        self.chain: list[str] = []
        self.touched_payload = False  # a decoder or folder file was reached: failing later is worth reporting
        self.read_files: dict[str, bytes] = {}
        self.line = 10 ** 9

    def qual(self, node: ast.AST) -> str:
        name = _call_name(node)
        head, _, rest = name.partition(".")
        if head in self.env.aliases:
            name = self.env.aliases[head] + ("." + rest if rest else "")
        return name

    def path_of(self, v) -> str:
        if isinstance(v, Path):
            v = v.as_posix()
        if not isinstance(v, str):
            raise DecodeRefused("path is not a string")
        if v.startswith(_ROOT):
            return _norm(v[len(_ROOT):])
        if v.startswith("/"):
            raise DecodeRefused(f"absolute path {v!r} outside the record folder")
        return _norm(v)  # relative: the run starts inside the record folder

    def read(self, rel: str, binary: bool):
        if rel not in self.reader.files:
            raise DecodeRefused(f"reads {rel!r}, which is not in the record folder")
        loaded = self.reader.load(rel)
        if loaded is None:
            raise DecodeRefused(f"cannot read {rel!r}")
        self.touched_payload = True
        self.read_files[rel] = loaded[0]
        return _FileText(rel, loaded[0])

    def ev(self, node: ast.AST, depth: int = 0):
        if depth > 60:
            raise DecodeRefused("expression nested too deeply")
        line = getattr(node, "lineno", None)
        if line:
            self.line = line
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.ev(e, depth + 1) for e in node.elts]
        if isinstance(node, ast.Dict):
            return {self.ev(k, depth + 1): self.ev(v, depth + 1) for k, v in zip(node.keys, node.values) if k is not None}
        if isinstance(node, ast.JoinedStr):
            out = ""
            for v in node.values:
                if isinstance(v, ast.Constant):
                    out += str(v.value)
                elif isinstance(v, ast.FormattedValue):
                    out += self.text_of(self.ev(v.value, depth + 1))
            return out
        if isinstance(node, ast.Name):
            if node.id == "__file__":
                return f"{_ROOT}/{self.env.where}"
            bound = self.env.lookup(node.id, self.line)
            if bound is None:
                raise DecodeRefused(f"payload held in variable {node.id!r}, not assigned a value the decoder can follow")
            return self.ev(bound, depth + 1)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Div)):
            a, b = self.ev(node.left, depth + 1), self.ev(node.right, depth + 1)
            if isinstance(node.op, ast.Div):
                return self.text_of(a).rstrip("/") + "/" + self.text_of(b)
            if isinstance(a, _FileText) or isinstance(b, _FileText):
                a, b = (x.text if isinstance(x, _FileText) else x for x in (a, b))
            try:
                return a + b
            except TypeError:
                raise DecodeRefused("adds values of different types") from None
        if isinstance(node, ast.Attribute):
            q = self.qual(node)
            if q in _CONSTS:
                return _CONSTS[q]
            if node.attr == "parent":
                return self.text_of(self.ev(node.value, depth + 1)).rsplit("/", 1)[0]
            if node.attr == "name":
                return self.text_of(self.ev(node.value, depth + 1)).rsplit("/", 1)[-1]
            raise DecodeRefused(f"unknown name {q}")
        if isinstance(node, ast.Subscript):
            base = self.ev(node.value, depth + 1)
            key = self.ev(node.slice, depth + 1)
            try:
                return base[key]
            except Exception:
                raise DecodeRefused("subscript the decoder cannot follow") from None
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        raise DecodeRefused(f"unsupported expression {type(node).__name__}")

    @staticmethod
    def text_of(v) -> str:
        if isinstance(v, _FileText):
            return v.text
        if isinstance(v, Path):
            return v.as_posix()
        if isinstance(v, (bytes, bytearray)):
            return bytes(v).decode("utf-8", errors="replace")
        if isinstance(v, str):
            return v
        raise DecodeRefused(f"expected text, got {type(v).__name__}")

    def call(self, node: ast.Call, depth: int):
        args = lambda: [self.ev(a, depth + 1) for a in node.args]  # noqa: E731 - evaluated lazily, per branch
        func = node.func
        if isinstance(func, ast.Attribute):
            meth = func.attr
            q = self.qual(func)
            if isinstance(func.value, ast.Call) or (
                    q not in _DECODERS and q not in _PATH_CTORS and not q.startswith(("os.path.", "base64.", "codecs."))):
                obj = self.ev(func.value, depth + 1)
                return self.method(obj, meth, args(), node, depth)
        q = self.qual(func)
        if q in _OPENERS:
            a = args()
            mode = a[1] if len(a) > 1 else next((self.ev(k.value) for k in node.keywords if k.arg == "mode"), "r")
            return _Handle(self.path_of(self.text_of(a[0]))) if "w" not in str(mode) else _Handle("")
        if q in _PATH_CTORS:
            a = args()
            return self.text_of(a[0]) if a else ""
        if q in ("os.path.dirname",):
            return self.text_of(args()[0]).rsplit("/", 1)[0]
        if q in ("os.path.basename",):
            return self.text_of(args()[0]).rsplit("/", 1)[-1]
        if q in ("os.path.join",):
            parts = [self.text_of(p) for p in args()]
            out = parts[0]
            for p in parts[1:]:
                out = p if p.startswith("/") else out.rstrip("/") + "/" + p
            return out
        if q in ("compile", "builtins.compile"):
            return args()[0]
        if q in ("bytes", "bytearray") and node.args:
            return _bytes_of(args()[0])
        if q in ("reversed", "list", "tuple", "sorted") and len(node.args) == 1 and isinstance(args()[0], (list, tuple, str)):
            seq = args()[0]
            return list(reversed(seq)) if q == "reversed" else sorted(seq) if q == "sorted" else list(seq)
        fn = _DECODERS.get(q)
        if fn is None:
            raise DecodeRefused(f"calls {q or 'an expression'}, which the decoder does not evaluate")
        a = [x.data if isinstance(x, _FileText) else x for x in args()]
        kwargs = {k.arg: self.ev(k.value, depth + 1) for k in node.keywords if k.arg}
        self.chain.append(q)
        self.touched_payload = True
        try:
            return fn(*a, **kwargs)
        except DecodeRefused:
            raise
        except Exception as exc:  # a malformed payload: report, never crash
            raise DecodeRefused(f"{q} failed: {type(exc).__name__}: {exc}") from None

    def method(self, obj, meth: str, a: list, node: ast.Call, depth: int):
        if isinstance(obj, _Handle):
            if meth in ("read", "readlines") and obj.rel:
                return self.read(obj.rel, binary=False)
            raise DecodeRefused(f"file handle .{meth}()")
        if isinstance(obj, _FileText):
            if meth == "decode":
                self.chain.append(".decode")
                return obj.text
            obj = obj.data if meth in ("replace", "strip", "split") and a and isinstance(a[0], bytes) else obj.text
        if meth in ("read_text", "read_bytes", "open"):
            rel = self.path_of(self.text_of(obj))
            return self.read(rel, binary=meth == "read_bytes") if meth != "open" else _Handle(rel)
        if meth == "with_name" and a:
            return self.text_of(obj).rsplit("/", 1)[0] + "/" + self.text_of(a[0])
        if meth == "with_suffix" and a:
            s = self.text_of(obj)
            head, _, tail = s.rpartition("/")
            stem = tail.rsplit(".", 1)[0] if "." in tail else tail
            return (head + "/" if head else "") + stem + self.text_of(a[0])
        if meth == "joinpath":
            return "/".join([self.text_of(obj).rstrip("/")] + [self.text_of(x) for x in a])
        if meth in ("resolve", "absolute", "expanduser"):
            return obj
        if isinstance(obj, (str, bytes, bytearray)):
            if meth == "decode":
                self.chain.append(".decode")
                return bytes(obj).decode(a[0] if a else "utf-8", errors="replace") if not isinstance(obj, str) else obj
            if meth == "encode":
                return obj.encode(a[0] if a else "utf-8") if isinstance(obj, str) else obj
            if meth in ("replace", "strip", "lstrip", "rstrip", "format", "join", "lower", "upper") and len(a) <= 3:
                try:
                    return getattr(obj, meth)(*a)
                except Exception:
                    raise DecodeRefused(f".{meth}() the decoder cannot follow") from None
        raise DecodeRefused(f"calls .{meth}(), which the decoder does not evaluate")
