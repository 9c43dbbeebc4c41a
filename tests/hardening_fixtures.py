"""Hostile record folders for the hardening tests. All code here is ours: small scripts whose only
effect, if anything ever ran them, would be to write a canary file outside the audited tree."""
from __future__ import annotations

import base64
import hashlib
import json
import lzma
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from tests.ci_helpers import clean_record
from tests.helpers import write_folder

REPO = Path(__file__).resolve().parents[1]


def canary_code(canary_dir: Path, name: str) -> str:
    """One line of Python that, if executed, leaves ``canary_dir/name``."""
    return f"open({str(canary_dir / name)!r}, 'w').write('executed')\n"


def canary_record(root: Path, canary_dir: Path, name: str = "2026-01-01_Canary") -> Path:
    """A record folder where every file Python might run on import writes its own canary."""
    c = lambda n: canary_code(canary_dir, n)  # noqa: E731
    payload = c("wrapper_payload")
    wrapped = base64.b85encode(lzma.compress(payload.encode())).decode()
    files: dict[str, str | bytes] = dict(clean_record())
    files.update({
        "train_gpt.py": "import os\nimport helper\nfrom pkg import mod\n" + c("train_gpt") +
                        "def main():\n    " + c("main").strip() + "\n\nif __name__ == '__main__':\n    main()\n",
        "helper.py": c("helper"),
        "pkg/__init__.py": c("pkg_init"),
        "pkg/mod.py": c("pkg_mod"),
        "__init__.py": c("folder_init"),
        "__main__.py": c("folder_main"),
        "setup.py": "from setuptools import setup\n" + c("setup_py") + "setup(name='x')\n",
        "conftest.py": c("conftest"),
        "sitecustomize.py": c("sitecustomize"),
        "usercustomize.py": c("usercustomize"),
        "evil.pth": "import os; " + c("pth_file"),
        "wrapped.py": f"import lzma, base64\nexec(lzma.decompress(base64.b85decode({wrapped!r})))\n",
        # names pgolf itself imports lazily: a folder (or a checkout) must never shadow them
        "rules/__init__.py": c("rules_pkg"),
        "multiprocessing/__init__.py": c("multiprocessing_pkg"),
        "typer.py": c("typer_mod"),
        "rich/__init__.py": c("rich_pkg"),
        "json.py": c("json_mod"),
    })
    return write_folder(root, files, name=name)


def pgolf_exe() -> str:
    exe = Path(sys.executable).parent / "pgolf"
    return str(exe) if exe.exists() else (shutil.which("pgolf") or "pgolf")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONPATH", "PGOLF_"))}
    env.update(extra)
    return env


def run_pgolf(args: list[str], cwd: Path, *, module: bool = False, timeout: float = 240, **env: str) -> subprocess.CompletedProcess:
    """Run the real command line as a subprocess (the console script, or ``python -P -m auditor``)."""
    cmd = [sys.executable, "-P", "-m", "auditor", *args] if module else [pgolf_exe(), *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=clean_env(**env),
                          errors="backslashreplace")


def snapshot(tree: Path) -> dict[str, tuple]:
    """Every entry under ``tree`` (symlinks not followed): kind, mode, size, mtime, content hash."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(tree, followlinks=False):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            st = p.lstat()
            if stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256(p.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                digest = os.readlink(p)
            else:
                digest = ""
            out[os.fsdecode(p.relative_to(tree))] = (stat.S_IFMT(st.st_mode), st.st_mode, st.st_size, st.st_mtime_ns, digest)
    return out


def assert_no_traceback(proc: subprocess.CompletedProcess) -> None:
    for stream in (proc.stdout, proc.stderr):
        assert "Traceback (most recent call last)" not in stream, stream[-3000:]


def json_report(proc: subprocess.CompletedProcess, code: int = 0) -> dict:
    """The JSON document of an audit that exits ``code``: 0 under `--fail-on never` (the README: never means never)."""
    assert proc.returncode == code, (proc.returncode, proc.stderr[-2000:])
    return json.loads(proc.stdout)


def misbehaving_worker(conn, options, memory_mb, caps, cwd=None, env=None, runner_pid=None):
    """A worker main loop that hangs, crashes or exits on folders named for it, and otherwise
    audits like the real one (``auditor.worker.serve``): the runner must survive all three."""
    import signal
    import time

    from auditor.worker import adopt, audit_one, harden_process

    adopt(cwd, env, runner_pid)
    harden_process(memory_mb)
    while True:
        task = conn.recv()
        if task is None:
            return
        index, folder, want = task
        name = folder.path.name
        if name.endswith("hang"):
            time.sleep(3600)
        elif name.endswith("segv"):
            os.kill(os.getpid(), signal.SIGSEGV)
        elif name.endswith("exit"):
            os._exit(3)
        rec, err, timings = audit_one(folder, options, want)
        conn.send((index, rec, err, timings))
