"""Eval passes in a probe's score events: which pass of its accumulation line each event belongs to.
Shared by the whole-script flip and the re-entered probes."""
from __future__ import annotations


def pass_of(events: list[dict]) -> list[tuple[int, int]]:
    """(accumulation line, pass number) of each score event (a pass ends as in ``pass_ends``)."""
    ends, seen, out = pass_ends(events), {}, []
    for j, e in enumerate(events):
        out.append((e["line"], seen.get(e["line"], 0)))
        if j in ends:
            seen[e["line"]] = seen.get(e["line"], 0) + 1
    return out


def pass_ends(events: list[dict]) -> set[int]:
    """Indices of the last score event of each eval pass: per accumulation line, a pass ends where
    the next event of that line restarts its loop (a loop variable that does not increase) or at the
    line's last event."""
    by_line: dict[int, list[int]] = {}
    for j, e in enumerate(events):
        by_line.setdefault(e["line"], []).append(j)
    ends = set()
    for idx in by_line.values():
        for j, nxt in zip(idx, idx[1:]):
            # loop variables come innermost first: compare outermost first (nested chunk/batch loops stay one pass)
            u, v = list(events[j].get("loop", {}).values())[::-1], list(events[nxt].get("loop", {}).values())[::-1]
            if u and v and v <= u:
                ends.add(j)
        ends.add(idx[-1])
    return ends
