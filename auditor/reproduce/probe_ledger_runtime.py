"""Runtime half of the ledger probe (PROBE-LEDGER on a whole script): which validation positions a
state update was fed, and which positions each committed score covered, in the order they happen.

Lives in the record's process only (the instrumented copy imports ``probe_runtime``, which installs
this when ``$PGOLF_PROBE_LEDGER`` names a spec). A torch function mode follows the validation stream
by value, not by name: the 1-D integer tensor equal to the probe's stream is seeded with its
positions, and every structural op (slice, reshape, cast, copy into a buffer, cat) carries a shadow
tensor of positions along. Loss ops (cross_entropy, nll_loss, gather) turn the positions of their
*target* argument into the positions a loss covers; reductions and element-wise ops keep them. Then:

- a ``backward()`` of a loss that covers val positions, followed by an optimizer step, is an
  update fed those positions (``torch.optim`` step hook: every optimizer subclass, Muon included);
- a score site of the instrumented copy (``probe_runtime.scored``) reached with gradients off, whose value
  covers val positions, is a committed score of those positions; a float score takes the
  positions of the loss tensor last turned into a number (``.item()``, ``float()``).

The parent (``probe_ledger``) reads the event list: a position scored after an update was fed it was
scored by a model that had already trained on it. Nothing here may break the record's run: any error
inside the bookkeeping drops that one propagation.
"""
from __future__ import annotations

import atexit
import json
import os
import sys
import weakref

EVENTS: list[dict] = []
MAX_EVENTS = 200_000
_STATE = {"busy": False, "off": False, "last": None, "pending": [], "spec": None, "script": "", "fed_unapplied": 0}
_META: dict[int, "_Meta"] = {}

_SAME = frozenset({"to", "long", "int", "short", "type", "cuda", "cpu", "contiguous", "clone", "detach", "double", "float",
                   "half", "bfloat16", "pin_memory", "requires_grad_", "detach_", "__deepcopy__"})
_STRUCT = frozenset({"__getitem__", "narrow", "reshape", "view", "flatten", "unflatten", "squeeze", "unsqueeze", "t", "transpose",
                     "permute", "unfold", "expand", "expand_as", "repeat", "flip", "roll", "select", "movedim", "swapaxes",
                     "split", "chunk", "unbind", "tensor_split", "view_as", "reshape_as", "index_select", "take", "masked_select"})
_JOIN = frozenset({"cat", "stack", "concat", "concatenate", "hstack", "vstack"})
_TARGET = frozenset({"cross_entropy", "nll_loss"})
_GATHER = frozenset({"gather", "take_along_dim"})
_REDUCE = frozenset({"sum", "mean", "nansum", "nanmean", "logsumexp", "prod", "max", "min", "amax", "amin", "norm", "cumsum"})
_NUMBER = frozenset({"item", "__float__", "tolist", "__int__", "numpy"})
_INPLACE_COPY = frozenset({"__setitem__", "copy_", "index_copy_", "masked_scatter_"})


class _Meta:
    __slots__ = ("ref", "kind", "pos", "ranges", "exact")

    def __init__(self, t, kind: str, pos=None, ranges=(), exact: bool = True):
        self.ref = weakref.ref(t, _forget(id(t)))
        self.kind, self.pos, self.ranges, self.exact = kind, pos, tuple(ranges), exact


def _forget(key: int):
    def cb(ref):
        m = _META.get(key)
        if m is not None and m.ref is ref:
            del _META[key]
    return cb


def _meta(t):
    m = _META.get(id(t))
    return m if m is not None and m.ref() is t else None


def _set(t, kind, pos=None, ranges=(), exact=True) -> None:
    import torch

    if isinstance(t, torch.Tensor):
        if pos is not None and (tuple(pos.shape) != tuple(t.shape)):
            ranges, pos = _ranges(pos), None
        if pos is not None and not bool((pos >= 0).any()):
            pos = None
        if pos is None and not ranges:
            _META.pop(id(t), None)
            return
        _META[id(t)] = _Meta(t, kind, pos, ranges, exact)


