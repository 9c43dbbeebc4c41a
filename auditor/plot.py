"""Training curves of a record folder: train loss and val_bpb against step and against time, one
line per seed, with the 600 s training cap and the claimed score marked (`pgolf plot DIR`).

The log reader keeps per-run facts, not every step line, so the curves are read here from the log
text: lines like ``step:200/20000 train_loss:2.61 train_time:8712ms`` or
``200/20000 train_loss: 2.61 train_time: 0.1m``. Runs are split where the parsed RunLog says they
are, else where the step counter goes back. matplotlib is imported only by this module (never by
`pgolf audit`), through its Agg canvas: no display, no global pyplot state.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from auditor.discover import RecordFolder
from auditor.fs import UnreadableFile, read_text

CAP_SECONDS = 600.0
SHORT_RUN = 0.05  # runs that end before this share of the cap get a time axis of their own
_STEP = re.compile(r"^(?:step:\s*)?(\d+)/(\d+)\s")
_FIELD = {
    "train_loss": re.compile(r"\btrain_loss:\s*([0-9]+(?:\.[0-9]+)?(?:[eE][-+]?\d+)?)"),
    "val_bpb": re.compile(r"\bval_bpb:\s*([0-9]+(?:\.[0-9]+)?)"),
}
_TIME = re.compile(r"\btrain_time:\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|min|h)?\b")
_UNIT_SECONDS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, None: 1e-3}


@dataclass
class Series:
    label: str
    log: str
    train: list[tuple[int, float | None, float]] = field(default_factory=list)  # (step, seconds, loss)
    val: list[tuple[int, float | None, float]] = field(default_factory=list)  # (step, seconds, bpb)
    final_bpb: float | None = None
    final_label: str | None = None
    end_seconds: float | None = None  # training time at the run's last step, for the final score marker

    def key(self) -> str:
        return hashlib.sha256(repr((self.train, self.val)).encode()).hexdigest()


@dataclass
class Curves:
    folder: str
    claimed_bpb: float | None
    series: list[Series]
    problems: list[str] = field(default_factory=list)


def _clean(line: str) -> str:
    try:  # the log reader's prefix cleaner ([default0]:, timestamps) when it has one
        from auditor.evidence.logs import clean_line
    except ImportError:  # pragma: no cover - older reader
        return line.strip()
    return clean_line(line).strip()


def parse_points(text: str) -> list[tuple[int, str, int, float | None, float]]:
    """(line number, kind, step, seconds or None, value) for every train/val step line."""
    out = []
    for i, raw in enumerate(text.split("\n"), start=1):
        if "/" not in raw or ("train_loss" not in raw and "val_bpb" not in raw):
            continue
        line = _clean(raw)
        m = _STEP.match(line)
        if not m:
            continue
        step = int(m.group(1))
        t = _TIME.search(line)
        seconds = float(t.group(1)) * _UNIT_SECONDS[t.group(2)] if t else None
        for kind, rx in _FIELD.items():
            v = rx.search(line)
            if v:
                out.append((i, kind, step, seconds, float(v.group(1))))
    return out


def _run_label(run, lf, index: int, n_runs: int) -> str:
    seed = getattr(run, "seed", None) if run is not None else None
    if seed is None:
        seed = lf.seed_from_name
    name = f"seed {seed}" if seed is not None else lf.path
    return f"{name} (run {index + 1})" if n_runs > 1 else name


def curves(folder: RecordFolder) -> Curves:
    """Read a record folder's logs into one Series per run, duplicates (copied logs) dropped."""
    from auditor.evidence import read_evidence

    ev = read_evidence(folder)
    out = Curves(folder=folder.display, claimed_bpb=ev.claims.val_bpb, series=[])
    seen: set[str] = set()
    for lf in ev.logs:
        try:
            text = read_text(folder.path / lf.path, folder.root).text
        except UnreadableFile as exc:
            out.problems.append(f"{lf.path}: {exc}")
            continue
        points = parse_points(text)
        runs = [r for r in lf.runs if r.first_line and r.last_line]
        groups: list[tuple[object, list]] = []
        if runs:
            for r in runs:
                groups.append((r, [p for p in points if r.first_line <= p[0] <= r.last_line]))
        else:  # split where the step counter goes back
            cur: list = []
            last = -1
            for p in points:
                if p[1] == "train_loss" and p[2] < last and cur:
                    groups.append((None, cur))
                    cur = []
                if p[1] == "train_loss":
                    last = p[2]
                cur.append(p)
            if cur:
                groups.append((None, cur))
        groups = [(r, g) for r, g in groups if g]
        for k, (run, pts) in enumerate(groups):
            s = Series(label=_run_label(run, lf, k, len(groups)), log=lf.path)
            for _, kind, step, sec, val in pts:
                (s.train if kind == "train_loss" else s.val).append((step, sec, val))
            _fill_times(s, run)
            final = getattr(run, "final", None) if run is not None else None
            if final is not None and getattr(final, "val_bpb", None) is not None:
                s.final_bpb, s.final_label = final.val_bpb, final.label
            if s.key() not in seen:
                seen.add(s.key())
                out.series.append(s)
    out.series.sort(key=_label_order)
    return out


