"""Reading the ledger of a whole-script probe run (``probe_ledger_runtime``): PROBE-LEDGER.

The events are the record's own run, in order: ``update`` (an optimizer step, with the validation
positions its backward covered), ``score`` (a committed score, with the positions it covered) and
``call`` (a call of a scoring function handed the stream). A score counts when it belongs to the
reported evaluation: the last such call, or the whole run when no scoring function could be told.

A position scored after an update was fed that position was scored by a model that had already
trained on it: test-time training before scoring (rules.md: score first, then adapt). Updates fed
only positions already scored (score-first TTT) pass, as do runs without any update on val.
"""
from __future__ import annotations

import re

from auditor.model import Severity
from auditor.reproduce.probe_ledger_runtime import union_ranges
from auditor.reproduce.probe_outcome import ProbeOutcome
from auditor.reproduce.probe_outcome import probe_finding as _f

_TAP_LINE = re.compile(r"__pgolf_probe__\.\w+\(.*,\s*(\d+)\s*(?:,[^,()]*)?\)\s*$")
FIX = "score each chunk of the validation stream before any optimizer step that uses it (score first, then adapt)"


def _norm(ranges) -> list[tuple[int, int]]:
    out = []
    for r in ranges:
        lo, hi = int(r[0]), int(r[1])
        if hi > lo:
            out.append((lo, hi))
    return sorted(out)


