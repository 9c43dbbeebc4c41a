"""Live progress of a reproduction: seed k/n, step, train_time against the 600 s cap, loss, ETA."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass

TRAIN_CAP_S = 600.0
_STEP = re.compile(r"^step:(\d+)/(\d+)\s+(train_loss|val_loss):([\d.]+).*?train_time:([\d.]+)ms")
_STEP_LATE = re.compile(r"^(\d+)/(\d+)\s+(train_loss|val_loss):\s*([\d.]+)(?:.*?train_time:\s*([\d.]+)m)?")
_PREFIX = re.compile(r"^\[default\d+\]:")


def strip_rank_prefix(line: str) -> str:
    """torchrun --tee prefixes every console line with ``[defaultN]:``; the parsers want the bare line."""
    return _PREFIX.sub("", line, count=1)


@dataclass
class StepInfo:
    step: int
    total: int
    kind: str
    loss: float
    train_time_s: float | None


def parse_step(line: str) -> StepInfo | None:
    line = strip_rank_prefix(line).strip()
    m = _STEP.match(line)
    if m:
        return StepInfo(int(m.group(1)), int(m.group(2)), m.group(3), float(m.group(4)), float(m.group(5)) / 1000.0)
    m = _STEP_LATE.match(line)
    if m:
        tt = float(m.group(5)) * 60.0 if m.group(5) else None
        return StepInfo(int(m.group(1)), int(m.group(2)), m.group(3), float(m.group(4)), tt)
    return None


class Progress:
    """A rich live line on stderr. ``quiet`` prints nothing."""

    def __init__(self, n_seeds: int, quiet: bool = False):
        self.n = n_seeds
        self.quiet = quiet
        self.k = 0
        self.seed = None
        self.last: StepInfo | None = None
        self.t_seed = time.monotonic()
        self.seed_secs: list[float] = []
        self._live = None
        if not quiet:
            from rich.console import Console
            from rich.live import Live

            self.console = Console(stderr=True)
            self._live = Live(console=self.console, refresh_per_second=4, transient=True)
            self._live.start()

    def start_seed(self, k: int, seed: int) -> None:
        self.k, self.seed, self.last, self.t_seed = k, seed, None, time.monotonic()
        self._refresh()

    def line(self, text: str) -> None:
        info = parse_step(text)
        if info:
            self.last = info
            self._refresh()

    def end_seed(self, status: str) -> None:
        self.seed_secs.append(time.monotonic() - self.t_seed)
        if self._live:
            self.console.print(f"seed {self.k}/{self.n} ({self.seed}): {status}")

    def stop(self) -> None:
        if self._live:
            self._live.stop()

    def eta_s(self) -> float | None:
        elapsed = time.monotonic() - self.t_seed
        left_seeds = self.n - self.k
        per_seed = (sum(self.seed_secs) / len(self.seed_secs)) if self.seed_secs else None
        cur = None
        s = self.last
        if s and s.step > 0 and s.train_time_s:
            per_step = s.train_time_s / s.step
            cur = max(0.0, min((s.total - s.step) * per_step, TRAIN_CAP_S - s.train_time_s))
        if cur is None and per_seed is None:
            return None
        return (cur or max(0.0, (per_seed or 0) - elapsed)) + left_seeds * (per_seed or elapsed + (cur or 0))

    def status(self) -> str:
        s = self.last
        parts = [f"seed {self.k}/{self.n} ({self.seed})"]
        if s:
            parts.append(f"step {s.step}/{s.total}")
            if s.train_time_s is not None:
                parts.append(f"train_time {s.train_time_s:.1f}/{TRAIN_CAP_S:.0f} s")
            parts.append(f"{s.kind} {s.loss:.4f}")
        else:
            parts.append(f"starting ({time.monotonic() - self.t_seed:.0f} s)")
        eta = self.eta_s()
        if eta is not None:
            parts.append(f"ETA {eta / 60:.1f} min")
        return "  ".join(parts)

    def _refresh(self) -> None:
        if self._live:
            self._live.update(self.status())