def _label_order(s: Series):
    m = re.match(r"seed (\d+)", s.label)
    return (0, int(m.group(1)), s.label) if m else (1, 0, s.label)


def _fill_times(s: Series, run) -> None:
    """Give every point a time: many logs print train_time only on train lines (or only on the
    stop line), so val points get theirs from the step→time line through the known points,
    extended with the run's last step and train time (the wallclock stop line)."""
    known = sorted({(st, sec) for st, sec, _ in s.train + s.val if sec is not None})
    steps = getattr(run, "steps", None) if run is not None else None
    train_ms = getattr(run, "train_time_ms", None) if run is not None else None
    if steps and train_ms:
        known = sorted(set(known) | {(int(steps), float(train_ms) / 1000.0)})
    if len(known) < 2:
        return
    xs = [k[0] for k in known]
    ys = [k[1] for k in known]

    def at(step: int) -> float | None:
        if step < xs[0] or step > xs[-1]:
            return None  # no extrapolation: a guessed time would move points across the cap
        import bisect

        j = bisect.bisect_left(xs, step)
        if xs[j] == step:
            return ys[j]
        x0, x1, y0, y1 = xs[j - 1], xs[j], ys[j - 1], ys[j]
        return y0 + (y1 - y0) * (step - x0) / (x1 - x0)

    s.train = [(st, sec if sec is not None else at(st), v) for st, sec, v in s.train]
    s.val = [(st, sec if sec is not None else at(st), v) for st, sec, v in s.val]
    s.end_seconds = ys[-1]


def _ylim(values: list[float], steps: list[int], keep: list[float]) -> tuple[float, float] | None:
    """Limits that show the interesting part: the first 10% of steps (loss spikes, the step-0
    eval at ~4 bpb) may run off the top; ``keep`` (claimed and final scores) always shows."""
    if not values:
        return None
    last = max(steps) if steps else 0
    late = [v for v, s in zip(values, steps) if s >= 0.1 * last] or values
    lo = min(late + keep)
    hi = max(late + keep)
    pad = max((hi - lo) * 0.08, 0.005)
    return lo - pad, hi + pad


