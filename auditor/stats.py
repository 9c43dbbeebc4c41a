"""STATS facts: the per-seed spread of a record and Welch tests against a previous record.

Two tests are always reported (records.md §5.2, rules.md STATS-SIGNIFICANCE):

* the README rule: one-sided Welch on per-seed final val_loss in nats, margin δ = 0.005, α = 0.01;
* the leaderboard practice (#1900/#1902/#2146): one-sided Welch on per-seed final val_bpb, δ = 0,
  accepted at p < 0.25.

Which one decides is the dated rulebook's choice (``--rulebook 2026-03-18|2026-04-28``). The previous
record is read with the same readers as the audited one (discover → read_evidence → measure), never
parsed a second way.
"""
from __future__ import annotations

from functools import lru_cache

import math
import re
from dataclasses import dataclass
from pathlib import Path

from auditor.model import Stats

README_DELTA_NATS = 0.005
README_ALPHA = 0.01
PRACTICE_ALPHA = 0.25
RULEBOOKS = ("2026-03-18", "2026-04-28")


@dataclass
class Welch:
    delta: float  # mean(old) − mean(new): positive means the new record is better (lower)
    t: float
    df: float
    p: float  # one-sided P(T_df > t) for H1: old − new > margin


def welch_one_sided(old: list[float], new: list[float], margin: float = 0.0) -> Welch | None:
    """One-sided Welch t-test that ``new`` is lower than ``old`` by more than ``margin``.

    t = (ā − b̄ − δ) / √(s_a²/n_a + s_b²/n_b), Welch–Satterthwaite df, p = P(T_df > t).
    None when either side has fewer than two values or both spreads are zero.
    """
    from scipy import stats as st

    na, nb = len(old), len(new)
    if na < 2 or nb < 2:
        return None
    ma, mb = sum(old) / na, sum(new) / nb
    va = sum((x - ma) ** 2 for x in old) / (na - 1)
    vb = sum((x - mb) ** 2 for x in new) / (nb - 1)
    qa, qb = va / na, vb / nb
    se2 = qa + qb
    if se2 <= 0.0:
        return None
    se = math.sqrt(se2)
    delta = ma - mb
    t = (delta - margin) / se
    df = se2 * se2 / (qa * qa / (na - 1) + qb * qb / (nb - 1))  # Welch–Satterthwaite; se2 > 0 so the sum is too
    p = float(st.t.sf(t, df))
    return Welch(delta=delta, t=t, df=df, p=p)


def sample_std(xs: list[float]) -> float | None:
    if len(xs) < 2:
        return None
    m = sum(xs) / len(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def finals(measured) -> tuple[list[float], list[float]]:
    """(bpb per seed, val_loss per seed) of the seeds that have both numbers where possible."""
    bpb = [s.val_bpb for s in measured.seeds if s.val_bpb is not None]
    loss = [s.val_loss for s in measured.seeds if s.val_loss is not None]
    return bpb, loss


def load_previous(path: str, base: Path | None = None):
    """Measure a previous record folder with the pipeline's own readers. (display, Measured) or (None, why).

    A relative path that does not exist from the working directory is tried from the audited folder
    (``--against ../2026-04-09_Previous``)."""
    from auditor.discover import discover
    from auditor.evidence import read_evidence
    from auditor.measure import measure

    p = Path(path)
    if not p.exists() and base is not None and not p.is_absolute() and (base / p).exists():
        p = base / p
    if not p.exists():
        return None, f"{path}: no such folder"
    disc = discover([p])
    if len(disc.folders) == 1:
        folder = disc.folders[0]
        return folder.display, measure(read_evidence(folder))
    if not disc.folders:
        return None, f"{path}: no record folder found"
    # a records tree: the previous record is the leaderboard frontier before this folder's date
    chosen = previous_in_tree(str(p.resolve()), base)
    if chosen is None:
        return None, f"{path}: no record in this tree is dated on or before {base.name if base else 'this folder'} with a claimed score"
    folder = next(f for f in disc.folders if str(f.path.resolve()) == chosen)
    return folder.display, measure(read_evidence(folder))


_DATE = re.compile(r"^(\d{4})[-_](\d{2})[-_](\d{2})")


@lru_cache(maxsize=8)
def _tree_claims(tree: str) -> tuple[tuple[str, str, str | None, float], ...]:
    """(folder, date, track, claimed val_bpb) of every dated record folder in a tree with a numeric claim.
    Read once per tree: a batch audit asks for the same tree once per folder."""
    from auditor.discover import discover
    from auditor.evidence import submission_file
    from auditor.evidence.submission import read_claims

    out = []
    for f in discover([tree]).folders:
        m = _DATE.match(f.path.name)
        sub = submission_file(f.files)
        if not m or not sub:
            continue
        claims = read_claims(f.path / sub, f.root, sub)
        if claims.val_bpb is not None:
            out.append((str(f.path.resolve()), "-".join(m.groups()), f.track, claims.val_bpb))
    return tuple(out)


def previous_in_tree(tree: str, current: Path | None) -> str | None:
    """The record a new one is compared with on the leaderboard: among the other folders of the same
    track dated on or before it (a folder name carries a day, not an hour, so same-day records count as
    earlier), the one with the lowest claimed val_bpb (the frontier when it was opened)."""
    from auditor.discover import track_of

    m = _DATE.match(current.name) if current else None
    date = "-".join(m.groups()) if m else None
    track = track_of(current) if current else None
    here = str(current.resolve()) if current else None
    cands = [c for c in _tree_claims(tree)
             if c[0] != here and (date is None or c[1] <= date) and (track is None or c[2] in (None, track))]
    return min(cands, key=lambda c: c[3])[0] if cands else None


def compute(ctx) -> Stats | None:
    m = ctx.measured
    bpb, loss = finals(m)
    stats = Stats(n_seeds=len(m.seeds), mean_bpb=(sum(bpb) / len(bpb)) if bpb else None, std_bpb=sample_std(bpb))
    rulebook = ctx.options.rulebook if ctx.options.rulebook in RULEBOOKS else RULEBOOKS[-1]
    stats.extra["rulebook"] = rulebook
    stats.extra["std_val_loss"] = sample_std(loss)
    stats.extra["mean_val_loss"] = (sum(loss) / len(loss)) if loss else None
    against = list(ctx.options.against or [])
    if not against:
        return stats
    where, prev = load_previous(against[0], ctx.evidence.path)
    if where is None:
        stats.extra["against_problem"] = prev
        return stats
    stats.against = where
    pb, pl = finals(prev)
    stats.extra["against_seeds"] = [s.seed for s in prev.seeds]
    stats.extra["against_mean_bpb"] = (sum(pb) / len(pb)) if pb else None
    if pb and bpb:
        stats.extra["delta_bpb"] = sum(pb) / len(pb) - sum(bpb) / len(bpb)
    if pl and loss:
        stats.delta_nats = sum(pl) / len(pl) - sum(loss) / len(loss)
    practice = welch_one_sided(pb, bpb)
    readme = welch_one_sided(pl, loss, README_DELTA_NATS)
    if practice:
        stats.p_practice = practice.p
        stats.extra["practice"] = {"metric": "val_bpb", "margin": 0.0, "t": practice.t, "df": practice.df, "alpha": PRACTICE_ALPHA}
    if readme:
        stats.p_readme = readme.p
        stats.extra["readme"] = {"metric": "val_loss (nats)", "margin": README_DELTA_NATS, "t": readme.t, "df": readme.df, "alpha": README_ALPHA}
    return stats
