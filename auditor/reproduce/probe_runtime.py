"""Runtime half of the instrumentation: the instrumented copy of a scorer calls these.

Lives in the probe child process only. Values are flattened to floats (tensors and arrays via
``tolist``); every event keeps its order, the enclosing loop variables and the source line.
"""
from __future__ import annotations

import atexit
import json
import os

EVENTS: list[dict] = []
_DEPTH = [0]  # > 0 while inside an instrumented update call: its internals are part of that update


def _floats(value) -> list[float]:
    for attr in ("detach", "cpu"):
        if hasattr(value, attr):
            value = getattr(value, attr)()
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (int, float)):
        return [float(value)]
    out: list[float] = []
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, (list, tuple)):
            stack.extend(reversed(v))
        else:
            try:
                out.append(float(v))
            except (TypeError, ValueError):
                pass
    return out


def _ints(loop: dict) -> dict:
    out = {}
    for k, v in loop.items():
        if not isinstance(v, bool) and hasattr(v, "__index__") and getattr(v, "ndim", 0) == 0:
            out[k] = int(v)
    return out


def scored(value, loop: dict, line: int) -> None:
    EVENTS.append({"kind": "score", "values": _floats(value), "loop": _ints(loop), "line": line})


def updated(loop: dict, line: int, fed: int | None = None) -> None:
    if _DEPTH[0]:
        return
    EVENTS.append({"kind": "update", "loop": _ints(loop), "line": line, "fed": fed})


def _fed(args) -> int | None:
    """How many tokens an update call was handed: the longest array argument (lists of per-order
    key arrays are not token streams)."""
    lens = [int(a.shape[0]) for a in args if getattr(a, "ndim", 0) >= 1]
    return max(lens) if lens else None


def call_update(fn, loop: dict, line: int, *args, **kwargs):
    updated(loop, line, _fed(args))
    _DEPTH[0] += 1
    try:
        return fn(*args, **kwargs)
    finally:
        _DEPTH[0] -= 1


def passthrough(value, loop: dict, line: int):
    scored(value, loop, line)
    return value


def reset() -> None:
    EVENTS.clear()
    _DEPTH[0] = 0


def _dump() -> None:
    """Whole-script probes: the events go to $PGOLF_PROBE_OUT when the process ends (rank 0 only)."""
    if os.environ.get("RANK", "0") == "0":
        with open(os.environ["PGOLF_PROBE_OUT"], "w") as f:
            json.dump(EVENTS, f)


if os.environ.get("PGOLF_PROBE_OUT"):
    atexit.register(_dump)
