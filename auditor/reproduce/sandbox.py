"""Run a command with the network off, writes confined to one directory, and a hard time limit.

bubblewrap (tooling.md §5.3), binding only what the run needs: the system's /usr read-only (with
/bin, /lib… as on the host), a handful of /etc files (passwd, group, hosts, resolv.conf, the
loader cache; never shadow-class files), the interpreter's real prefix and site-packages
read-only (wherever they live: a virtualenv under /tmp or /root, a system install), pgolf's own
folder, the inputs given with ``--data``/``--tokenizer`` read-only, and the writable run folders.
Nothing else of the host: no /root, /home, /tmp, /var, /run. ``--unshare-all`` (bwrap brings
loopback up in the new network namespace, so torchrun's c10d rendezvous still works; every other
address is unreachable), ``--die-with-parent``, ``--new-session``, a fresh /proc, /dev and /tmp.
rlimits inside: processes, address space (CPU runs; CUDA reserves far more address space than it
uses), file size, no core files. The environment is an allow-list (``allowed_env``). The time
limit kills the whole process group: torchrun, its workers and anything they started.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import site
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

KILL_GRACE_S = 5.0
# rlimits of the sandboxed run (per process; NPROC counts threads of the user, so it is generous)
LIMIT_NPROC = 16384
LIMIT_FSIZE = 64 << 30  # one file; a raw checkpoint of a 16 MB-artifact model is far smaller
LIMIT_AS_CPU = None  # None: the machine's physical memory

# /etc entries a Python/torch run needs (users, name resolution for "localhost", the loader cache,
# time zone). Deliberately not: shadow, gshadow, sudoers, ssh keys, machine secrets.
ETC_ALLOW = ("passwd", "group", "hosts", "host.conf", "nsswitch.conf", "resolv.conf", "gai.conf", "ld.so.cache",
             "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "alternatives", "os-release", "protocols",
             "services", "mime.types", "nvidia", "OpenCL", "vulkan", "glvnd")
# environment variables passed through to the run, by name or prefix (everything else is dropped:
# tokens and secrets of a CI job must not reach the entrant's code)
ENV_ALLOW = {"PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_NUMERIC", "TZ", "TERM", "LD_LIBRARY_PATH",
             "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "PYTHONHASHSEED"}
ENV_ALLOW_PREFIXES = ("CUDA_", "NCCL_", "NVIDIA_", "CUBLAS_", "CUDNN_", "TORCH_CUDA_", "PYTORCH_CUDA_", "GLOO_", "LC_")


def allowed_env(extra: dict[str, str] | None = None, home: Path | None = None) -> dict[str, str]:
    """The run's environment: the allow-listed variables of this process, then ``extra`` (the
    plan's variables and ``--env``), with HOME pointed at a writable folder of the run."""
    env = {k: v for k, v in os.environ.items() if k in ENV_ALLOW or k.startswith(ENV_ALLOW_PREFIXES)}
    env.setdefault("PATH", os.defpath)
    if home is not None:
        env["HOME"] = str(home)
    env.update(extra or {})
    return env


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def bwrap_works() -> tuple[bool, str]:
    """bwrap present and allowed to create namespaces here (containers often forbid it)."""
    exe = bwrap_path()
    if not exe:
        return False, "bubblewrap (bwrap) is not installed; install it (apt-get install bubblewrap) or pass --no-sandbox"
    try:
        r = subprocess.run([exe, *_base_binds(), "--unshare-all", "--die-with-parent", "--", sys.executable, "-c", "pass"],
                           capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bwrap could not start: {exc}"
    if r.returncode != 0:
        err = r.stderr.strip()[:200]
        if "execvp" in err or "No such file" in err:
            return False, f"bwrap starts, but the interpreter {sys.executable} is not visible inside it ({err})"
        return False, f"bwrap cannot create namespaces here: {err}; pass --no-sandbox to run unconfined"
    return True, exe


def _nvidia_devices() -> list[str]:
    return sorted(str(p) for p in Path("/dev").glob("nvidia*"))


_PGOLF_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds the auditor package


def _real(p: str | os.PathLike) -> Path:
    return Path(os.path.realpath(p))


def interpreter_paths() -> list[Path]:
    """Folders the interpreter needs, each as given and resolved: its prefixes (a virtualenv and
    the installation it points at), its executable's folder, site-packages, and the folders of
    ``sys.path`` that exist (editable installs add theirs through .pth files)."""
    cands: list[str] = [sys.prefix, sys.base_prefix, sys.exec_prefix, getattr(sys, "base_exec_prefix", sys.exec_prefix),
                        os.path.dirname(sys.executable), os.path.dirname(os.path.realpath(sys.executable))]
    try:
        cands += list(site.getsitepackages())
    except AttributeError:  # old virtualenv's site module
        pass
    user = site.getusersitepackages() if site.ENABLE_USER_SITE else None
    if user:
        cands.append(user)
    cwd = _real(os.getcwd())
    for entry in sys.path:
        if entry and os.path.isdir(entry) and _real(entry) != cwd:
            cands.append(entry)
    out: list[Path] = []
    for c in cands:
        for p in (Path(os.path.abspath(c)), _real(c)):
            if p.exists() and p not in out and str(p) != "/":
                out.append(p)
    return _outermost(out)


def _outermost(paths: Iterable[Path]) -> list[Path]:
    """Drop paths that lie under another path of the list (one bind covers them)."""
    ps = sorted(set(paths), key=lambda p: len(p.parts))
    out: list[Path] = []
    for p in ps:
        if not any(q == p or q in p.parents for q in out):
            out.append(p)
    return out


def _base_binds() -> list[str]:
    """The system part of the sandbox: /usr and its top-level links, a few /etc files, /sys, the interpreter."""
    out = ["--ro-bind", "/usr", "/usr"]
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        p = Path("/") / top
        if p.is_symlink():
            out += ["--symlink", os.readlink(p), str(p)]
        elif p.is_dir():
            out += ["--ro-bind", str(p), str(p)]
    for name in ETC_ALLOW:
        p = Path("/etc") / name
        if os.path.lexists(p):
            out += ["--ro-bind-try", str(p), str(p)]
    out += ["--ro-bind-try", "/sys", "/sys", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/dev/shm"]
    for dev in _nvidia_devices():
        out += ["--dev-bind", dev, dev]
    for p in interpreter_paths() + [_PGOLF_ROOT]:
        if not str(p).startswith("/usr/") and p != Path("/usr"):
            out += ["--ro-bind", str(p), str(p)]
    return out


def bwrap_argv(argv: Sequence[str], *, workdir: Path, writable: Sequence[Path], readable: Sequence[Path] = ()) -> list[str]:
    """The bwrap command line around ``argv``. Later binds win, so the bound run folders are
    visible even when they live under /tmp (which is private inside)."""
    out = [bwrap_path() or "bwrap", *_base_binds()]
    for p in readable:
        if Path(p).exists():
            out += ["--ro-bind", str(p), str(p)]
    for p in writable:
        out += ["--bind", str(p), str(p)]
    # the root bwrap builds (a tmpfs holding the mount points) read-only too: no write lands outside the binds
    out += ["--remount-ro", "/", "--unshare-all", "--die-with-parent", "--new-session", "--chdir", str(workdir),
            "--setenv", "TMPDIR", "/tmp"]
    return out + ["--"] + list(argv)


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def limits(gpu: bool) -> dict[int, int]:
    """rlimits of the sandboxed run: processes, file size, no core files; address space on CPU runs."""
    import resource

    out = {resource.RLIMIT_NPROC: LIMIT_NPROC, resource.RLIMIT_FSIZE: LIMIT_FSIZE, resource.RLIMIT_CORE: 0}
    mem = LIMIT_AS_CPU or _physical_memory()
    if not gpu and mem:
        out[resource.RLIMIT_AS] = mem
    return out


def _apply_limits(lims: dict[int, int]) -> Callable[[], None]:
    import resource  # imported here, not in the child between fork and exec

    def pre() -> None:
        for res, value in lims.items():
            try:
                _soft, hard = resource.getrlimit(res)
                if hard != resource.RLIM_INFINITY and hard < value:
                    value = hard
                resource.setrlimit(res, (value, value if hard == resource.RLIM_INFINITY or hard > value else hard))
            except (ValueError, OSError):
                pass
    return pre


@dataclass
class Outcome:
    returncode: int | None
    timed_out: bool
    seconds: float


def open_new(path: Path, mode: str = "w"):
    """Open a file pgolf writes in a run folder: whatever sits at ``path`` (a symlink planted by the
    run, a FIFO) is removed first, and the new file is created with O_EXCL|O_NOFOLLOW, so nothing is
    ever written through a link to somewhere else."""
    try:
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0), 0o644)
    return os.fdopen(fd, mode, encoding="utf-8", errors="replace")


