"""STATS arithmetic checked against independent implementations (the standard library's statistics,
scipy's Welch test), and the previous-record choice of ``--against`` at its edges.

The rule protected: a record's significance is the one-sided Welch test of the README / leaderboard
practice, on the *sample* spread of its seeds, against the frontier record of its date and track.
"""
from __future__ import annotations

import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sst

from auditor.stats import README_DELTA_NATS, load_previous, previous_in_tree, sample_std, welch_one_sided
from rules.time_logs import baseline_log
from tests.helpers import audit_one, write_folder

finite = st.floats(min_value=0.5, max_value=3.0, allow_nan=False, allow_infinity=False)


def test_sample_std_is_the_n_minus_1_spread():
    assert sample_std([]) is None
    assert sample_std([1.2]) is None
    assert sample_std([1.0, 2.0]) == pytest.approx(statistics.stdev([1.0, 2.0]), rel=1e-12)  # two seeds already have a spread
    xs = [1.0811, 1.0803, 1.0822]
    assert sample_std(xs) == pytest.approx(statistics.stdev(xs), rel=1e-12)
    assert sample_std(xs) != pytest.approx(statistics.pstdev(xs), rel=1e-6)  # not the population spread
    assert sample_std([5.0, 5.0, 5.0]) == 0.0


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(finite, min_size=2, max_size=8))
def test_sample_std_matches_statistics(xs):
    assert sample_std(xs) == pytest.approx(statistics.stdev(xs), rel=1e-9, abs=1e-12)


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(finite, min_size=2, max_size=6, unique=True), st.lists(finite, min_size=2, max_size=6, unique=True),
       st.sampled_from([0.0, README_DELTA_NATS, 0.02]))
def test_welch_matches_scipy(old, new, margin):
    w = welch_one_sided(old, new, margin)
    ref = sst.ttest_ind(np.array(old) - margin, np.array(new), equal_var=False, alternative="greater")
    assert w is not None
    assert w.delta == pytest.approx(statistics.fmean(old) - statistics.fmean(new), rel=1e-9, abs=1e-12)
    assert w.t == pytest.approx(float(ref.statistic), rel=1e-7, abs=1e-9)
    assert w.df == pytest.approx(float(ref.df), rel=1e-7)
    assert w.p == pytest.approx(float(ref.pvalue), rel=1e-6, abs=1e-12)


def test_welch_needs_two_values_each_side_and_some_spread():
    assert welch_one_sided([1.0], [0.9, 0.8]) is None
    assert welch_one_sided([1.0, 1.1], [0.9]) is None
    assert welch_one_sided([1.0, 1.0], [0.9, 0.9]) is None
    assert welch_one_sided([1.0, 1.2], [0.9, 0.9]) is not None  # one side without spread is still a test
    w = welch_one_sided([1.0, 1.2], [0.9, 0.9])
    assert w.df == pytest.approx(1.0)  # all the variance from the side with n=2


def test_the_margin_makes_the_test_harder():
    old, new = [1.10, 1.11, 1.12], [1.09, 1.10, 1.11]
    plain, margined = welch_one_sided(old, new, 0.0), welch_one_sided(old, new, 0.005)
    assert margined.t < plain.t and margined.p > plain.p


SEEDS_OLD = {1: (1.1010, 2.3010), 2: (1.1030, 2.3050), 3: (1.1020, 2.3030)}
SEEDS_NEW = {4: (1.0950, 2.2900), 5: (1.0970, 2.2950), 6: (1.0940, 2.2880)}


def _folder(tmp_path, seeds, name, track="track_10min_16mb", claim=None):
    files = {f"train_seed{s}.log": baseline_log(s, b, l) for s, (b, l) in seeds.items()}
    if claim is not None:
        files["submission.json"] = f'{{"val_bpb": {claim}}}'
    return write_folder(tmp_path, files, track=track, name=name)


