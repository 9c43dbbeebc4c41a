"""The replayed clock, pgolf's side: put it into a seed's sandbox, and read back what it measured.

The runtime is ``clock_site.py``, copied to ``<seed dir>/clock/sitecustomize.py``; the seed's
PYTHONPATH starts with that folder, so every Python process of the run imports it at start-up
and the record's files stay as submitted. Only torchrun workers replay the clock (the launcher
and the workers' children keep the real one). How a step is detected and what the clock does
between steps is documented in clock_site.py and docs/reproduce.md.
"""
from __future__ import annotations

import json
import shutil
import statistics
from dataclasses import dataclass
from pathlib import Path

RUNTIME = Path(__file__).with_name("clock_site.py")
DEFAULT_IDLE_S = 60.0


@dataclass
class ClockReading:
    """What the clock of rank 0 saw: real time per step, next to the replayed one."""

    ms_per_step_replayed: float
    steps: int  # optimizer steps seen (warm-up steps included)
    real_ms_per_step: float | None  # mean real step time, evaluation pauses left out
    real_s: float
    leaked_s: float
    path: str


def folder_for(seed_dir: Path) -> Path:
    """The run's own home (writable inside the sandbox), so the clock can write its readings there."""
    return seed_dir / "run_home" / "pgolf-clock"


def install(folder: Path, ms_per_step: float, idle_s: float = DEFAULT_IDLE_S) -> dict[str, str]:
    """Write the runtime into ``folder`` and return the env that turns it on."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(RUNTIME, folder / "sitecustomize.py")
    return {"PGOLF_CLOCK_MS_PER_STEP": repr(float(ms_per_step)), "PGOLF_CLOCK_IDLE_S": f"{idle_s:g}",
            "PGOLF_CLOCK_OUT": str(folder), "PYTHONPATH": str(folder)}


def merge_pythonpath(env: dict[str, str], clock_env: dict[str, str], inherited: str | None) -> None:
    """The clock folder first, then whatever PYTHONPATH the run already had."""
    env.update(clock_env)
    if inherited:
        env["PYTHONPATH"] = clock_env["PYTHONPATH"] + ":" + inherited


def real_ms_per_step(intervals_ms: list[float]) -> float | None:
    """Mean of the real step intervals, with pauses (an evaluation inside the loop, a checkpoint)
    left out: an interval more than 5× the median is not a step."""
    if not intervals_ms:
        return None
    med = statistics.median(intervals_ms)
    kept = [x for x in intervals_ms if x <= 5.0 * med] or intervals_ms
    return sum(kept) / len(kept)


def read(folder: Path) -> ClockReading | None:
    """Rank 0's reading (the lowest rank that wrote one), or None when the clock never ran. The file was
    written inside the sandbox: read without following links, and any malformed content is no reading."""
    files = sorted(folder.glob("clock_rank*.json"), key=lambda p: (len(p.name), p.name))
    for path in files:
        try:
            if path.is_symlink() or not path.is_file() or path.stat().st_size > 64 << 20:
                continue
            data = json.loads(path.read_text(encoding="utf-8"))
            intervals = [float(x) for x in data.get("real_step_intervals_ms") or []]
            return ClockReading(float(data["ms_per_step"]), int(data["steps"]), real_ms_per_step(intervals),
                                float(data.get("real_s") or 0.0), float(data.get("leaked_s") or 0.0), str(path))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None
