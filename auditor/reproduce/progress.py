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
            # the status is re-computed at every refresh, so the clock moves between log lines
            self._live = Live(_Status(self.status), console=self.console, refresh_per_second=4, transient=True)
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
            self._live.refresh()


class _Status:
    """A rich renderable that asks for its text when drawn."""

    def __init__(self, text):
        self.text = text

    def __rich__(self):
        from rich.text import Text

        return Text(self.text(), no_wrap=True, overflow="ellipsis")


def fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"ETA {seconds:.0f} s" if seconds < 120 else f"ETA {seconds / 60:.1f} min"


class TrainProgress:
    """`pgolf train`: a live line on a terminal's stderr while a seed runs, read from the log the run
    writes (the generated train_gpt.py is not touched): seed k/n, step, loss, tokens/s and the ETA
    against the wall-clock cap. Off when stderr is not a terminal or ``quiet``."""

    def __init__(self, n_seeds: int, batch_tokens: int, cap_s: float, quiet: bool = False, stream=None):
        import sys

        self.n, self.batch_tokens, self.cap_s = n_seeds, batch_tokens, cap_s
        self.k, self.seed, self.log = 0, None, None
        self.last: StepInfo | None = None
        self.last_train: StepInfo | None = None
        self.t0 = time.monotonic()
        self._pos = 0
        self._buf = ""
        self._live = None
        stream = stream or sys.stderr
        tty = getattr(stream, "isatty", lambda: False)()
        if tty and not quiet:
            from rich.console import Console
            from rich.live import Live

            self.console = Console(file=stream)
            self._live = Live(_Status(self.status), console=self.console, refresh_per_second=4, transient=True)
            self._live.start()

    @property
    def active(self) -> bool:
        return self._live is not None

    def print(self, line: str) -> None:
        """A log line above the live status (or plainly, when there is none)."""
        if self._live:
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            print(line, flush=True)

    def start_seed(self, k: int, seed: int, log) -> None:
        self.k, self.seed, self.log, self.last, self.last_train, self._pos, self._buf = k, seed, log, None, None, 0, ""
        self.t0 = time.monotonic()

    def end_seed(self) -> None:
        """The seed's last status stays on screen as a line; the live line goes idle."""
        if self._live and self.seed is not None:
            self.console.print(self.status(), markup=False, highlight=False, soft_wrap=True)
        self.log, self.seed = None, None

    def poll(self) -> None:
        """Read what the run appended to its log since the last call."""
        if self.log is None:
            return
        try:
            with open(self.log, "rb") as fh:
                fh.seek(self._pos)
                chunk = fh.read(1 << 20)
        except OSError:
            return
        self._pos += len(chunk)
        lines = (self._buf + chunk.decode("utf-8", "replace")).split("\n")
        self._buf = lines.pop()
        for line in lines:
            info = parse_step(line)
            if info:
                self.last = info
                if info.kind == "train_loss":
                    self.last_train = info

    def tokens_per_s(self) -> float | None:
        s = self.last_train  # a val line has no throughput of its own: the last train line's stays
        if s and s.train_time_s and s.step > 0 and self.batch_tokens:
            return s.step * self.batch_tokens / s.train_time_s
        return None

    def eta_s(self) -> float | None:
        """Training time left for this seed: the steps left at the pace so far, at most the cap's rest."""
        s = self.last
        if not (s and s.step > 0 and s.train_time_s):
            return None
        left = (s.total - s.step) * s.train_time_s / s.step
        if self.cap_s > 0:
            left = min(left, max(0.0, self.cap_s - s.train_time_s))
        return left

    def status(self) -> str:
        if self.seed is None:
            return ""
        self.poll()
        parts = [f"seed {self.k}/{self.n} ({self.seed})"]
        s = self.last
        if s is None:
            parts.append(f"starting ({time.monotonic() - self.t0:.0f} s)")
        else:
            parts.append(f"step {s.step}/{s.total}")
            parts.append(f"{s.kind.replace('_', ' ')} {s.loss:.4f}")
            tps = self.tokens_per_s()
            if tps:
                parts.append(f"{tps:,.0f} tokens/s")
            if s.train_time_s is not None:
                parts.append(f"train {s.train_time_s:.1f}" + (f"/{self.cap_s:.0f} s cap" if self.cap_s > 0 else " s"))
            eta = fmt_eta(self.eta_s())
            if eta:
                parts.append(eta)
        return "  ".join(parts)

    def stop(self) -> None:
        if self._live:
            self._live.stop()
            self._live = None
