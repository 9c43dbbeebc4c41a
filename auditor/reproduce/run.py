"""Run one seed: copy the record into the run directory, launch torchrun (sandboxed), capture its logs."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from auditor.reproduce.plan import Plan
from auditor.reproduce.progress import Progress, strip_rank_prefix
from auditor.reproduce.sandbox import Outcome, bwrap_argv, run_limited

_SKIP_NEW = ("logs/", "__pycache__/")


@dataclass
class SeedRun:
    seed: int
    dir: Path  # run_dir/seed_<s>
    copy: Path  # the record copy the script ran in
    console: Path  # torchrun's console, [defaultN]: prefixes stripped
    logfile: Path | None  # the script's own logs/<RUN_ID>.txt, when it wrote one
    outcome: Outcome
    new_files: list[str] = field(default_factory=list)  # written by the run into the copy
    argv: list[str] = field(default_factory=list)


def _files(root: Path) -> dict[str, int]:
    out = {}
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            out[p.relative_to(root).as_posix()] = p.stat().st_size
    return out


def _readable_paths(plan: Plan) -> list[Path]:
    out = []
    for k, s in plan.env.items():
        if k.endswith(("_PATH", "_DIR")) and s.value.startswith("/"):
            p = Path(s.value)
            if p.exists():
                out.append(p)
    return out


def child_env(plan: Plan, seed: int, seed_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(plan.env_for(seed))
    cache = seed_dir / "cache"
    # Compilers and hubs cache under $HOME, which is read-only in the sandbox.
    env.update({"PYTHONDONTWRITEBYTECODE": "1", "XDG_CACHE_HOME": str(cache), "TRITON_CACHE_DIR": str(cache / "triton"),
                "TORCHINDUCTOR_CACHE_DIR": str(cache / "inductor"), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"})
    m = plan.match_for(seed)
    if m.mode == "replay" and m.ms_per_step:  # the replayed clock (clock.py): a sitecustomize in the run's home
        from auditor.reproduce import clock

        clock.merge_pythonpath(env, clock.install(clock.folder_for(seed_dir), m.ms_per_step), env.get("PYTHONPATH"))
    return env


def run_seed(plan: Plan, seed: int, progress: Progress | None = None) -> SeedRun:
    seed_dir = plan.run_dir / f"seed_{seed}"
    copy = seed_dir / "record"
    seed_dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(plan.record, copy, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    before = _files(copy)
    ranks = seed_dir / "ranks"
    argv = plan.torchrun_args(ranks)
    if plan.sandbox == "bwrap":
        argv = bwrap_argv(argv, workdir=copy, writable=[seed_dir], readable=_readable_paths(plan))
    raw = seed_dir / "console.raw.txt"
    outcome = run_limited(argv, cwd=copy, env=child_env(plan, seed, seed_dir), limit_s=plan.limit_s, log_path=raw,
                          on_line=progress.line if progress else None)
    console = seed_dir / "console.txt"
    text = raw.read_text(encoding="utf-8", errors="replace")
    console.write_text("\n".join(strip_rank_prefix(x) for x in text.splitlines()) + "\n", encoding="utf-8")
    logfile = copy / "logs" / f"train_seed{seed}.txt"
    after = _files(copy)
    new = sorted(k for k, v in after.items() if (k not in before or before[k] != v) and not k.startswith(_SKIP_NEW))
    return SeedRun(seed, seed_dir, copy, console, logfile if logfile.is_file() else None, outcome, new, argv)
