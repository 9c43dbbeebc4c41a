"""STATS-SIGNIFICANCE (rules.md §1.6, records.md §5.2)."""
from __future__ import annotations

from auditor.model import Severity
from auditor.stats import PRACTICE_ALPHA, README_ALPHA, README_DELTA_NATS
from rules.base import Invalid, Rule, Valid, register
from rules.time_logs import baseline_log

_NEW = {1337: (1.2200, 2.0600), 42: (1.2204, 2.0607), 2024: (1.2197, 2.0596)}
_OLD = {1: (1.2244, 2.0727), 2: (1.2251, 2.0739), 3: (1.2239, 2.0718)}
_CLOSE = {1: (1.2201, 2.0602), 2: (1.2210, 2.0611), 3: (1.2192, 2.0590)}
_SMALL = {7: (1.2229, 2.0697), 8: (1.2236, 2.0709), 9: (1.2224, 2.0688)}  # 0.003 nats better than _OLD


def _folder(finals: dict[int, tuple[float, float]], prefix: str = "") -> dict[str, str]:
    return {f"{prefix}train_seed{s}.log": baseline_log(s, b, l) for s, (b, l) in finals.items()}


_PREV = "../2026-01-01_Previous/"


@register
class StatsSignificance(Rule):
    """A new record must beat the previous one significantly. Two tests are reported, and the dated
    rulebook says which decides:

    * README (rulebook 2026-03-18): beat SOTA by ≥ 0.005 nats at p < 0.01 — one-sided Welch on the
      per-seed final val_loss, margin 0.005; waived for pure systems speed-ups.
    * leaderboard practice (rulebook 2026-04-28, the default): one-sided Welch on per-seed val_bpb,
      no margin, accepted at p < 0.25 in chronological order (#1900, #1902, #2146).

    The previous record is given with ``--against PATH``; it is read with the same readers.

    Ruling: README "beat the SOTA by at least 0.005 nats… p < 0.01"; cocohearts' leaderboard PRs
    #1900/#1902/#2146 (p < 0.25 chronological chain).
    """

    id = "STATS-SIGNIFICANCE"
    code = "PG601"
    title = "the improvement over the previous record is not significant"
    family = "stats"
    ruling = "https://github.com/openai/parameter-golf/pull/1902"
    fix = "Run more seeds or improve further; compare against the record that was the frontier when the PR was opened."
    default_severity = Severity.ERROR

    VALID = [
        Valid({**_folder(_NEW), **_folder(_OLD, _PREV)}, options={"against": [_PREV]}, note="clear win (practice rulebook)"),
        Valid({**_folder(_NEW), **_folder(_OLD, _PREV)}, options={"against": [_PREV], "rulebook": "2026-03-18"},
              note="0.012 nats better: passes the README test too"),
        Valid(_folder(_NEW), note="no --against: reported, not judged"),
    ]
    INVALID = [
        Invalid({**_folder(_NEW), **_folder(_CLOSE, _PREV)}, options={"against": [_PREV]}, note="no better than the previous record"),
        Invalid({**_folder(_SMALL), **_folder(_OLD, _PREV)}, options={"against": [_PREV], "rulebook": "2026-03-18"},
                note="0.003 nats better: passes the practice test, fails the README margin (rulebook 2026-03-18)"),
    ]

    def check(self, ctx):
        st = ctx.stats
        if st is None:
            return
        track = ctx.evidence.folder.track
        rulebook = st.extra.get("rulebook", "2026-04-28")
        if st.extra.get("against_problem"):
            yield self.finding("", None, f"--against could not be read: {st.extra['against_problem']}", severity=Severity.WARNING)
            return
        if st.against is None:
            if track == "10min":
                yield self.finding("", None, "no previous record given (--against PATH), so significance was not tested",
                                   severity=Severity.INFO)
            return
        nums = self._numbers(st)
        if st.p_practice is None and st.p_readme is None:
            yield self.finding("", None, f"cannot test against {st.against}: each side needs at least two seed finals "
                               f"(this record {st.n_seeds}, previous {len(st.extra.get('against_seeds') or [])})",
                               severity=Severity.WARNING, evidence=nums)
            return
        readme_ok = st.p_readme is not None and st.p_readme < README_ALPHA
        practice_ok = st.p_practice is not None and st.p_practice < PRACTICE_ALPHA
        sev_off = Severity.INFO if track != "10min" else None
        if rulebook == "2026-03-18":
            deciding, ok, other = "README (Δ ≥ 0.005 nats at p < 0.01)", readme_ok, f"practice test p = {_p(st.p_practice)}"
        else:
            deciding, ok, other = "leaderboard practice (p < 0.25 on bpb)", practice_ok, f"README test p = {_p(st.p_readme)}"
        if ok:
            yield self.finding("", None, f"passes the {deciding} test against {st.against}; {other}"
                               + ("" if readme_ok else " (fails the README rule as written: " f"Δ = {st.delta_nats or 0:.5f} nats)"),
                               severity=Severity.INFO, evidence=nums)
        else:
            yield self.finding("", None, f"fails the {deciding} test against {st.against} under rulebook {rulebook}; {other}"
                               + (" (a pure systems speed-up is exempt from the margin)" if rulebook == "2026-03-18" else ""),
                               severity=sev_off, evidence=nums)

    @staticmethod
    def _numbers(st) -> list[str]:
        out = [f"this record: n={st.n_seeds} mean_bpb={_f(st.mean_bpb)} std_bpb={_f(st.std_bpb)}",
               f"previous: seeds={st.extra.get('against_seeds')} mean_bpb={_f(st.extra.get('against_mean_bpb'))}",
               f"Δ = {_f(st.extra.get('delta_bpb'))} bpb = {_f(st.delta_nats)} nats"]
        for key in ("readme", "practice"):
            t = st.extra.get(key)
            if t:
                p = st.p_readme if key == "readme" else st.p_practice
                out.append(f"{key}: one-sided Welch on {t['metric']}, margin {t['margin']}, t = {t['t']:.3f}, df = {t['df']:.2f}, "
                           f"p = {_p(p)} (α = {t['alpha']})")
        return out


def _f(x) -> str:
    return "n/a" if x is None else f"{x:.5f}"


def _p(x) -> str:
    return "n/a" if x is None else f"{x:.4f}"


assert README_DELTA_NATS == 0.005
