"""The code a record runs: the entry script, what it decodes, execs and imports from its folder.

Never executes anything. Self-extracting wrappers (``exec(lzma.decompress(base64.b85decode("…")))``,
7 merged records ship one) are decoded by a tiny evaluator that knows only a whitelist of
decoders, with a cap on the decompressed size (zip bombs are reported, not expanded).
"""
from __future__ import annotations

import ast
import base64
import bz2
import codecs
import gzip
import hashlib
import lzma
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from auditor.fs import MAX_DECOMPRESSED_BYTES, UnreadableFile, read_bytes, decode_text
from auditor.model import Problem

MAX_CODE_FILE_BYTES = 8 * 1024 * 1024
MAX_WRAPPER_DEPTH = 4


@dataclass
class CodeFile:
    path: str  # relative to the record folder
    text: str
    sha256: str  # of the bytes as shipped (for decoded code: of the decoded bytes)
    size_bytes: int  # bytes as shipped on disk (decoded code: decoded length)
    role: str = "entry"  # entry | decoded | exec | import | native
    decoded_from: str | None = None  # wrapper file this source was decoded from
    wrapper_chain: list[str] = field(default_factory=list)  # e.g. ["b85decode", "lzma.decompress"]
    parse_error: str | None = None

    @property
    def is_python(self) -> bool:
        return self.role != "native"


@dataclass
class CodeBundle:
    entry: str | None = None
    files: list[CodeFile] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    undecodable: list[tuple[str, int, str]] = field(default_factory=list)  # (file, line, why)

    def python_sources(self) -> list[CodeFile]:
        """Files to analyse: wrappers are replaced by what they decode to."""
        wrapped = {f.decoded_from for f in self.files if f.decoded_from}
        return [f for f in self.files if f.is_python and f.path not in wrapped or f.decoded_from]

    def counted_bytes(self) -> int:
        """Bytes of every shipped file the entry point executes (decoded text is not shipped)."""
        return sum(f.size_bytes for f in self.files if f.role != "decoded")

    def get(self, path: str) -> CodeFile | None:
        for f in self.files:
            if f.path == path and f.role != "decoded":
                return f
        return None


class DecodeRefused(Exception):
    pass


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


def read_code(folder: Path, root: Path, files: list[str], readme: str | None) -> CodeBundle:
    bundle = CodeBundle()
    entry = resolve_entry(files, readme)
    bundle.entry = entry
    if entry is None:
        return bundle
    seen: set[str] = set()
    _add_python(folder, root, entry, "entry", bundle, seen, set(files))
    return bundle


def _load(folder: Path, root: Path, rel: str, bundle: CodeBundle) -> tuple[bytes, str] | None:
    try:
        data = read_bytes(folder / rel, root, MAX_CODE_FILE_BYTES)
    except UnreadableFile as exc:
        bundle.problems.append(Problem(rel, str(exc)))
        return None
    text, _enc, _rep = decode_text(data)
    return data, text


def _add_python(folder: Path, root: Path, rel: str, role: str, bundle: CodeBundle, seen: set[str], files: set[str]) -> None:
    if rel in seen:
        return
    seen.add(rel)
    loaded = _load(folder, root, rel, bundle)
    if loaded is None:
        return
    data, text = loaded
    cf = CodeFile(rel, text, hashlib.sha256(data).hexdigest(), len(data), role)
    bundle.files.append(cf)
    _follow(folder, root, cf, bundle, seen, files, depth=0)


def _follow(folder: Path, root: Path, cf: CodeFile, bundle: CodeBundle, seen: set[str], files: set[str], depth: int) -> None:
    try:
        tree = ast.parse(cf.text)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        cf.parse_error = f"does not parse as Python: {getattr(exc, 'msg', None) or type(exc).__name__}" + (
            f" (line {exc.lineno})" if getattr(exc, "lineno", None) else "")
        return
    base = str(Path(cf.decoded_from or cf.path).parent)
    base = "" if base == "." else base + "/"
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            fname = _call_name(node.func)
            if fname in ("exec", "eval", "compile") and node.args:
                arg = node.args[0]
                # exec(open("x.py").read()) or exec(Path("x.py").read_text())
                target = _opened_file(arg)
                if target is not None:
                    tr = _norm(base + target)
                    if tr in files:
                        _add_python(folder, root, tr, "exec", bundle, seen, files)
                    continue
                if _has_string_payload(arg):
                    _decode_wrapper(folder, root, cf, node, arg, bundle, seen, files, depth)
            elif fname in ("runpy.run_path", "run_path") and node.args:
                lit = _str_const(node.args[0])
                if lit and _norm(base + lit) in files:
                    _add_python(folder, root, _norm(base + lit), "exec", bundle, seen, files)
            elif fname.endswith("cpp_extension.load") or fname.endswith("load_inline") or fname == "load":
                for kw in node.keywords:
                    if kw.arg == "sources" and isinstance(kw.value, (ast.List, ast.Tuple)):
                        for elt in kw.value.elts:
                            lit = _str_const(elt)
                            if lit and _norm(base + lit) in files:
                                _add_native(folder, root, _norm(base + lit), bundle, seen)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif node.level <= 1 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif node.level == 1 and not node.module:
                names = [a.name for a in node.names]
            for n in names:
                for cand in (n.replace(".", "/") + ".py", n.replace(".", "/") + "/__init__.py"):
                    c = _norm(base + cand)
                    if c in files:
                        _add_python(folder, root, c, "import", bundle, seen, files)
                        break
    # native sources that sit beside the code and are compiled by name (load(name=..., sources=[...]))
    # are handled above; loose .cpp/.cu files are reported by the artifact rule.