MAX_CONSOLE_BYTES = 256 << 20  # the console log kept on disk; past this, lines are counted, not written


def run_limited(argv: Sequence[str], *, cwd: Path, env: dict[str, str], limit_s: float, log_path: Path,
                on_line: Callable[[str], None] | None = None, rlimits: dict[int, int] | None = None) -> Outcome:
    """Run ``argv`` in its own session, stream stdout+stderr to ``log_path`` (and ``on_line``), and
    kill the whole process group when ``limit_s`` passes. ``log_path`` must lie where the run
    cannot write (it is created fresh, never through a link)."""
    t0 = time.monotonic()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open_new(log_path) as log:
        proc = subprocess.Popen(list(argv), cwd=str(cwd), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, text=True, errors="replace", bufsize=1,
                                preexec_fn=_apply_limits(rlimits) if rlimits else None)
        timed_out = threading.Event()

        def _kill() -> None:
            timed_out.set()
            kill_group(proc)

        timer = threading.Timer(limit_s, _kill)
        timer.daemon = True
        timer.start()
        try:
            assert proc.stdout is not None
            written = 0
            for line in proc.stdout:
                if written < MAX_CONSOLE_BYTES:
                    log.write(line)
                    log.flush()
                    written += len(line)
                if on_line:
                    on_line(line.rstrip("\n"))
            proc.wait()
        except BaseException:
            kill_group(proc)
            raise
        finally:
            timer.cancel()
    if timed_out.is_set():
        kill_group(proc)  # stragglers that kept no pipe open
    return Outcome(proc.returncode, timed_out.is_set(), time.monotonic() - t0)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, then SIGKILL what is left after a grace period."""
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        return
    for sig, wait in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, 0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
