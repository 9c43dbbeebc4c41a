"""Throughput of a run, read from its log: where it stopped, how long a step took, under which cap;
the per-step time the replayed clock uses; and the projection to 600 s on this machine or a named target.

Nothing here runs anything: the inputs are the parsed logs (auditor.evidence.logs) and the
replayed clock's readings (clock.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from auditor.model import RunLog

CAP_S = 600.0


@dataclass
class RunTiming:
    """Where a run stopped and how fast it went, as its log says."""

    stop_step: int | None
    train_time_ms: float | None
    step_avg_ms: float | None
    cap_s: float | None  # the run's MAX_WALLCLOCK_SECONDS (0 or None: no cap)
    iterations: int | None
    stopped_at_cap: bool
    where: str  # "logs/x.txt:440"

    @property
    def ms_per_step(self) -> float | None:
        if self.train_time_ms and self.stop_step:
            return self.train_time_ms / self.stop_step
        return self.step_avg_ms

    @property
    def knows_stop(self) -> bool:
        return bool(self.stop_step)

    def describe(self) -> str:
        parts = [f"step {self.stop_step}" if self.stop_step else "no stop step"]
        if self.ms_per_step:
            parts.append(f"{self.ms_per_step:.2f} ms/step")
        if self.train_time_ms is not None:
            parts.append(f"train_time {self.train_time_ms / 1000:.1f} s")
        if self.stopped_at_cap and self.cap_s:
            parts.append(f"stopped at the {self.cap_s:g} s cap")
        return ", ".join(parts)


def timing_of(run: RunLog | None, where: str) -> RunTiming | None:
    if run is None:
        return None
    cap = run.max_wallclock_seconds
    line = run.stop.line if run.stop is not None else None
    at_cap = run.stop is not None
    if not at_cap and cap and run.train_time_ms is not None and run.steps and run.iterations:
        at_cap = run.train_time_ms >= cap * 1000.0 and run.steps < run.iterations
    return RunTiming(run.steps or None, run.train_time_ms, run.step_avg_ms, cap, run.iterations, at_cap,
                     f"{where}:{line}" if line else where)


def replay_ms_per_step(t: RunTiming) -> tuple[float | None, str]:
    """The per-step time the replayed clock advances by: the claimed train_time over the claimed stop
    step. A run that stopped at the first step past its cap (the baseline's rule) stopped at N when
    (N−1)·d < cap ≤ N·d; an uneven last step can put the average outside that window, and then the
    middle of the window is used so that the cap falls on the claimed step again."""
    d = t.ms_per_step
    if d is None or not t.stop_step:
        return None, "the claimed log has no train_time or step_avg"
    n = t.stop_step
    if t.stopped_at_cap and t.cap_s and t.train_time_ms is not None and t.train_time_ms >= t.cap_s * 1000.0:
        cap_ms = t.cap_s * 1000.0
        lo = cap_ms / n
        hi = cap_ms / (n - 1) if n > 1 else lo * 2.0
        if not (lo * (1 + 1e-9) <= d <= hi * (1 - 1e-9)):
            mid = (lo + hi) / 2.0
            return mid, (f"{mid:.4f} ms/step: the claimed average {d:.4f} ms would not stop at step {n} under the "
                         f"{t.cap_s:g} s cap, so the middle of [{lo:.4f}, {hi:.4f}) ms is used")
    return d, f"{d:.4f} ms/step = claimed train_time {t.train_time_ms or 0:.0f} ms / step {n}" if t.train_time_ms else \
        f"{d:.4f} ms/step (the claimed step_avg)"


def steps_in(cap_s: float, ms_per_step: float) -> int:
    return int(cap_s * 1000.0 // ms_per_step) if ms_per_step > 0 else 0


# --- named targets ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    name: str
    baseline_ms_per_step: float
    source: str


# The official NaiveBaseline (records/track_10min_16mb/2026-03-17_NaiveBaseline/train.log:439):
# 13,780 steps in 600.038 s on 8×H100 SXM, step_avg 43.54 ms.
BASELINE_SHAPE = {"params": 17_059_912, "train_batch_tokens": 524_288, "num_layers": 9, "model_dim": 512, "train_seq_len": 1024}
TARGETS = {"8xH100": Target("8xH100", 43.54, "the official NaiveBaseline's step_avg on 8×H100 (2026-03-17_NaiveBaseline/train.log:439)")}
_MODEL_PARAMS = re.compile(r"^\s*model_params[:=]\s*(\d+)", re.M)


def target(name: str) -> Target:
    key = name.replace("×", "x").replace(" ", "")
    for k, t in TARGETS.items():
        if k.lower() == key.lower():
            return t
    raise ValueError(f"--target {name!r}: unknown target; choose one of {', '.join(TARGETS)}")


def shape_of(hyper: dict[str, str], log_text: str) -> dict[str, int] | None:
    """The numbers training FLOPs depend on, from the claimed log (dump and model_params line)."""
    m = _MODEL_PARAMS.search(log_text)
    out: dict[str, int] = {}
    if m:
        out["params"] = int(m.group(1))
    for key in ("train_batch_tokens", "num_layers", "model_dim", "train_seq_len"):
        v = str(hyper.get(key, "")).strip()
        if v.isdigit():
            out[key] = int(v)
    if not out.get("train_batch_tokens"):
        m2 = re.search(r"train_batch_tokens:(\d+)", log_text)
        if m2:
            out["train_batch_tokens"] = int(m2.group(1))
    if not out.get("train_seq_len"):
        m2 = re.search(r"train_seq_len:(\d+)", log_text)
        if m2:
            out["train_seq_len"] = int(m2.group(1))
    return out if "params" in out and "train_batch_tokens" in out else None


def flops_per_step(shape: dict[str, int]) -> float:
    """6·P·B for the dense weights plus 6·L·S·d·B for causal attention (forward + backward)."""
    b = shape["train_batch_tokens"]
    attn = 6.0 * shape.get("num_layers", 0) * shape.get("train_seq_len", 0) * shape.get("model_dim", 0) * b
    return 6.0 * shape["params"] * b + attn


def project_ms_per_step(t: Target, shape: dict[str, int]) -> tuple[float, float]:
    """(ms/step on the target, FLOP ratio to the baseline): the baseline's time scaled by training FLOPs per step."""
    ratio = flops_per_step(shape) / flops_per_step(BASELINE_SHAPE)
    return t.baseline_ms_per_step * ratio, ratio


def log_text(record: Path, rel: str) -> str:
    p = record / rel
    try:
        if p.is_symlink() or not p.is_file():
            return ""
        with open(p, "rb") as f:
            return f.read(4_000_000).decode("utf-8", errors="replace")
    except OSError:
        return ""
