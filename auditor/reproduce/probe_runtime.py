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
    if _LEDGER:
        _LEDGER[0].note_score(value, line)
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

_LEDGER: list = []  # the ledger runtime, when the probe asked for it ($PGOLF_PROBE_LEDGER)
if os.environ.get("PGOLF_PROBE_LEDGER"):
    from auditor.reproduce import probe_ledger_runtime

    probe_ledger_runtime.install(os.environ["PGOLF_PROBE_LEDGER"])
    _LEDGER.append(probe_ledger_runtime)


# --- Re-entering the scoring function (whole-script probes) -------------------------------------
# The instrumented copy decorates every function holding a score site with ``reentry``. When the
# parent asks for it ($PGOLF_PROBE_REENTER: a JSON spec), each call that was handed the validation
# stream (an integer vector equal to the probe's stream, in an argument or the function's globals)
# is snapshotted before it runs (deep copy of its arguments, the RNG states) and, once it returned,
# called again on fresh copies of that snapshot with mutated streams. The mutated calls' events go
# to $PGOLF_PROBE_REENTER's "out" file, never into EVENTS: the script's own run is unchanged.
REENTRY: list[dict] = []
_INSIDE = [0]
_SPEC: list = []


def _spec():
    if not _SPEC:
        path = os.environ.get("PGOLF_PROBE_REENTER")
        spec = None
        if path:
            try:
                with open(path) as f:
                    spec = json.load(f)
            except (OSError, ValueError):
                spec = None
        _SPEC.append(spec)
    return _SPEC[0]


def _is_stream(obj, spec) -> bool:
    n = spec["n_val"]
    try:
        import numpy as np
        import torch
    except ImportError:  # pragma: no cover - the probes run with both
        return False
    if isinstance(obj, torch.Tensor):
        if obj.ndim != 1 or obj.numel() != n or obj.dtype.is_floating_point or obj.dtype == torch.bool:
            return False
        head = obj[: len(spec["head"])].tolist()
        return head == spec["head"] and int(obj[-1]) == spec["last"]
    if isinstance(obj, np.ndarray):
        if obj.ndim != 1 or obj.size != n or obj.dtype.kind not in "iu":
            return False
        return obj[: len(spec["head"])].tolist() == spec["head"] and int(obj[-1]) == spec["last"]
    return False


def _find_streams(roots, spec, depth: int = 3) -> list:
    """Validation streams reachable from ``roots``: containers, plain objects' attributes (not
    torch modules: their buffers are the model's), ``depth`` levels down."""
    try:
        import torch
        module = torch.nn.Module
    except ImportError:  # pragma: no cover
        module = ()
    found, seen = [], set()
    stack = [(r, 0) for r in roots]
    while stack:
        obj, d = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if _is_stream(obj, spec):
            found.append(obj)
            continue
        if d >= depth or isinstance(obj, (str, bytes, int, float, module)) or callable(obj):
            continue
        if isinstance(obj, dict):
            stack.extend((v, d + 1) for v in list(obj.values())[:256])
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend((v, d + 1) for v in list(obj)[:256])
        elif hasattr(obj, "__dict__") and not isinstance(obj, type):
            stack.extend((v, d + 1) for v in list(vars(obj).values())[:256])
    return found


def _rng_state():
    import random

    import numpy as np
    import torch

    return torch.get_rng_state(), np.random.get_state(), random.getstate()


def _set_rng(state) -> None:
    import random

    import numpy as np
    import torch

    torch.set_rng_state(state[0])
    np.random.set_state(state[1])
    random.setstate(state[2])


def _mutate(streams, pos: int, token: int) -> list:
    old = []
    for s in streams:
        old.append(int(s[pos]))
        s[pos] = token
    return old


def _score_events(start: int) -> list[dict]:
    return [e for e in EVENTS[start:] if e["kind"] == "score"]