def _intersect(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo < hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _size(r: list[tuple[int, int]]) -> int:
    return sum(hi - lo for lo, hi in r)


def _span(r: list[tuple[int, int]]) -> str:
    if not r:
        return "none"
    head = ", ".join(f"{lo}–{hi - 1}" if hi - lo > 1 else f"{lo}" for lo, hi in r[:3])
    return head + (f" (+{len(r) - 3} more runs)" if len(r) > 3 else "")


def line_map(original: str, instrumented: str) -> dict[int, int]:
    """Line numbers of the instrumented copy → the record's own (the copy gains an import, decorators and
    score taps; the lines it keeps are unchanged)."""
    import difflib

    a, b = original.splitlines(), instrumented.splitlines()
    out: dict[int, int] = {}
    for blk in difflib.SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks():
        for k in range(blk.size):
            out[blk.b + k + 1] = blk.a + k + 1
    for n, text in enumerate(b, 1):  # a rewritten site (``opt.step()`` → ``call_update(opt.step, {…}, 99)``) names its own line
        m = _TAP_LINE.search(text)
        if n not in out and m:
            out[n] = int(m.group(1))
    return out


def read_ledger(res: ProbeOutcome, target: str, data: dict, n_val: int, lines: dict[int, int] | None = None,
                scope: str | None = None) -> None:
    """Append PROBE-LEDGER's finding for one run's ledger ``data`` (written by the record's process:
    malformed input raises KeyError/TypeError/ValueError, which the caller turns into a reason). ``lines``
    maps the instrumented copy's line numbers (where updates were seen) to the record's."""
    events = data["events"]
    if not isinstance(events, list):
        raise TypeError("events is not a list")
    if lines:
        events = [{**e, "line": lines.get(e["line"], e["line"])} if e["kind"] == "update" and isinstance(e.get("line"), int) else e
                  for e in events]
    # the reported eval: from the last call of the function the re-entry chose (its result is the final score
    # line), else from the last scoring call
    calls = [i for i, e in enumerate(events) if e["kind"] == "call"]
    mine = [i for i in calls if scope is not None and events[i].get("function") == scope]
    start = (mine or calls or [0])[-1]
    fed: tuple = ()
    updates: list[tuple[int, dict, list[tuple[int, int]]]] = []
    scored: tuple = ()
    bad: list[tuple[int, dict, list[tuple[int, int]], bool]] = []  # (event index, score event, overlap, exact)
    n_scores = 0
    for i, e in enumerate(events):
        if e["kind"] == "update":
            r = _norm(e["ranges"])
            updates.append((i, e, r))
            fed = union_ranges(fed, r)
        elif e["kind"] == "score" and i >= start:
            r = _norm(e["ranges"])
            n_scores += 1
            ov = _intersect(r, fed)
            if ov:
                bad.append((i, e, ov, bool(e.get("exact", True))))
            scored = union_ranges(scored, r)
    res.numbers["ledger"] = {"updates_fed_val": len(updates), "score_events": n_scores, "positions_scored": _size(scored),
                             "positions_fed": _size(fed), "events": len(events), "gradients_not_applied_by_torch_optim": data.get("fed_unapplied", 0),
                             "scope": f"the last call of {events[start]['function']}() on" if calls else "the whole run"}
    not_followed = " (state kept outside torch.optim, such as n-gram count tables, is not followed by the ledger)"
    if not data.get("seeded"):
        res.findings.append(_f("PROBE-LEDGER", Severity.INFO, target, None,
                               "ledger not run: the validation stream never reached torch as one tensor (sliced in numpy or read in pieces), "
                               "so its positions could not be followed", [], ""))
        return
    if not updates:
        res.findings.append(_f("PROBE-LEDGER", Severity.INFO, target, None,
                               f"pass: no optimizer step was fed validation tokens ({n_scores} committed scores traced to val positions)"
                               + not_followed, [], ""))
        return
    if not n_scores:
        res.findings.append(_f("PROBE-LEDGER", Severity.INFO, target, updates[0][1].get("line"),
                               f"ledger not run: {len(updates)} optimizer step(s) were fed validation positions, but no committed score of the "
                               "reported eval could be traced to positions (scores kept as plain numbers before any loss tensor)", [], ""))
        return
    if not bad:
        res.findings.append(_f("PROBE-LEDGER", Severity.INFO, target, None,
                               f"pass: all {len(updates)} optimizer step(s) fed validation positions were fed only positions already scored "
                               f"({_size(fed)} positions fed, {_size(scored)} scored by the reported eval)" + not_followed, [], ""))
        return
    overlap: tuple = ()
    for _, _, ov, _ in bad:
        overlap = union_ranges(overlap, ov)
    i, ev, ov, _ = bad[0]
    u_i, u_ev, u_r = next(u for u in updates if u[0] < i and _intersect(u[2], ov))
    n_upd = sum(1 for u in updates if _intersect(u[2], overlap))
    exact = any(x[3] for x in bad)
    sev = Severity.ERROR if exact and _size(overlap) > 1 else Severity.WARNING
    msg = (f"{_size(overlap)} validation position(s) of the reported eval were scored after an optimizer step had been fed them: "
           f"first, positions {_span(ov)} were fed to update #{updates.index((u_i, u_ev, u_r)) + 1} ({u_ev.get('what', 'optimizer step')}"
           f"{', line ' + str(u_ev['line']) if u_ev.get('line') else ''}) and scored later at {target}:{ev.get('line')} "
           f"(event #{i + 1} of {len(events)}): the model that scored them had already trained on them")
    if sev is Severity.WARNING:
        msg += (" (a single boundary position, or scores whose positions were only approximately followed: read the eval loop)"
                if _size(overlap) <= 1 or not exact else "")
    evidence = [f"update #{k + 1}: {u[1].get('what', 'update')} at line {u[1].get('line')}, fed positions {_span(u[2])}"
                for k, u in enumerate(updates[:3])]
    evidence += [f"score at line {e.get('line')} (event #{j + 1}): positions {_span(o)} already fed" for j, e, o, _ in bad[:2]]
    evidence.append(f"{n_upd} update(s) fed positions scored later; {_size(scored)} positions scored by the reported eval")
    res.findings.append(_f("PROBE-LEDGER", sev, target, u_ev.get("line") or ev.get("line"), msg, evidence, FIX))