def test_compute_reports_every_number_exactly(tmp_path):
    prev = _folder(tmp_path, SEEDS_OLD, "2026-04-01_Prev")
    new = _folder(tmp_path, SEEDS_NEW, "2026-04-02_New")
    s = audit_one(new, against=[str(prev)], only_rules={"STATS-SIGNIFICANCE"}).stats
    nb, nl = [v[0] for v in SEEDS_NEW.values()], [v[1] for v in SEEDS_NEW.values()]
    ob, ol = [v[0] for v in SEEDS_OLD.values()], [v[1] for v in SEEDS_OLD.values()]
    assert s.n_seeds == 3
    assert s.mean_bpb == pytest.approx(statistics.fmean(nb), abs=1e-12)
    assert s.std_bpb == pytest.approx(statistics.stdev(nb), rel=1e-9)
    assert s.extra["mean_val_loss"] == pytest.approx(statistics.fmean(nl), abs=1e-12)
    assert s.extra["std_val_loss"] == pytest.approx(statistics.stdev(nl), rel=1e-9)
    assert s.extra["rulebook"] == "2026-04-28"
    assert sorted(s.extra["against_seeds"]) == [1, 2, 3]
    assert s.extra["against_mean_bpb"] == pytest.approx(statistics.fmean(ob), abs=1e-12)
    assert s.extra["delta_bpb"] == pytest.approx(statistics.fmean(ob) - statistics.fmean(nb), abs=1e-12)
    assert s.delta_nats == pytest.approx(statistics.fmean(ol) - statistics.fmean(nl), abs=1e-12)
    practice = sst.ttest_ind(ob, nb, equal_var=False, alternative="greater")
    readme = sst.ttest_ind(np.array(ol) - README_DELTA_NATS, nl, equal_var=False, alternative="greater")
    assert s.p_practice == pytest.approx(float(practice.pvalue), rel=1e-6)
    assert s.p_readme == pytest.approx(float(readme.pvalue), rel=1e-6)
    assert s.extra["practice"] == {"metric": "val_bpb", "margin": 0.0, "t": pytest.approx(float(practice.statistic), rel=1e-7),
                                   "df": pytest.approx(float(practice.df), rel=1e-7), "alpha": 0.25}
    assert s.extra["readme"] == {"metric": "val_loss (nats)", "margin": README_DELTA_NATS,
                                 "t": pytest.approx(float(readme.statistic), rel=1e-7), "df": pytest.approx(float(readme.df), rel=1e-7),
                                 "alpha": 0.01}


def test_compute_without_against_reports_the_spread_only(tmp_path):
    s = audit_one(_folder(tmp_path, SEEDS_NEW, "2026-04-02_New"), only_rules={"STATS-SIGNIFICANCE"}, rulebook="2026-03-18").stats
    assert s.against is None and s.p_practice is None and s.p_readme is None and s.delta_nats is None
    assert s.extra["rulebook"] == "2026-03-18"
    assert "against_seeds" not in s.extra


def test_an_unknown_rulebook_means_the_latest(tmp_path):
    s = audit_one(_folder(tmp_path, SEEDS_NEW, "2026-04-02_New"), only_rules={"STATS-SIGNIFICANCE"}, rulebook="1999-01-01").stats
    assert s.extra["rulebook"] == "2026-04-28"


def test_load_previous_resolves_a_relative_path_from_the_audited_folder(tmp_path, monkeypatch):
    prev = _folder(tmp_path, SEEDS_OLD, "2026-04-01_Prev")
    new = _folder(tmp_path, SEEDS_NEW, "2026-04-02_New")
    monkeypatch.chdir(tmp_path)  # "../2026-04-01_Prev" does not exist from here, only from the audited folder
    where, measured = load_previous("../2026-04-01_Prev", new)
    assert where is not None and where.endswith("2026-04-01_Prev")
    assert sorted(s.seed for s in measured.seeds) == [1, 2, 3]
    assert load_previous("../2026-04-01_Prev", None) == (None, "../2026-04-01_Prev: no such folder")
    assert load_previous(str(tmp_path / "nothing"), new)[0] is None
    assert load_previous(str(prev), new)[0] is not None


