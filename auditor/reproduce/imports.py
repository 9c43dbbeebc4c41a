"""What a record's script needs from this machine, read statically (the script is never imported).

Modules: every ``import x`` / ``from x import y`` at any depth, except relative imports, the
standard library, and files shipped in the record folder. Imports guarded by ``try: … except
ImportError`` are optional. Binaries: string literals naming a known external tool (``lrzip``,
``pyminify``) in a ``subprocess``/``os.system`` call.
"""
from __future__ import annotations

import ast
import importlib.util
import shutil
import sys
from dataclasses import dataclass, field

# pip names differ from import names for these; the fix line should name what to install.
PIP_NAMES = {
    "flash_attn_interface": "the FlashAttention 3 wheel (flash_attn_3, e.g. from the cu128 PyTorch index)",
    "flash_attn": "flash-attn",
    "sentencepiece": "sentencepiece",
    "zstandard": "zstandard",
    "brotli": "brotli",
    "yaml": "pyyaml",
    "huggingface_hub": "huggingface-hub",
    "python_minifier": "python-minifier",
}
KNOWN_BINARIES = ("lrzip", "pyminify", "zstd", "brotli", "xz")
BINARY_HINTS = {"lrzip": "apt-get install lrzip", "pyminify": "pip install python-minifier (it provides pyminify)"}


@dataclass
class ImportNeed:
    module: str  # top-level name
    line: int
    optional: bool = False  # guarded by try/except ImportError
    lazy: bool = False  # inside a function: needed only if that code path runs
    error: str = ""  # installed, but importing it failed (e.g. flash_attn built for another CUDA)


@dataclass
class ScriptNeeds:
    modules: list[ImportNeed] = field(default_factory=list)
    binaries: list[tuple[str, int]] = field(default_factory=list)
    uses_cuda: list[tuple[int, str]] = field(default_factory=list)  # lines that need a GPU
    cpu_fallback: bool = False  # the script checks torch.cuda.is_available()
    env_reads: dict[str, int] = field(default_factory=dict)  # env var name -> first line read
    syntax_error: str | None = None