def _add_native(folder: Path, root: Path, rel: str, bundle: CodeBundle, seen: set[str]) -> None:
    if rel in seen:
        return
    seen.add(rel)
    loaded = _load(folder, root, rel, bundle)
    if loaded is None:
        return
    data, text = loaded
    bundle.files.append(CodeFile(rel, text, hashlib.sha256(data).hexdigest(), len(data), "native"))


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


def _str_const(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _opened_file(node: ast.AST) -> str | None:
    """``open("x.py").read()`` / ``Path("x.py").read_text()`` → "x.py"."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("read", "read_text"):
        inner = node.func.value
        if isinstance(inner, ast.Call) and _call_name(inner.func) in ("open", "Path", "pathlib.Path", "io.open") and inner.args:
            return _str_const(inner.args[0])
    return None


def _has_string_payload(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Constant) and isinstance(n.value, (str, bytes)) and len(n.value) > 64 for n in ast.walk(node))


# --- the wrapper evaluator: only these functions, only on literals -------------------------------

def _capped_lzma(data: bytes, **kw) -> bytes:
    fmt = kw.get("format", lzma.FORMAT_AUTO)
    filters = kw.get("filters")
    dec = lzma.LZMADecompressor(format=fmt, filters=filters) if fmt == lzma.FORMAT_RAW else lzma.LZMADecompressor(format=fmt)
    out = dec.decompress(data, max_length=MAX_DECOMPRESSED_BYTES + 1)
    if len(out) > MAX_DECOMPRESSED_BYTES:
        raise DecodeRefused(f"decompresses to more than {MAX_DECOMPRESSED_BYTES // (1024 * 1024)} MB; not expanded")
    return out


def _capped_zlib(data: bytes, wbits: int = 15, *a) -> bytes:
    d = zlib.decompressobj(wbits)
    out = d.decompress(data, MAX_DECOMPRESSED_BYTES + 1)
    if len(out) > MAX_DECOMPRESSED_BYTES:
        raise DecodeRefused(f"decompresses to more than {MAX_DECOMPRESSED_BYTES // (1024 * 1024)} MB; not expanded")
    return out


def _capped_bz2(data: bytes) -> bytes:
    out = bz2.BZ2Decompressor().decompress(data, max_length=MAX_DECOMPRESSED_BYTES + 1)
    if len(out) > MAX_DECOMPRESSED_BYTES:
        raise DecodeRefused(f"decompresses to more than {MAX_DECOMPRESSED_BYTES // (1024 * 1024)} MB; not expanded")
    return out


def _capped_gzip(data: bytes) -> bytes:
    return _capped_zlib(data, 31)


def _bytes_of(x) -> bytes:
    return x.encode("latin-1") if isinstance(x, str) else x


_DECODERS = {
    "lzma.decompress": _capped_lzma,
    "decompress": None,  # resolved by module alias below
    "zlib.decompress": _capped_zlib,
    "bz2.decompress": _capped_bz2,
    "gzip.decompress": _capped_gzip,
    "base64.b85decode": lambda s: base64.b85decode(_bytes_of(s)),
    "base64.b64decode": lambda s, *a, **k: base64.b64decode(_bytes_of(s)),
    "base64.a85decode": lambda s, **k: base64.a85decode(_bytes_of(s)),
    "base64.b32decode": lambda s, *a: base64.b32decode(_bytes_of(s)),
    "base64.b16decode": lambda s, *a: base64.b16decode(_bytes_of(s)),
    "codecs.decode": lambda s, enc="utf-8", *a: codecs.decode(s, enc) if enc in ("base64", "hex", "zlib", "bz2", "utf-8", "utf8", "rot13", "latin-1") else (_ for _ in ()).throw(DecodeRefused(f"codec {enc}")),
    "bytes.fromhex": lambda s: bytes.fromhex(s),
}
_CONSTS = {
    "lzma.FORMAT_RAW": lzma.FORMAT_RAW, "lzma.FORMAT_XZ": lzma.FORMAT_XZ, "lzma.FORMAT_ALONE": lzma.FORMAT_ALONE,
    "lzma.FORMAT_AUTO": lzma.FORMAT_AUTO, "lzma.FILTER_LZMA2": lzma.FILTER_LZMA2, "lzma.FILTER_LZMA1": lzma.FILTER_LZMA1,
    "lzma.PRESET_EXTREME": lzma.PRESET_EXTREME, "lzma.FILTER_DELTA": lzma.FILTER_DELTA, "lzma.FILTER_X86": lzma.FILTER_X86,
}


class _WrapperEval:
    def __init__(self, aliases: dict[str, str]):
        self.aliases = aliases  # local name -> module or qualified function
        self.chain: list[str] = []

    def qual(self, node: ast.AST) -> str:
        name = _call_name(node)
        head, _, rest = name.partition(".")
        if head in self.aliases:
            name = self.aliases[head] + ("." + rest if rest else "")
        return name

    def ev(self, node: ast.AST, depth: int = 0):
        if depth > 50:
            raise DecodeRefused("wrapper expression nested too deeply")
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.ev(e, depth + 1) for e in node.elts]
        if isinstance(node, ast.Dict):
            return {self.ev(k, depth + 1): self.ev(v, depth + 1) for k, v in zip(node.keys, node.values) if k is not None}
        if isinstance(node, ast.Attribute):
            q = self.qual(node)
            if q in _CONSTS:
                return _CONSTS[q]
            raise DecodeRefused(f"unknown name {q}")
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute) and node.func.attr in ("decode", "encode") and not _call_name(node.func.value).startswith(("base64", "codecs")):
                obj = self.ev(node.func.value, depth + 1)
                enc = self.ev(node.args[0], depth + 1) if node.args else "utf-8"
                self.chain.append(f".{node.func.attr}")
                if isinstance(obj, (bytes, bytearray)) and node.func.attr == "decode":
                    return bytes(obj).decode(enc, errors="replace")
                if isinstance(obj, str) and node.func.attr == "encode":
                    return obj.encode(enc)
                return obj
            q = self.qual(node.func)
            fn = _DECODERS.get(q)
            if fn is None:
                raise DecodeRefused(f"calls {q or 'an expression'}, which the decoder does not evaluate")
            args = [self.ev(a, depth + 1) for a in node.args]
            kwargs = {k.arg: self.ev(k.value, depth + 1) for k in node.keywords if k.arg}
            self.chain.append(q)
            try:
                return fn(*args, **kwargs)
            except DecodeRefused:
                raise
            except Exception as exc:  # a malformed payload: report, never crash
                raise DecodeRefused(f"{q} failed: {type(exc).__name__}: {exc}") from None
        if isinstance(node, ast.Name):
            raise DecodeRefused(f"payload held in variable {node.id!r}")
        raise DecodeRefused(f"unsupported expression {type(node).__name__}")


def _aliases(tree: ast.AST) -> dict[str, str]:
    al: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                al[a.asname or a.name] = a.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                al[a.asname or a.name] = f"{node.module}.{a.name}"
    return al


def _decode_wrapper(folder, root, cf: CodeFile, call: ast.Call, arg: ast.AST, bundle: CodeBundle, seen, files, depth: int) -> None:
    where = cf.decoded_from or cf.path
    if depth >= MAX_WRAPPER_DEPTH:
        bundle.undecodable.append((where, call.lineno, "wrappers nested too deeply"))
        return
    try:
        tree = ast.parse(cf.text)
    except Exception:  # already parsed once by the caller
        return
    ev = _WrapperEval(_aliases(tree))
    try:
        out = ev.ev(arg)
    except DecodeRefused as exc:
        bundle.undecodable.append((where, call.lineno, str(exc)))
        return
    except (RecursionError, MemoryError):
        bundle.undecodable.append((where, call.lineno, "payload too complex to decode"))
        return
    if isinstance(out, (bytes, bytearray)):
        data = bytes(out)
        text, _e, _r = decode_text(data)
    elif isinstance(out, str):
        text = out
        data = out.encode("utf-8", errors="replace")
    else:
        bundle.undecodable.append((where, call.lineno, "payload did not decode to source text"))
        return
    dec = CodeFile(where, text, hashlib.sha256(data).hexdigest(), len(data), "decoded", decoded_from=where, wrapper_chain=list(ev.chain))
    bundle.files.append(dec)
    _follow(folder, root, dec, bundle, seen, files, depth + 1)