def test_the_previous_record_in_a_tree_is_the_frontier_of_its_date_and_track(tmp_path):
    _folder(tmp_path, SEEDS_OLD, "2026-04-01_Old", claim=1.20)
    _folder(tmp_path, SEEDS_OLD, "2026-04-02_Best", claim=1.10)
    _folder(tmp_path, SEEDS_OLD, "2026-04-03_SameDay", claim=1.05)  # same day as the new one: counts as earlier
    _folder(tmp_path, SEEDS_OLD, "2026-04-04_Later", claim=1.00)  # after it: not the frontier it faced
    _folder(tmp_path, SEEDS_OLD, "2026-04-01_OtherTrack", track="track_non_record_16mb", claim=0.50)
    new = _folder(tmp_path, SEEDS_NEW, "2026-04-03_New", claim=1.04)
    tree = str((tmp_path / "records").resolve())
    chosen = previous_in_tree(tree, new)
    assert chosen is not None and chosen.endswith("2026-04-03_SameDay")
    first = _folder(tmp_path, SEEDS_NEW, "2026-03-01_First", claim=1.30)
    assert previous_in_tree(tree, first) is None  # nothing on or before its date
    where, _m = load_previous(tree, first)
    assert where is None


def test_a_folder_without_scores_has_no_mean_and_no_crash(tmp_path):
    folder = write_folder(tmp_path, {"train_gpt.py": "print(1)\n", "README.md": "# no logs\n"}, name="2026-04-02_NoLogs")
    s = audit_one(folder, only_rules={"STATS-SIGNIFICANCE"}).stats
    assert s.n_seeds == 0 and s.mean_bpb is None and s.std_bpb is None
    assert s.extra["mean_val_loss"] is None and s.extra["std_val_loss"] is None


def test_against_a_previous_record_without_scores(tmp_path):
    prev = write_folder(tmp_path, {"train_gpt.py": "print(1)\n", "README.md": "# no logs\n"}, name="2026-04-01_Empty")
    new = _folder(tmp_path, SEEDS_NEW, "2026-04-02_New")
    s = audit_one(new, against=[str(prev)], only_rules={"STATS-SIGNIFICANCE"}).stats
    assert s.against is not None and s.extra["against_seeds"] == []
    assert s.extra["against_mean_bpb"] is None
    assert "delta_bpb" not in s.extra and s.delta_nats is None
    assert s.p_practice is None and s.p_readme is None


def test_the_previous_record_without_a_current_folder_is_the_lowest_claim(tmp_path):
    _folder(tmp_path, SEEDS_OLD, "2026-04-01_A", claim=1.20)
    _folder(tmp_path, SEEDS_OLD, "2026-05-01_B", claim=1.10)
    _folder(tmp_path, SEEDS_OLD, "2026-04-01_C", track="track_non_record_16mb", claim=1.00)
    tree = str((tmp_path / "records").resolve())
    chosen = previous_in_tree(tree, None)  # no date, no track: every folder of the tree is a candidate
    assert chosen is not None and chosen.endswith("2026-04-01_C")
    undated = write_folder(tmp_path / "other", {"x.log": ""}, name="NoDate")
    chosen = previous_in_tree(tree, undated)  # an undated folder: every date counts, its own track only
    assert chosen is not None and chosen.endswith("2026-05-01_B")


def test_a_tree_with_nothing_before_the_folder_says_which_folder(tmp_path):
    _folder(tmp_path, SEEDS_OLD, "2026-04-04_Later", claim=1.00)
    _folder(tmp_path, SEEDS_OLD, "2026-04-05_Later", claim=0.90)  # two folders: a tree, not one record
    first = _folder(tmp_path / "x", SEEDS_NEW, "2026-03-01_First")
    tree = tmp_path / "records"
    assert load_previous(str(tree), first) == (None, f"{tree}: no record in this tree is dated on or before 2026-03-01_First "
                                                     "with a claimed score")
    unclaimed = tmp_path / "unclaimed"
    _folder(unclaimed, SEEDS_OLD, "2026-04-04_A")
    _folder(unclaimed, SEEDS_OLD, "2026-04-05_B")
    assert load_previous(str(unclaimed / "records"), None) == (
        None, f"{unclaimed / 'records'}: no record in this tree is dated on or before this folder with a claimed score")
