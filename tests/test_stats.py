"""Welch arithmetic of STATS-SIGNIFICANCE against records.md §5.2, and the --against pipeline."""
from __future__ import annotations

import pytest
from scipy import stats as st

from auditor.stats import README_DELTA_NATS, sample_std, welch_one_sided
from rules.time_logs import baseline_log
from tests.helpers import audit_one, write_folder

# per-seed finals typed from the committed logs of the merged records (seed: val_bpb, val_loss)
PR1493 = {314: (1.08103103, 2.79241542), 42: (1.08079352, 2.79180191), 999: (1.08118408, 2.79281076)}
PR1514 = {0: (1.07928348, 2.78790132), 1234: (1.08024795, 2.79039264), 42: (1.07996676, 2.78966630)}
PR1736 = {0: (1.06473025, 2.33002446), 1234: (1.06562743, 2.33198782), 42: (1.06610085, 2.33302383)}
PR1769 = {1: (1.06509678, 2.33082656), 1337: (1.06516558, 2.33097712), 2025: (1.06413130, 2.32871372),
          314: (1.06356801, 2.32748105), 777: (1.06466993, 2.32989245)}


def _bpb(d):
    return [v[0] for v in d.values()]


def _loss(d):
    return [v[1] for v in d.values()]


@pytest.mark.parametrize("old,new,delta_bpb,t,df,p,p_readme", [
    (PR1493, PR1514, 0.00117, 3.80, 2.61, 0.0203, 0.95),  # records.md §5.2 row "#1514 vs #1493"
    (PR1736, PR1769, 0.00096, 1.91, 4.23, 0.0626, 0.97),  # row "#1769 vs #1736"
])
def test_welch_reproduces_the_records_table(old, new, delta_bpb, t, df, p, p_readme):
    w = welch_one_sided(_bpb(old), _bpb(new), 0.0)
    assert w.delta == pytest.approx(delta_bpb, abs=5e-6)
    assert w.t == pytest.approx(t, abs=0.005)
    assert w.df == pytest.approx(df, abs=0.005)
    assert round(w.p, 3) == round(p, 3)
    readme = welch_one_sided(_loss(old), _loss(new), README_DELTA_NATS)
    assert readme.p == pytest.approx(p_readme, abs=0.005)


def test_margin_zero_agrees_with_scipy_ttest_ind():
    ref = st.ttest_ind(_bpb(PR1493), _bpb(PR1514), equal_var=False, alternative="greater")
    w = welch_one_sided(_bpb(PR1493), _bpb(PR1514))
    assert w.p == pytest.approx(ref.pvalue, rel=1e-9)
    assert w.t == pytest.approx(ref.statistic, rel=1e-9)


def test_degenerate_inputs_give_no_test():
    assert welch_one_sided([1.0], [0.9, 0.8]) is None
    assert welch_one_sided([1.0, 1.0], [0.9, 0.9]) is None
    assert sample_std([1.0]) is None


def test_against_runs_through_the_pipeline_readers(tmp_path):
    """The JSON stats block for a record audited with --against, both folders read by the same readers."""
    prev = write_folder(tmp_path, {f"train_seed{s}.log": baseline_log(s, b, l) for s, (b, l) in PR1493.items()}, name="2026-04-01_Prev")
    new = write_folder(tmp_path, {f"train_seed{s}.log": baseline_log(s, b, l) for s, (b, l) in PR1514.items()}, name="2026-04-02_New")
    rec = audit_one(new, against=[str(prev)], only_rules={"STATS-SIGNIFICANCE"})
    s = rec.stats
    assert s.n_seeds == 3
    assert s.against == prev.as_posix()
    assert round(s.p_practice, 3) == 0.020
    assert s.delta_nats == pytest.approx(0.00302, abs=5e-5)
    assert s.p_readme > 0.9
    out = s.to_json()
    for key in ("n_seeds", "mean_bpb", "std_bpb", "against", "delta_nats", "p_readme", "p_practice"):
        assert key in out
    assert any(f.rule == "STATS-SIGNIFICANCE" and "p = 0.0203" in " ".join(f.evidence) for f in rec.findings)


def test_against_a_missing_folder_is_one_line(tmp_path):
    new = write_folder(tmp_path, {f"train_seed{s}.log": baseline_log(s, b, l) for s, (b, l) in PR1514.items()})
    rec = audit_one(new, against=[str(tmp_path / "nope")], only_rules={"STATS-SIGNIFICANCE"})
    hits = [f for f in rec.findings if f.rule == "STATS-SIGNIFICANCE"]
    assert hits and "no such folder" in hits[0].message


def test_against_a_records_tree_picks_the_frontier_on_or_before_the_date(tmp_path):
    """--against TREE: the previous record is the lowest claimed val_bpb of the same track dated on or
    before the audited folder (leaderboard order), never a later or a worse one, never itself."""
    def folder(name, claim, seeds, track="track_10min_16mb"):
        files = {f"train_seed{s}.log": baseline_log(s, b, l) for s, (b, l) in seeds.items()}
        files["submission.json"] = '{"author": "a", "val_bpb": %s}' % claim
        return write_folder(tmp_path, files, name=name, track=track)

    folder("2026-04-01_Older", 1.0900, PR1493)
    best = folder("2026-04-02_Frontier", 1.0810, PR1493)
    folder("2026-04-05_Later", 1.0700, PR1493)  # after the audited folder: not the comparison
    folder("2026-04-01_OtherTrack", 1.0000, PR1493, track="track_non_record_16mb")
    new = folder("2026-04-03_New", 1.0798, PR1514)
    rec = audit_one(new, against=[str(tmp_path / "records")], only_rules={"STATS-SIGNIFICANCE"})
    assert rec.stats.against.endswith("2026-04-02_Frontier"), rec.stats.against
    assert round(rec.stats.p_practice, 3) == 0.020
    assert best.name in rec.stats.against
