"""Run a command with the network off, writes confined to one directory, and a hard time limit.

bubblewrap (tooling.md §5.3): the root filesystem read-only, a private /tmp, fresh /dev and
/proc, the run directory (and the data, read-only) bound back in, ``--unshare-all``. bwrap
brings loopback up in the new network namespace, so torchrun's c10d rendezvous still works;
every other address is unreachable. The time limit kills the whole process group: torchrun,
its workers and anything they started.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

KILL_GRACE_S = 5.0


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def bwrap_works() -> tuple[bool, str]:
    """bwrap present and allowed to create namespaces here (containers often forbid it)."""
    exe = bwrap_path()
    if not exe:
        return False, "bubblewrap (bwrap) is not installed; install it (apt-get install bubblewrap) or pass --no-sandbox"
    try:
        r = subprocess.run([exe, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"],
                           capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bwrap could not start: {exc}"
    if r.returncode != 0:
        return False, f"bwrap cannot create namespaces here: {r.stderr.strip()[:200]}; pass --no-sandbox to run unconfined"
    return True, exe


def _nvidia_devices() -> list[str]:
    return sorted(str(p) for p in Path("/dev").glob("nvidia*"))


_PGOLF_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds the auditor package


def bwrap_argv(argv: Sequence[str], *, workdir: Path, writable: Sequence[Path], readable: Sequence[Path] = ()) -> list[str]:
    """The bwrap command line around ``argv``. Later binds win, so /tmp is private and the bound
    directories are visible even when they live under /tmp."""
    out = [bwrap_path() or "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
           "--tmpfs", "/dev/shm"]
    for dev in _nvidia_devices():
        out += ["--dev-bind", dev, dev]
    # pgolf itself (the probe runtime imports it) may live under /tmp, which the sandbox replaces
    for p in [*readable, _PGOLF_ROOT]:
        if Path(p).exists():
            out += ["--ro-bind", str(p), str(p)]
    for p in writable:
        out += ["--bind", str(p), str(p)]
    out += ["--unshare-all", "--die-with-parent", "--new-session", "--chdir", str(workdir), "--setenv", "TMPDIR", "/tmp"]
    return out + ["--"] + list(argv)


@dataclass
class Outcome:
    returncode: int | None
    timed_out: bool
    seconds: float


def run_limited(argv: Sequence[str], *, cwd: Path, env: dict[str, str], limit_s: float, log_path: Path,
                on_line: Callable[[str], None] | None = None) -> Outcome:
    """Run ``argv`` in its own session, stream stdout+stderr to ``log_path`` (and ``on_line``), and
    kill the whole process group when ``limit_s`` passes."""
    t0 = time.monotonic()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8", errors="replace") as log:
        proc = subprocess.Popen(list(argv), cwd=str(cwd), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, text=True, errors="replace", bufsize=1)
        timed_out = threading.Event()

        def _kill() -> None:
            timed_out.set()
            kill_group(proc)

        timer = threading.Timer(limit_s, _kill)
        timer.daemon = True
        timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                log.flush()
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
