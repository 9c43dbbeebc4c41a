"""Run facts from the logs that several rules judge (TIME-*, STATS-*, ARTIFACT-*): which runs the
measured score uses, and GPTQ calibration logged after the training loop stopped."""
from __future__ import annotations

import re

from auditor.model import LogFile, Measured, RunLog

_GPTQ_COLLECTED = re.compile(r"collected\s+\d+\s+hessians?\s+in\s+([\d.]+)\s*s", re.I)


def used_runs(ev, measured: Measured) -> list[tuple[LogFile, RunLog]]:
    """The (log, run) pairs whose finals the measured score uses (one per seed), else every complete run."""
    used = set(measured.extra.get("logs_used") or [])
    out = []
    for lf in ev.logs:
        run = lf.last_run
        if run is None:
            continue
        if used and lf.path not in used:
            continue
        out.append((lf, run))
    return out


def gptq_after_stop_s(run: RunLog) -> tuple[float, int, str] | None:
    """Seconds of Hessian collection logged after the training loop stopped: (s, line, text)."""
    stop_line = run.stop.line if run.stop else None
    for line, text in run.markers.get("gptq", []):
        m = _GPTQ_COLLECTED.search(text)
        if m and (stop_line is None or line > stop_line):
            return float(m.group(1)), line, text
    return None