def render_png(c: Curves, out: Path, dpi: int = 110):
    """Write the PNG; returns the matplotlib Figure (tests inspect what was drawn)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 8), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 2, sharex="col")  # train and val share the step and the time axis
    colors = [f"C{i % 10}" for i in range(len(c.series))]
    finals = [s.final_bpb for s in c.series if s.final_bpb is not None]
    keep_bpb = [x for x in [c.claimed_bpb, *finals] if x is not None]
    for row, kind, ylabel in ((0, "train", "train loss"), (1, "val", "val_bpb")):
        all_vals: list[float] = []
        all_steps: list[int] = []
        for col, xaxis in ((0, "step"), (1, "time")):
            ax = axes[row][col]
            for s, color in zip(c.series, colors):
                pts = s.train if kind == "train" else s.val
                if xaxis == "time":
                    pts = [p for p in pts if p[1] is not None]
                xs = [p[0] if xaxis == "step" else p[1] for p in pts]
                ys = [p[2] for p in pts]
                if col == 0:
                    all_vals += ys
                    all_steps += [p[0] for p in pts]
                if xs:
                    style = {"linewidth": 1.0} if kind == "train" else {"marker": "o", "markersize": 3, "linewidth": 1.2}
                    ax.plot(xs, ys, color=color, label=s.label, **style)
                if kind == "val" and s.final_bpb is not None:
                    every = s.train + s.val
                    if xaxis == "step":
                        last = max((p[0] for p in every), default=None)
                    else:
                        last = s.end_seconds if s.end_seconds is not None else max((p[1] for p in every if p[1] is not None), default=None)
                    if last is not None:
                        ax.plot([last], [s.final_bpb], marker="*", markersize=11, color=color, linestyle="none",
                                markeredgecolor="black", markeredgewidth=0.5)
            if xaxis == "time":
                tmax = max([p[1] for s in c.series for p in s.train + s.val if p[1] is not None], default=0.0)
                if tmax >= SHORT_RUN * CAP_SECONDS:
                    ax.set_xlim(0, max(CAP_SECONDS, tmax) * 1.04)
                    ax.axvline(CAP_SECONDS, color="red", linestyle="--", linewidth=1.2, label="600 s training cap")
                else:  # a short run (a CI preset) would be a few pixels at the left of a 0-600 s axis
                    ax.set_xlim(0, (tmax or 1.0) * 1.04)
                    ax.text(0.99, 0.02, f"600 s training cap off the axis (runs end by {tmax:.3g} s)", transform=ax.transAxes,
                            ha="right", va="bottom", fontsize=8, color="red")
                ax.set_xlabel("training time (s)")
            else:
                ax.set_xlabel("step")
            if kind == "val" and c.claimed_bpb is not None:
                ax.axhline(c.claimed_bpb, color="black", linestyle=":", linewidth=1.2, label=f"claimed {c.claimed_bpb:.4f}")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{ylabel} vs {'step' if xaxis == 'step' else 'time'}", fontsize=10)
            ax.grid(True, alpha=0.3)
        lim = _ylim(all_vals, all_steps, keep_bpb if kind == "val" else [])
        if lim:
            above = [v for v in all_vals if v > lim[1]]
            for ax in axes[row]:
                ax.set_ylim(*lim)
                if above:  # early spikes run off the top on purpose; say so rather than hide them
                    ax.text(0.99, 0.98, f"{len(above)} early point{'s' if len(above) != 1 else ''} above the axis "
                            f"(up to {max(above):.3g})", transform=ax.transAxes, ha="right", va="top", fontsize=8, color="gray")
    for ax in axes.flat:
        ax.tick_params(labelbottom=True)
        handles, labels = ax.get_legend_handles_labels()
        if labels:
            ax.legend(fontsize=8, loc="best")
    if finals:
        axes[1][0].plot([], [], marker="*", linestyle="none", color="gray", markeredgecolor="black", label="final score (post-training eval)")
        axes[1][0].legend(fontsize=8, loc="best")
    claimed = f" · claimed val_bpb {c.claimed_bpb:.4f}" if c.claimed_bpb is not None else ""
    fig.suptitle(f"{c.folder}\n{len(c.series)} run(s){claimed}", fontsize=11)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return fig


def default_name(folder: RecordFolder) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", folder.name).strip("_") or "record"
    return f"{safe}.png"