def reentry(name: str, line: int):
    def deco(fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            spec = _spec()
            if spec is None or _INSIDE[0]:
                return fn(*args, **kwargs)
            import copy

            rec: dict = {"function": name, "line": line, "calls": [], "why": None}
            in_args = _find_streams([args, kwargs], spec)
            glob = _find_streams(list(getattr(fn, "__globals__", {}).values()), spec, depth=1)
            cells = [c.cell_contents for c in (getattr(fn, "__closure__", None) or ()) if _cell_ok(c)]
            glob += _find_streams(cells, spec, depth=1)
            glob = [g for g in glob if all(g is not a for a in in_args)]
            if not in_args and not glob:
                rec["why"] = "the validation stream is neither an argument nor a global of this function"
                REENTRY.append(rec)
                _dump_reentry()
                return fn(*args, **kwargs)
            rec["where"] = "argument" if in_args else "global"
            try:
                snap = copy.deepcopy((args, kwargs))
            except Exception as exc:  # a lock, a process group, a non-leaf tensor: no replay possible
                rec["why"] = f"cannot snapshot its arguments: {type(exc).__name__}: {str(exc)[:200]}"
                REENTRY.append(rec)
                _dump_reentry()
                return fn(*args, **kwargs)
            rng = _rng_state()
            if _LEDGER:
                _LEDGER[0].mark("call", name, line)
            start = len(EVENTS)
            ret = fn(*args, **kwargs)
            rec["original"] = {"events": _score_events(start), "returned": _floats(ret)}
            # Deferred to the end of the run: the last call of each scoring function is kept; the one whose result
            # the final score line prints is re-entered (``_chosen``), else the last call of all.
            rec["superseded"] = _CALLS[0]
            _CALLS[0] += 1
            _PENDING.pop(name, None)
            _PENDING[name] = (fn, snap, rng, glob, rec)
            if not _REGISTERED:
                _REGISTERED.append(True)
                atexit.register(_reenter_last)
            return ret

        return wrapper

    return deco


_PENDING: dict = {}  # function name → (fn, snapshot, rng state, global streams, record) of its latest call, in call order
_REGISTERED: list = []
_CALLS = [0]
_TAIL: list[str] = []  # the run's stdout, for the final score line (``_chosen``)
_TAIL_MAX = 1 << 20


def _tee_stdout() -> None:
    import sys

    out = sys.stdout
    write = out.write

    def tee(text):
        if isinstance(text, str) and sum(map(len, _TAIL)) < _TAIL_MAX:
            _TAIL.append(text)
        return write(text)

    try:
        out.write = tee
    except (AttributeError, TypeError):  # a stream that refuses attributes: no choice by the final line
        pass


if os.environ.get("PGOLF_PROBE_REENTER"):
    _tee_stdout()


def _chosen(pending: list):
    """The pending call whose returned loss or bpb is the one the run's final score line prints (the audit's own
    reading of a log: the last scoring line after training, its _exact twin); else the last call."""
    try:
        from auditor.evidence.logs import final_line

        final = final_line("".join(_TAIL))
    except Exception:
        final = None
    if final is not None:
        nums = [x for x in (final.val_loss, final.val_bpb) if x is not None]
        for item in reversed(pending):
            got = item[4].get("original", {}).get("returned") or []
            if any(abs(g - x) <= 1e-6 * max(1.0, abs(x)) for g in got for x in nums):
                item[4]["chosen"] = f"its result is the final score line ({final.label})"
                return item
    pending[-1][4]["chosen"] = "the last scoring call (no final score line matched a returned value)"
    return pending[-1]


def _reenter_last() -> None:
    """At the end of the run: call the last scoring function again on fresh copies of its snapshot."""
    if not _PENDING:
        return
    import copy
    import time

    pending = list(_PENDING.values())
    _PENDING.clear()
    fn, snap, rng, glob, rec = _chosen(pending)
    for other in pending:  # the calls not re-entered: listed before the chosen one, which the parent reads last
        if other[4] is not rec:
            other[4]["why"] = "not the call whose result is reported"
            REENTRY.append(other[4])
    if _LEDGER:  # the replays are the probe's, not the record's run
        _LEDGER[0].pause()
    spec = _spec()
    keep = len(EVENTS)
    _INSIDE[0] += 1
    try:
        for m in _plan_calls(spec, rec):
            if time.time() > spec["deadline"]:
                rec["why_partial"] = "stopped at the probe's time budget"
                break
            t0 = time.monotonic()
            call = {"tag": m["tag"], "pos": m.get("pos"), "token": m.get("token"), "error": None}
            olds = []
            try:
                a, k = copy.deepcopy(snap)
                if "pos" in m:
                    _mutate(_find_streams([a, k], spec), m["pos"], m["token"])
                    olds = _mutate(glob, m["pos"], m["token"])
                _set_rng(rng)
                call["returned"] = _floats(fn(*a, **k))
            except Exception as exc:
                call["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
            call["events"] = _score_events(keep)
            call["seconds"] = round(time.monotonic() - t0, 3)
            del EVENTS[keep:]
            for g, o in zip(glob, olds):
                g[m["pos"]] = o
            rec["calls"].append(call)
    finally:
        _INSIDE[0] -= 1
        del EVENTS[keep:]
        REENTRY.append(rec)
        _dump_reentry()


def _last_target(ref: list[dict], flipped: list[dict]):
    """(event, value) of the last target's per-token score: the last changed value that ends its event."""
    if len(ref) != len(flipped):
        return None
    hits = [(j, len(x["values"]) - 1) for j, (x, y) in enumerate(zip(ref, flipped))
            if len(x["values"]) > 1 and len(x["values"]) == len(y["values"]) and x["values"][-1] != y["values"][-1]]
    return max(hits) if hits else None


def _plan_calls(spec, rec):
    """replay, the flips, then the sweep at the last position while it can still reach a sum above 1,
    then a second replay (determinism)."""
    import math

    yield {"tag": "replay"}
    yield from spec["mutations"]
    sweep = spec.get("sweep")
    calls = {c["tag"]: c for c in rec["calls"]}
    ref, last = calls.get("replay"), calls.get("flip@last")
    at = _last_target(ref["events"], last["events"]) if ref and last and not ref["error"] and not last["error"] else None
    if sweep and at is not None:
        j, i = at
        total = math.exp(-ref["events"][j]["values"][i]) + math.exp(-last["events"][j]["values"][i])
        recent: list[float] = []
        todo = list(sweep["tokens"])
        while todo and total <= 1.0 + sweep["eps"]:
            v = todo.pop(0)
            yield {"tag": f"sweep@{v}", "pos": sweep["pos"], "token": v}
            c = rec["calls"][-1]
            ev = c["events"]
            if c["error"] or len(ev) != len(ref["events"]) or len(ev[j]["values"]) != len(ref["events"][j]["values"]):
                break
            p = math.exp(-ev[j]["values"][i])
            total += p
            recent = (recent + [p])[-3:]
            if len(recent) == 3 and total + max(recent) * len(todo) <= 1.0:
                break  # the remaining candidates, at the recent rate, cannot lift the sum above 1
    yield {"tag": "replay2"}


def _cell_ok(cell) -> bool:
    try:
        cell.cell_contents
        return True
    except ValueError:
        return False


def _dump_reentry() -> None:
    spec = _spec()
    if spec and os.environ.get("RANK", "0") == "0":
        with open(spec["out"], "w") as f:
            json.dump(REENTRY, f)
