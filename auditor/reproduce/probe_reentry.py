"""Reading the re-entered scoring function (``probe_runtime.reentry``): suffix flips at several
positions and a partial vocabulary sweep at the last position, all against a replay of the same
snapshot (same model, same RNG), so training noise never enters the comparison.

Flip at position k: a legal eval changes no score of a target before k. Where a pass commits one
per-token score per target in stream order (checked: the flip of the LAST token changed only the
pass's last value), any change at an index below k-1 reads the future. Where a pass commits per-batch
sums (at least 3, in stream order by the same check), a change in a batch that ends well before k
does. At the last position the rule of the whole-script flip applies (only the last value of a
per-token batch, one sum per pass).

Sweep at the last position: the last target's score under each candidate token v is -log p(v) when
the scores are natural-log losses; a subset of tokens whose exp(-score) already sum above 1 proves
the distribution is not normalized (a sum below 1 over a subset proves nothing).
"""
from __future__ import annotations

import math

import numpy as np

from auditor.model import Severity
from auditor.reproduce.probe_outcome import ProbeOutcome
from auditor.reproduce.probe_passes import pass_of
from auditor.reproduce.probe_outcome import probe_finding as _f

SWEEP_MAX = 40  # at most this many sweep calls; the child stops earlier once the sum is above 1 or cannot get there
SWEEP_EPS = 1e-3
NATS_MEDIAN_MIN = 1.0  # per-token losses of a two-step toy model are several nats; far less means scaled values