def _ranges(pos) -> tuple:
    """Sorted, merged [lo, hi) runs of the non-negative positions of a shadow tensor."""
    import torch

    p = pos.reshape(-1)
    p = torch.unique(p[p >= 0])
    if p.numel() == 0:
        return ()
    vals = p.tolist()
    out, lo, prev = [], vals[0], vals[0]
    for v in vals[1:]:
        if v != prev + 1:
            out.append((lo, prev + 1))
            lo = v
        prev = v
    out.append((lo, prev + 1))
    return tuple(out)


def union_ranges(*rs) -> tuple:
    """Sorted, merged [lo, hi) runs covering every run of ``rs`` (also the ledger reader's)."""
    items = sorted(x for r in rs for x in r)
    out: list[list[int]] = []
    for lo, hi in items:
        if out and lo <= out[-1][1]:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((a, b) for a, b in out)


def _all_ranges(m: _Meta) -> tuple:
    return union_ranges(m.ranges, _ranges(m.pos)) if m.pos is not None else m.ranges


def _is_stream(t) -> bool:
    spec = _STATE["spec"]
    try:
        if t.ndim != 1 or t.shape[0] != spec["n_val"] or t.dtype.is_floating_point or t.dtype.is_complex:
            return False
        import torch

        if t.dtype == torch.bool:
            return False
        return t[: len(spec["head"])].tolist() == spec["head"] and int(t[-1]) == spec["last"]
    except Exception:
        return False


def _tensors(args, kwargs):
    import torch

    for a in list(args) + list(kwargs.values()):
        if isinstance(a, torch.Tensor):
            yield a
        elif isinstance(a, (list, tuple)):
            for b in a[:4096]:
                if isinstance(b, torch.Tensor):
                    yield b


def _where() -> int | None:
    """The line of the record's script that is running now (innermost frame in it)."""
    script = _STATE["script"]
    f = sys._getframe(1)
    while f is not None:
        if os.path.basename(f.f_code.co_filename) == script:
            return f.f_lineno
        f = f.f_back
    return None


def _event(ev: dict) -> None:
    if len(EVENTS) < MAX_EVENTS:
        EVENTS.append(ev)


def _shadow(t):
    """The positions shadow of ``t`` for a structural op: its own, or −1 everywhere (untracked)."""
    import torch

    m = _meta(t)
    if m is not None and m.pos is not None:
        return m.pos
    return torch.full(tuple(t.shape), -1, dtype=torch.int64)


