"""Run one seed: copy the record into the run directory, launch torchrun (sandboxed), capture its logs.

Layout of ``run_dir/seed_<s>/``: ``record/`` (the copy the script runs in), ``ranks/`` (torchrun's
per-rank logs) and ``run_home/`` are the only folders the run can write; ``console.raw.txt`` and
``console.txt`` are pgolf's and sit beside them, out of the run's reach. After the run everything
it could write is hostile: files are read without following symlinks, only regular files count,
and pgolf writes only fresh files of its own (``sandbox.open_new``).
"""
from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from auditor.reproduce.plan import Plan
from auditor.reproduce.progress import Progress, strip_rank_prefix
from auditor.reproduce.sandbox import Outcome, allowed_env, bwrap_argv, limits, open_new, run_limited

_SKIP_NEW = ("logs/", "__pycache__/")
MAX_CONSOLE_READ = 64 << 20
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
GIVEN_ORIGINS = ("--data", "--tokenizer", "--env")  # paths the reviewer named: bound read-only


@dataclass
class SeedRun:
    seed: int
    dir: Path  # run_dir/seed_<s>
    copy: Path  # the record copy the script ran in
    console: Path  # torchrun's console, [defaultN]: prefixes stripped
    logfile: Path | None  # the script's own logs/<RUN_ID>.txt, when it wrote one (a regular file, no link)
    outcome: Outcome
    new_files: list[str] = field(default_factory=list)  # written by the run into the copy
    argv: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # entries of the record not copied (FIFOs, devices)


def regular_file(path: Path, top: Path) -> bool:
    """``path`` is a regular file reached from ``top`` through real folders only (no symlink on the way)."""
    try:
        rel = path.relative_to(top)
    except ValueError:
        return False
    p = top
    for part in rel.parts:
        p = p / part
        try:
            st = os.lstat(p)
        except OSError:
            return False
        if stat.S_ISLNK(st.st_mode):
            return False
    return stat.S_ISREG(st.st_mode) if rel.parts else False


def read_capped(path: Path, limit: int = MAX_CONSOLE_READ) -> bytes:
    """Bytes of a file in a run folder: never through a symlink, never a FIFO or device, at most ``limit``."""
    fd = os.open(path, _READ_FLAGS)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file")
        chunks, got = [], 0
        while got < limit:
            chunk = os.read(fd, min(1 << 20, limit - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _files(root: Path) -> dict[str, int]:
    """Regular files under ``root`` (symlinks and what lies behind symlinked folders left out)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for n in filenames:
            p = Path(dirpath) / n
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                out[p.relative_to(root).as_posix()] = st.st_size
    return out


def copy_record(src: Path, dst: Path) -> list[str]:
    """Copy the record folder without following its symlinks (kept as links) or opening anything
    but regular files; returns what was left out (FIFOs, sockets, devices)."""
    skipped: list[str] = []
    dst.mkdir(parents=True, exist_ok=True)
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        d = Path(dirpath)
        rel = d.relative_to(src)
        dirnames[:] = [n for n in dirnames if n != "__pycache__"]
        for n in dirnames:
            p = d / n
            if p.is_symlink():
                os.symlink(os.readlink(p), dst / rel / n)
            else:
                (dst / rel / n).mkdir(exist_ok=True)
        for n in filenames:
            p, q = d / n, dst / rel / n
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(p), q)
            elif stat.S_ISREG(st.st_mode):
                fd = os.open(p, _READ_FLAGS)
                try:
                    with os.fdopen(fd, "rb", closefd=False) as fin, open(q, "xb") as fout:
                        shutil.copyfileobj(fin, fout)
                finally:
                    os.close(fd)
                os.chmod(q, stat.S_IMODE(st.st_mode) | stat.S_IRUSR | stat.S_IWUSR)
            else:
                skipped.append((rel / n).as_posix())
    return skipped


def readable_paths(plan: Plan) -> list[Path]:
    """Read-only binds: the record itself (relative paths of its README point into it) and the
    paths the reviewer gave (``--data``, ``--tokenizer``, path-like ``--env``). A path the README
    or the logs name outside the folder is never bound (preflight asks for --data/--tokenizer)."""
    out = [plan.record]
    for k, s in plan.env.items():
        if s.origin in GIVEN_ORIGINS and s.value.startswith("/") and (s.origin != "--env" or k.endswith(("_PATH", "_DIR"))):
            p = Path(s.value)
            if p.exists():
                out.append(p)
    return out


def child_env(plan: Plan, seed: int, seed_dir: Path) -> dict[str, str]:
    home = seed_dir / "run_home"
    cache = home / ".cache"
    env = allowed_env(plan.env_for(seed), home=home)
    # Compilers and hubs cache under $HOME; keep them in the run's own home.
    env.update({"PYTHONDONTWRITEBYTECODE": "1", "XDG_CACHE_HOME": str(cache), "TRITON_CACHE_DIR": str(cache / "triton"),
                "TORCHINDUCTOR_CACHE_DIR": str(cache / "inductor"), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"})
    if plan.sandbox != "bwrap":
        env["TMPDIR"] = str(home / "tmp")
    m = plan.match_for(seed)
    if m.mode == "replay" and m.ms_per_step:  # the replayed clock (clock.py): a sitecustomize in the run's home
        from auditor.reproduce import clock

        clock.merge_pythonpath(env, clock.install(clock.folder_for(seed_dir), m.ms_per_step), env.get("PYTHONPATH"))
    return env


def run_seed(plan: Plan, seed: int, progress: Progress | None = None) -> SeedRun:
    seed_dir = plan.run_dir / f"seed_{seed}"
    copy, ranks, home = seed_dir / "record", seed_dir / "ranks", seed_dir / "run_home"
    seed_dir.mkdir(parents=True, exist_ok=True)
    skipped = copy_record(plan.record, copy)
    for d in (ranks, home, home / "tmp"):
        d.mkdir(parents=True, exist_ok=True)
    before = _files(copy)
    argv = plan.torchrun_args(ranks)
    rlimits = None
    if plan.sandbox == "bwrap":
        argv = bwrap_argv(argv, workdir=copy, writable=[copy, ranks, home], readable=readable_paths(plan))
        rlimits = limits(gpu=bool(plan.gpu.count))
    raw = seed_dir / "console.raw.txt"
    outcome = run_limited(argv, cwd=copy, env=child_env(plan, seed, seed_dir), limit_s=plan.limit_s, log_path=raw,
                          on_line=progress.line if progress else None, rlimits=rlimits)
    console = seed_dir / "console.txt"
    try:
        text = read_capped(raw).decode("utf-8", errors="replace")
    except OSError as exc:
        text = f"pgolf: cannot read {raw.name}: {exc.strerror or exc}\n"
    with open_new(console) as out:
        out.write("\n".join(strip_rank_prefix(x) for x in text.splitlines()) + "\n")
    logfile = copy / "logs" / f"train_seed{seed}.txt"
    after = _files(copy)
    new = sorted(k for k, v in after.items() if (k not in before or before[k] != v) and not k.startswith(_SKIP_NEW))
    return SeedRun(seed, seed_dir, copy, console, logfile if regular_file(logfile, copy) else None, outcome, new, argv, skipped)