def flip_token(val: np.ndarray, k: int, vocab: int) -> int:
    """The new token at ``k``: the most frequent other continuation of the token before it, so a table
    filled with future tokens changes for earlier positions that share the context; else a distant id."""
    prev = val[k - 1]
    follow = val[1:][val[:-1] == prev]
    follow = follow[follow != val[k]]
    if follow.size:
        vals, counts = np.unique(follow, return_counts=True)
        return int(vals[np.argmax(counts)])
    return (int(val[k]) + max(1, vocab // 2)) % vocab


def sweep_spec(val: np.ndarray, vocab: int) -> dict:
    """Candidates at the last position, most frequent continuations of the last context first (those a
    cache knows), then ids spread over the vocabulary; the child stops once the sum is above 1."""
    taken = {int(val[-1]), flip_token(val, int(val.size) - 1, vocab)}
    follow = val[1:][val[:-1] == val[-2]]
    vals, counts = np.unique(follow, return_counts=True) if follow.size else (np.array([], dtype=int), np.array([]))
    cands = [int(v) for v in vals[np.argsort(-counts, kind="stable")] if int(v) not in taken]
    # then the stream's most frequent tokens (a backoff to a short context knows them), then spread ids
    uni, ucounts = np.unique(val[:-1], return_counts=True)
    cands += [int(v) for v in uni[np.argsort(-ucounts, kind="stable")][:SWEEP_MAX] if int(v) not in taken and int(v) not in cands]
    cands += [v for v in range(0, vocab, max(1, vocab // 64)) if v not in taken and v not in cands]
    return {"pos": int(val.size) - 1, "tokens": cands[:SWEEP_MAX], "eps": SWEEP_EPS}


def mutations(val: np.ndarray, vocab: int) -> list[dict]:
    n = int(val.size)
    out = []
    for label, k in (("last", n - 1), ("middle", n // 2), ("early", max(1, n // 8))):
        t = flip_token(val, k, vocab)
        out.append({"tag": f"flip@{label}", "pos": k, "token": t})
    return out


def _passes(events: list[dict]) -> list[tuple[int, int]]:
    return pass_of(events)


def _changes(a: list[dict], b: list[dict]) -> list[tuple[int, int, float, float]]:
    return [(j, i, u, v) for j, (x, y) in enumerate(zip(a, b)) for i, (u, v) in enumerate(zip(x["values"], y["values"])) if u != v]


def _same_shape(a: list[dict], b: list[dict]) -> bool:
    return len(a) == len(b) and all(len(x["values"]) == len(y["values"]) for x, y in zip(a, b))


def _by_pass(ref: list[dict], changes) -> dict[tuple[int, int], list]:
    passes, out = _passes(ref), {}
    for c in changes:
        out.setdefault(passes[c[0]], []).append(c)
    return out


def _pass_layout(ref: list[dict]) -> dict[tuple[int, int], list[int]]:
    """Event indices of each pass, in order."""
    out: dict = {}
    for j, p in enumerate(_passes(ref)):
        out.setdefault(p, []).append(j)
    return out


def _last_is_legal(ref, changes) -> tuple[int, list]:
    """The whole-script rule at the last position: (legal changes, bad changes)."""
    legit, bad = 0, []
    for ch in _by_pass(ref, changes).values():
        per_token = [c for c in ch if len(ref[c[0]]["values"]) > 1]
        sums = [c for c in ch if len(ref[c[0]]["values"]) == 1]
        ok_tok = [c for c in per_token if c[1] == len(ref[c[0]]["values"]) - 1]
        if len(ok_tok) == len(per_token) and len(sums) <= (0 if per_token else 1):
            legit += len(ch)
        else:
            bad += ch
    return legit, bad


def _in_order(ref, last_changes, pass_key, layout) -> bool:
    """The last flip changed this pass's final value only: the pass scores the stream in order."""
    idx = layout[pass_key]
    mine = [c for c in last_changes if c[0] in set(idx)]
    return bool(mine) and all(c[0] == idx[-1] and c[1] == len(ref[idx[-1]]["values"]) - 1 for c in mine)


def _early_reads(ref, changes, last_changes, k: int, n_val: int) -> tuple[list, int]:
    """Changes to scores of targets before ``k``, where the pass layout lets us place them; and how
    many passes could be placed."""
    layout, bad, placed = _pass_layout(ref), [], 0
    for key, ch in _by_pass(ref, changes).items():
        if not _in_order(ref, last_changes, key, layout):
            continue
        placed += 1
        idx = layout[key]
        sizes = [len(ref[j]["values"]) for j in idx]
        if all(s > 1 for s in sizes) and sum(sizes) == n_val - 1:  # one score per target, in order
            offset = {j: sum(sizes[:p]) for p, j in enumerate(idx)}
            bad += [c for c in ch if offset[c[0]] + c[1] < k - 1]
        elif all(s == 1 for s in sizes) and len(sizes) >= 3:  # per-batch sums in order
            limit = len(sizes) * k // (n_val - 1) - 2
            pos = {j: p for p, j in enumerate(idx)}
            bad += [c for c in ch if pos[c[0]] < limit]
        else:
            placed -= 1
    return bad, placed


def _sweep(res: ProbeOutcome, name: str, ref, calls, last_changes, n_val: int, vocab: int, base_token: int,
           returned: list[float]) -> None:
    per_token = [c for c in last_changes if len(ref[c[0]]["values"]) > 1 and c[1] == len(ref[c[0]]["values"]) - 1]
    if not per_token:
        res.findings.append(_f("PROBE-NOT-RUN", Severity.INFO, name, None,
                               "vocabulary sweep not read: the scoring function commits no per-token score for the last target "
                               "(only batch sums), so its probability cannot be recovered", [], ""))
        return
    j, i = max(per_token)[:2]
    line = ref[j]["line"]
    # The values must be natural-log losses of single targets: their mean over the pass is the loss
    # the function returns, or (when it returns something else) they are several nats, as a toy model's are.
    passes = _passes(ref)
    pass_vals = [v for jj, e in enumerate(ref) if passes[jj] == passes[j] and len(e["values"]) > 1 for v in e["values"]]
    mean = float(np.mean(pass_vals)) if pass_vals else 0.0
    med = float(np.median(pass_vals)) if pass_vals else 0.0
    matches = [r for r in returned if r > 0 and abs(mean - r) <= 0.25 * r + 0.02]
    if not matches and med < NATS_MEDIAN_MIN:
        res.findings.append(_f("PROBE-NOT-RUN", Severity.INFO, name, line,
                               f"vocabulary sweep not read: the per-token values at {name}:{line} (mean {mean:.3f}, median {med:.3f}) "
                               f"match no loss the function returns ({', '.join(f'{r:.4f}' for r in returned[:4]) or 'none'}) and are "
                               "too small to be taken for natural-log losses", [], ""))
        return
    res.numbers["sweep_units"] = (f"mean per-token value {mean:.4f} ≈ returned loss {matches[0]:.4f}" if matches
                                  else f"median per-token value {med:.3f} nats")
    scores = {base_token: ref[j]["values"][i]}
    for tag, c in calls.items():
        if (tag.startswith("sweep@") or tag == "flip@last") and not c["error"] and _same_shape(ref, c["events"]):
            scores[int(c["token"])] = c["events"][j]["values"][i]
    probs = {t: math.exp(-s) for t, s in scores.items()}
    total = sum(probs.values())
    res.numbers["sweep"] = {"position": n_val - 1, "site": f"{name}:{line}", "tokens": len(probs),
                            "nll": {str(t): round(s, 6) for t, s in scores.items()}, "sum_p": round(total, 6)}
    ev = [f"token {t}: score {scores[t]:.6f} nats → p = {p:.6f}" for t, p in sorted(probs.items(), key=lambda x: -x[1])]
    if total > 1 + SWEEP_EPS:
        res.findings.append(_f("PROBE-NORMALIZATION", Severity.ERROR, name, line,
                               f"at the last position ({n_val - 1}) of the re-entered scoring function, {len(probs)} of {vocab} tokens "
                               f"already carry Σ p = {total:.6f} > 1 (p = exp(-score) of {name}:{line}): the scored distribution is not normalized",
                               ev, "score with a distribution normalized over the whole vocabulary (mix full distributions, not the "
                               "target's count alone)"))
    else:
        res.findings.append(_f("PROBE-NORMALIZATION", Severity.INFO, name, None,
                               f"pass (partial sweep): {len(probs)} of {vocab} tokens at the last position sum to {total:.6f} ≤ 1; "
                               "a partial sweep can prove a broken distribution, not a normalized one", ev[:3], ""))


def read_reentry(res: ProbeOutcome, name: str, records: list[dict], val: np.ndarray, vocab: int) -> str | None:
    """Findings from the re-entered final scoring call; returns why re-entry cannot be read (None when read)."""
    n_val = int(val.size)
    usable = [r for r in records if r.get("calls")]
    if not usable:
        whys = sorted({f"{r['function']}(): {r['why']}" for r in records if r.get("why")})
        if not records:
            return "no function holding a score site (other than main) was called"
        return "; ".join(whys[:3])
    rec = usable[-1]  # the last scoring call the script made: the one whose result it reports
    where = f"{rec['function']}() ({name}:{rec['line']})"
    calls = {c["tag"]: c for c in rec["calls"]}
    replay = calls.get("replay")
    if replay is None or replay["error"]:
        return f"replaying {where} from its snapshot failed: {replay['error'] if replay else 'no time left'}"
    ref = replay["events"]
    if not ref:
        return f"replaying {where} committed no score"
    replay2 = calls.get("replay2")
    if replay2 is not None and replay2["events"] != ref:
        first = next(iter(_changes(ref, replay2["events"])), None)
        num = f" ({first[2]:.6f} vs {first[3]:.6f} nats)" if first else ""
        return f"two replays of {where} from one snapshot scored differently{num}: state outside its arguments changes between calls"
    res.numbers["reentry"] = {"function": rec["function"], "line": rec["line"], "stream": rec.get("where"),
                              "calls": len(rec["calls"]), "seconds": round(sum(c.get("seconds", 0) for c in rec["calls"]), 1),
                              "replay_matches_original": rec["original"]["events"] == ref, "determinism_checked": replay2 is not None,
                              "earlier_scoring_calls": rec.get("superseded", 0), "chosen": rec.get("chosen")}
    last = calls.get("flip@last")
    if last is None or last["error"]:
        return f"the last-position flip of {where} did not complete: {last['error'] if last else 'no time left'}"
    if not _same_shape(ref, last["events"]):
        res.findings.append(_f("PROBE-SUFFIX-FLIP", Severity.WARNING, name, ref[0]["line"],
                               f"re-entering {where}: flipping the last val token changed how many scores were committed "
                               f"({len(ref)} vs {len(last['events'])} batches)", [], "the number of scored tokens must not depend on token values"))
        return None
    last_changes = _changes(ref, last["events"])
    legit, bad = _last_is_legal(ref, last_changes)
    flagged, summary = [], []
    if bad:
        flagged.append((n_val - 1, "last", bad, ref, last))
    summary.append(f"last ({n_val - 1}): {len(last_changes)} changed")
    res.numbers["changed_last_target"] = legit
    for label in ("middle", "early"):
        c = calls.get(f"flip@{label}")
        if c is None or c["error"] or not _same_shape(ref, c["events"]):
            summary.append(f"{label}: not read ({c['error'] if c and c['error'] else 'no time left' if c is None else 'batch layout changed'})")
            continue
        ch = _changes(ref, c["events"])
        early, placed = _early_reads(ref, ch, last_changes, int(c["pos"]), n_val)
        summary.append(f"{label} ({c['pos']}): {len(ch)} changed, " + (f"{len(early)} before it" if placed or early else
                                                                        "their targets not placeable (pass order unknown)"))
        if early:
            flagged.append((int(c["pos"]), label, early, ref, c))
    res.numbers["flips"] = summary
    if flagged:
        k, label, bad_ch, _, c = flagged[0]
        j, i, u, v = bad_ch[0]
        res.findings.append(_f("PROBE-SUFFIX-FLIP", Severity.ERROR, name, ref[j]["line"],
                               f"re-entering {where} on mutated val streams: flipping the token at position {k} ({label}; "
                               f"{int(val[k])} → {c['token']}) changed {len(bad_ch)} score(s) of earlier targets (first: batch {j + 1}, "
                               f"value {i + 1} of {len(ref[j]['values'])}: {u:.6f} → {v:.6f} nats); positions probed: {', '.join(summary)}",
                               [f"flip at {kk} ({ll}): batch {b[0] + 1} value {b[1] + 1}: {b[2]:.6f} → {b[3]:.6f}" for kk, ll, bs, _, _ in flagged
                                for b in bs[:3]],
                               "score each token from its prefix only, in one pass"))
    else:
        res.findings.append(_f("PROBE-SUFFIX-FLIP", Severity.INFO, name, None,
                               f"pass: re-entering {where}, flips at {len(summary)} positions changed no score of an earlier target "
                               f"({'; '.join(summary)})", [], ""))
    _sweep(res, name, ref, calls, last_changes, n_val, vocab, int(val[-1]), replay.get("returned") or [])
    return None