def _propagate(func, name: str, args, kwargs, out, tracked: list) -> None:
    import torch

    first = args[0] if args else None
    m0 = _meta(first) if isinstance(first, torch.Tensor) else None
    if name in _NUMBER:
        if m0 is not None and m0.kind == "loss":
            _STATE["last"] = (_all_ranges(m0), m0.exact)
        return
    if name in ("backward",) or func is torch.autograd.backward or func is torch.autograd.grad:
        loss = first if isinstance(first, torch.Tensor) else (first[0] if isinstance(first, (list, tuple)) and first else None)
        ml = _meta(loss) if isinstance(loss, torch.Tensor) else None
        if ml is not None and ml.kind == "loss":
            r = _all_ranges(ml)
            if r:
                _STATE["pending"].append((r, _where()))
        return
    if name in _INPLACE_COPY and isinstance(first, torch.Tensor):
        src = args[2] if name == "__setitem__" and len(args) > 2 else args[1] if len(args) > 1 else None
        ms = _meta(src) if isinstance(src, torch.Tensor) else None
        kind = ms.kind if ms is not None else (m0.kind if m0 is not None else None)
        if kind is None:
            return
        sh = _shadow(first).clone()
        val = _shadow(src) if isinstance(src, torch.Tensor) else -1
        if name == "__setitem__":
            sh[args[1]] = val
        elif name == "copy_":
            sh.copy_(val if isinstance(val, int) else val.expand_as(sh))
        else:
            sh = None
        # a source followed only as ranges (a reduced loss written into a slot) adds its ranges to the buffer's
        rng = union_ranges(m0.ranges if m0 else (), ms.ranges if ms and (ms.pos is None or sh is None) else ())
        _set(first, kind, sh, rng)
        return
    outs = out if isinstance(out, (list, tuple)) else (out,)
    outs = [o for o in outs if isinstance(o, torch.Tensor)]
    if not outs:
        return
    if name in _SAME and m0 is not None:
        for o in outs:
            _set(o, m0.kind, m0.pos, m0.ranges, m0.exact)
        return
    if name in _JOIN and isinstance(first, (list, tuple)):
        metas = [_meta(t) for t in first if isinstance(t, torch.Tensor)]
        kinds = {m.kind for m in metas if m is not None}
        if len(kinds) != 1:
            return
        sh = func([_shadow(t) for t in first], *args[1:], **kwargs)
        _set(outs[0], kinds.pop(), sh, (), all(m.exact for m in metas if m))
        return
    if name in _TARGET:
        tgt = args[1] if len(args) > 1 else kwargs.get("target")
        mt = _meta(tgt) if isinstance(tgt, torch.Tensor) else None
        if mt is None or mt.kind != "tok":
            return
        red = kwargs.get("reduction", "mean")
        o = outs[0]
        if red == "none" and mt.pos is not None and mt.pos.numel() == o.numel():
            _set(o, "loss", mt.pos.reshape(o.shape))
        else:
            _set(o, "loss", None, _all_ranges(mt))
        return
    if name in _GATHER:
        idx = args[2] if name == "gather" and len(args) > 2 else args[1] if len(args) > 1 else kwargs.get("index", kwargs.get("indices"))
        mi = _meta(idx) if isinstance(idx, torch.Tensor) else None
        if mi is not None and mi.kind == "tok" and mi.pos is not None:
            pos = mi.pos if tuple(mi.pos.shape) == tuple(outs[0].shape) else None
            _set(outs[0], "loss", pos, () if pos is not None else _ranges(mi.pos))
        return
    if name == "__getitem__" and m0 is None:
        # table[ctx, tgt] / logp[rows, tgt] / lut[tgt]: an index per dimension, and the last token index is the
        # target; table[ctx] (a row per context, fewer indices than dimensions) is a context lookup, not a score
        idx = args[1] if len(args) > 1 else None
        parts = idx if isinstance(idx, tuple) else (idx,)
        if first is None or not first.is_floating_point() or len(parts) != first.ndim:
            return
        toks = [mi for mi in (_meta(p) if isinstance(p, torch.Tensor) else None for p in parts)
                if mi is not None and mi.kind == "tok" and mi.pos is not None]
        if toks:
            mi = toks[-1]
            pos = mi.pos if tuple(mi.pos.shape) == tuple(outs[0].shape) else None
            _set(outs[0], "loss", pos, () if pos is not None else _ranges(mi.pos))
        return
    if name in _STRUCT and m0 is not None:
        if m0.pos is None:
            for o in outs:
                _set(o, m0.kind, None, m0.ranges, m0.exact)
            return
        sh = func(m0.pos, *args[1:], **kwargs)
        shs = sh if isinstance(sh, (list, tuple)) else (sh,)
        for o, s in zip(outs, shs):
            _set(o, m0.kind, s, (), m0.exact)
        return
    # any other op: only loss positions travel (token positions stop at the model's input)
    losses = [m for m in (_meta(t) for t in tracked) if m is not None and m.kind == "loss"]
    if not losses:
        return
    o = outs[0]
    same = [m for m in losses if m.pos is not None and tuple(m.pos.shape) == tuple(o.shape)]
    if same and all(m.pos is same[0].pos or torch.equal(m.pos, same[0].pos) for m in same) and name not in _REDUCE:
        _set(o, "loss", same[0].pos, union_ranges(*[m.ranges for m in losses if m.pos is None]), all(m.exact for m in losses))
        return
    exact = all(m.exact for m in losses) and (name in _REDUCE or o.numel() == 1 or all(m.pos is None for m in losses))
    _set(o, "loss", None, union_ranges(*[_all_ranges(m) for m in losses]), exact)