def _guarded_lines(tree: ast.AST) -> set[int]:
    """Lines inside ``try`` bodies whose handlers catch ImportError/ModuleNotFoundError/Exception."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        names = set()
        for h in node.handlers:
            if h.type is None:
                names.add("Exception")
            for t in (h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]) if h.type else []:
                if isinstance(t, ast.Name):
                    names.add(t.id)
                elif isinstance(t, ast.Attribute):
                    names.add(t.attr)
        if names & {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}:
            for stmt in node.body:
                for sub in ast.walk(stmt):
                    if hasattr(sub, "lineno"):
                        out.add(sub.lineno)
    return out


def _env_name(call: ast.Call) -> str | None:
    """``os.environ.get("X", …)``, ``os.getenv("X")``, ``os.environ["X"]`` → "X"."""
    f = call.func
    if isinstance(f, ast.Attribute) and f.attr in ("get", "getenv", "setdefault") and call.args:
        owner = ast.unparse(f.value)
        if owner in ("os.environ", "environ", "os") and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
            return call.args[0].value
    if isinstance(f, ast.Name) and f.id == "getenv" and call.args and isinstance(call.args[0], ast.Constant):
        return str(call.args[0].value)
    return None


def _env_wrappers(tree: ast.AST) -> set[str]:
    """Functions that read the env var named by their first parameter (``def _e(k, d): return os.environ.get(k, d)``):
    their calls with a literal name are env reads too."""
    out = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and fn.args.args:
            p = fn.args.args[0].arg
            for n in ast.walk(fn):
                if (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in ("get", "getenv") and n.args
                        and isinstance(n.args[0], ast.Name) and n.args[0].id == p and ast.unparse(n.func.value) in ("os.environ", "environ", "os")):
                    out.add(fn.name)
                    break
    return out


def scan_script(source: str, local_modules: set[str]) -> ScriptNeeds:
    needs = ScriptNeeds()
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        needs.syntax_error = f"line {exc.lineno}: {exc.msg}"
        return needs
    wrappers = _env_wrappers(tree)
    guarded = _guarded_lines(tree)
    in_function = {sub.lineno for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for stmt in fn.body for sub in ast.walk(stmt) if isinstance(sub, (ast.Import, ast.ImportFrom))}
    seen: set[str] = set()
    requires_cuda: list[int] = []
    stdlib = set(sys.stdlib_module_names)
    for node in ast.walk(tree):
        mods: list[str] = []
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            mods = [node.module]
        for m in mods:
            top = m.split(".")[0]
            if top in stdlib or top in local_modules or top == "__future__" or top in seen:
                continue
            seen.add(top)
            needs.modules.append(ImportNeed(top, node.lineno, optional=node.lineno in guarded, lazy=node.lineno in in_function))
        if isinstance(node, ast.Call):
            name = _env_name(node)
            if (name is None and isinstance(node.func, ast.Name) and node.func.id in wrappers and node.args
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                name = node.args[0].value  # _e("TOKENIZER_PATH", "./data/…")
            if name and name not in needs.env_reads:
                needs.env_reads[name] = node.lineno
        if isinstance(node, ast.Subscript) and ast.unparse(node.value) in ("os.environ", "environ"):
            key = node.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, str) and key.value not in needs.env_reads:
                needs.env_reads[key.value] = node.lineno
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            val = node.value
            for b in KNOWN_BINARIES:
                if val == b or val.startswith(b + " "):
                    if b not in [x for x, _ in needs.binaries] and b not in ("brotli", "zstd", "xz"):
                        needs.binaries.append((b, node.lineno))
            if val in ("cuda", "nccl") or val.startswith("cuda:"):
                needs.uses_cuda.append((node.lineno, val))
        if isinstance(node, ast.Attribute) and node.attr == "is_available" and ast.unparse(node.value).endswith("cuda"):
            needs.cpu_fallback = True
        if isinstance(node, ast.Raise) and node.exc is not None and "cuda" in ast.unparse(node.exc).lower():
            requires_cuda.append(node.lineno)  # `if not torch.cuda.is_available(): raise RuntimeError("CUDA is required")`
    if requires_cuda:
        needs.cpu_fallback = False
        needs.uses_cuda.append((requires_cuda[0], "raise without CUDA"))
    needs.modules.sort(key=lambda n: n.line)
    needs.uses_cuda.sort()
    return needs


def module_found(name: str) -> bool:
    """Whether this interpreter can locate a top-level module (without executing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def missing_modules(needs: ScriptNeeds) -> list[ImportNeed]:
    """Top-level modules this interpreter cannot find (optional ones left out). ``find_spec`` on a
    top-level name locates the module without executing it."""
    out, found_names = [], []
    for n in needs.modules:
        try:
            found = importlib.util.find_spec(n.module) is not None
        except (ImportError, ValueError):
            found = False
        if not found and not n.optional:
            out.append(n)
        elif found and not n.optional and n.module in IMPORT_CHECKED:
            found_names.append(n)
    # find_spec only locates a package: compiled extensions can be found and still fail to import
    errors = import_errors([n.module for n in found_names]) if found_names else {}
    for n in found_names:
        if n.module in errors:
            n.error = errors[n.module]
            out.append(n)
    return out


# Packages with compiled parts that are often installed but broken (a wheel for another CUDA or
# torch); each is imported once, in a separate interpreter, away from the record's folder.
IMPORT_CHECKED = {"flash_attn", "flash_attn_interface", "triton", "xformers", "apex", "bitsandbytes", "transformer_engine",
                  "mamba_ssm", "causal_conv1d", "fla", "liger_kernel", "deepspeed"}


def import_errors(modules: list[str], timeout_s: float = 120.0) -> dict[str, str]:
    """``{module: "ImportError: …"}`` for the modules that do not import here (installed packages
    only; run with ``-P`` from the temp folder, so nothing of the record can shadow them)."""
    import json
    import subprocess
    import sys
    import tempfile

    code = ("import importlib, json, sys\nout = {}\nfor n in sys.argv[1:]:\n    try:\n        importlib.import_module(n)\n"
            "    except BaseException as e:\n        out[n] = (type(e).__name__ + ': ' + str(e))[:200]\nprint(json.dumps(out))")
    try:
        proc = subprocess.run([sys.executable, "-P", "-c", code, *modules], cwd=tempfile.gettempdir(), capture_output=True,
                              text=True, timeout=timeout_s)
        lines = proc.stdout.strip().splitlines()
        return json.loads(lines[-1]) if lines else {m: f"the import check exited {proc.returncode}" for m in modules}
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        return {m: f"the import check failed: {exc}" for m in modules}


def missing_binaries(needs: ScriptNeeds) -> list[tuple[str, int]]:
    return [(b, line) for b, line in needs.binaries if shutil.which(b) is None]


def install_hint(module: str) -> str:
    return PIP_NAMES.get(module, module)