def _mode():
    import torch
    from torch.overrides import TorchFunctionMode

    class Ledger(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if _STATE["busy"] or _STATE["off"]:
                return func(*args, **kwargs)
            _STATE["busy"] = True
            try:
                tracked = []
                for t in _tensors(args, kwargs):
                    m = _meta(t)
                    if m is None and _is_stream(t):
                        _set(t, "tok", torch.arange(t.shape[0], dtype=torch.int64))
                        _STATE["seeded"] = True
                        m = _meta(t)
                    if m is not None:
                        tracked.append(t)
            except Exception:
                tracked = []
            finally:
                _STATE["busy"] = False
            out = func(*args, **kwargs)
            if tracked:
                _STATE["busy"] = True
                try:
                    name = getattr(func, "__name__", "")
                    _propagate(func, name, args, kwargs, out, tracked)
                except Exception:
                    pass
                finally:
                    _STATE["busy"] = False
            return out

    return Ledger()


def _step_hook(opt, *_a, **_k) -> None:
    if _STATE["off"] or not _STATE["pending"]:
        return
    fed = union_ranges(*[r for r, _ in _STATE["pending"]])
    _event({"kind": "update", "what": f"optimizer step ({type(opt).__name__})", "ranges": [list(x) for x in fed],
            "line": _where(), "backward_line": _STATE["pending"][0][1]})
    _STATE["pending"].clear()


def note_score(value, line: int) -> None:
    """A score site of the instrumented copy committed ``value``: record the val positions it covers."""
    if _STATE["off"] or _STATE["spec"] is None:
        return
    _STATE["busy"] = True
    try:
        import torch

        last, _STATE["last"] = _STATE["last"], None
        if isinstance(value, torch.Tensor):
            m = _meta(value)
            if m is None or m.kind != "loss":
                return
            ranges, exact = _all_ranges(m), m.exact
        elif last is not None:
            ranges, exact = last
        else:
            return
        # a loss summed with gradients on is a training loss for the log, not a committed score; a loss computed
        # once with gradients (for the TTT step) and summed under no_grad is the score (score-first TTT does that)
        if torch.is_grad_enabled() or not ranges:
            return
        if _STATE["pending"]:  # gradients of val positions that no torch.optim step applied
            _STATE["fed_unapplied"] += 1
            _STATE["pending"].clear()
        _event({"kind": "score", "ranges": [list(x) for x in ranges], "line": line, "exact": exact})
    except Exception:
        pass
    finally:
        _STATE["busy"] = False


def mark(kind: str, name: str, line: int) -> None:
    """Calls of the scoring function the probe re-enters: the last one is the reported score."""
    if _STATE["spec"] is not None and not _STATE["off"]:
        _event({"kind": kind, "function": name, "line": line})


def pause() -> None:
    _STATE["off"] = True


def _dump() -> None:
    _STATE["off"] = True
    if os.environ.get("RANK", "0") != "0":
        return
    try:
        with open(_STATE["spec"]["out"], "w") as f:
            json.dump({"events": EVENTS, "fed_unapplied": _STATE["fed_unapplied"], "seeded": _STATE.get("seeded", False),
                       "truncated": len(EVENTS) >= MAX_EVENTS}, f)
    except (OSError, KeyError, TypeError):
        pass


def install(spec_path: str) -> None:
    try:
        with open(spec_path) as f:
            spec = json.load(f)
        import torch
        from torch.optim.optimizer import register_optimizer_step_post_hook
    except Exception:
        return
    _STATE["spec"] = spec
    _STATE["script"] = os.path.basename(spec.get("script", ""))
    register_optimizer_step_post_hook(_step_hook)
    atexit.register(_dump)  # registered first, so it runs after the re-entry's own atexit work
    _mode().__enter__()
    del torch
