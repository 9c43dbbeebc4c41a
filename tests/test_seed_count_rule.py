"""STATS-SEEDS (rules.md §1.6) pinned: at least three logged seeds with a final score on the 10-minute
track (reported only before the 2026-03-20 rule), claimed seeds must be logged (a log named for a
claimed seed but running another is a warning), and the hyperparameter dumps agree apart from per-run
keys (seed, run id, paths, ...)."""
from __future__ import annotations

from auditor.model import Severity
from rules.time_logs import baseline_log, three_seeds
from tests.helpers import audit_one, write_folder

TWO = {k: v for k, v in three_seeds().items() if "2024" not in k}
SUB2 = '{"val_bpb": 1.2245, "seeds": [1337, 42]}'
COUNT = "2 seed(s) with a final score in the logs used for the claim; a record needs at least 3"
EVID2 = ["train_seed1337.log: seed 1337 val_bpb 1.2244", "train_seed42.log: seed 42 val_bpb 1.2251"]


def _said(tmp_path, files, track="track_10min_16mb", name="2026-01-01_Test"):
    rec = audit_one(write_folder(tmp_path, files, track=track, name=name), only_rules={"STATS-SEEDS"})
    return [(f.severity, f.file, f.line, f.message, f.evidence) for f in rec.findings]


def test_three_logged_seeds_of_one_configuration_are_silent(tmp_path):
    assert _said(tmp_path, {"submission.json": '{"val_bpb": 1.2245, "seeds": [1337, 42, 2024]}', **three_seeds()}) == []


def test_two_seeds_are_an_error_on_the_record_track(tmp_path):
    assert _said(tmp_path, {"submission.json": SUB2, **TWO}) == [(Severity.ERROR, "", None, COUNT, EVID2)]


def test_the_seed_rule_dates_from_2026_03_20(tmp_path):
    early = _said(tmp_path / "a", {"submission.json": SUB2, **TWO}, name="2026-03-19_Early")
    assert early == [(Severity.INFO, "", None, COUNT + " (the folder predates the 2026-03-20 rule: reported only)", EVID2)]
    assert _said(tmp_path / "b", {"submission.json": SUB2, **TWO}, name="2026-03-20_OnTheDay")[0][0] is Severity.ERROR
    assert _said(tmp_path / "c", {"submission.json": SUB2, **TWO}, name="2026-03-01_First")[0][0] is Severity.INFO
    assert _said(tmp_path / "d", {"submission.json": SUB2, **TWO}, name="2026-02-28_Before")[0][0] is Severity.ERROR
    assert _said(tmp_path / "e", {"submission.json": SUB2, **TWO}, name="2026-03-1x_NotADate")[0][0] is Severity.ERROR


def test_the_non_record_track_needs_no_three_seeds(tmp_path):
    assert _said(tmp_path, {"submission.json": SUB2, **TWO}, track="track_non_record_16mb") == []


def test_a_claimed_seed_no_log_shows_is_an_error(tmp_path):
    said = _said(tmp_path, {"submission.json": '{"val_bpb": 1.2245, "seeds": [1337, 42, 7]}', **three_seeds()})
    assert (Severity.ERROR, "submission.json", 1, "seed(s) [7] are claimed in submission.json but no log shows them",
            ["claimed: [1337, 42, 7]", "logged: [42, 1337, 2024]"]) in said
    assert len(said) == 2  # and seed 2024's log is not used for the claim: two seeds


def test_a_log_named_for_a_claimed_seed_that_ran_another_is_a_warning(tmp_path):
    files = {"submission.json": '{"val_bpb": 1.2245, "seeds": [1337, 42, 0]}', **TWO, "train_seed0.log": baseline_log(2024, 1.2239, 2.0718)}
    assert _said(tmp_path, files) == [
        (Severity.WARNING, "train_seed0.log", None, "train_seed0.log is named for claimed seed 0 but its run logs seed [2024]: confirm "
         "which seed produced the claimed result", ["claimed: [1337, 42, 0]", "train_seed0.log: seed line [2024]"])]


def test_hyperparameters_that_differ_between_seeds_are_a_warning_but_per_run_keys_are_not(tmp_path):
    hp = {"matrix_lr": "0.026", "run_id": "x", "output_dir": "y", "log_path": "z", "data_paths": "p", "timestamp": "t"}
    files = {"submission.json": '{"val_bpb": 1.2245, "seeds": [1337, 42, 2024]}', **three_seeds(),
             "train_seed2024.log": baseline_log(2024, 1.2239, 2.0718, extra_hp=hp)}
    assert _said(tmp_path, files) == [
        (Severity.WARNING, "train_seed2024.log", 1, "the hyperparameter dump differs from train_seed1337.log in 1 key(s); confirm every "
         "claimed seed ran the submitted configuration: matrix_lr", ["matrix_lr: 0.04 vs 0.026"])]


def test_a_key_that_only_contains_a_per_run_word_still_counts(tmp_path):
    files = {**three_seeds(), "train_seed2024.log": baseline_log(2024, 1.2239, 2.0718, extra_hp={"seedling": "1", "hidden": "2"})}
    [(_s, _f, _l, msg, _e)] = _said(tmp_path, files)
    assert msg.endswith("in 2 key(s); confirm every claimed seed ran the submitted configuration: hidden, seedling")


def test_at_most_eight_differing_keys_are_listed(tmp_path):
    files = {**three_seeds(), "train_seed2024.log": baseline_log(2024, 1.2239, 2.0718, extra_hp={f"k{i}": "1" for i in range(9)})}
    [(_s, _f, _l, msg, evidence)] = _said(tmp_path / "a", files)
    assert msg.endswith("in 9 key(s); confirm every claimed seed ran the submitted configuration: k0, k1, k2, k3, k4, k5, k6, k7…")
    assert evidence == [f"k{i}: None vs 1" for i in range(8)]
    files["train_seed2024.log"] = baseline_log(2024, 1.2239, 2.0718, extra_hp={f"k{i}": "1" for i in range(8)})
    [(_s, _f, _l, msg, _e)] = _said(tmp_path / "b", files)
    assert msg.endswith(": k0, k1, k2, k3, k4, k5, k6, k7")


def test_seeds_claimed_as_per_seed_results_count_as_claimed_once(tmp_path):
    sub = '{"val_bpb": 1.2245, "seeds": [1337, 42], "seed_results": {"1337": {"val_bpb": 1.2244}, "9": {"val_bpb": 1.2}}}'
    said = _said(tmp_path, {"submission.json": sub, **three_seeds()})
    [missing] = [x for x in said if x[1] == "submission.json"]
    assert missing[3] == "seed(s) [9] are claimed in submission.json but no log shows them"
    assert missing[4] == ["claimed: [1337, 42, 9]", "logged: [42, 1337, 2024]"]  # the listed seeds first, 1337 once


def test_a_folder_without_logs_is_not_judged_on_seeds(tmp_path):
    assert _said(tmp_path, {"submission.json": '{"val_bpb": 1.2245, "seeds": [1, 2, 3]}', "train_gpt.py": "print(1)\n"}) == []


def test_two_runs_are_enough_to_compare_their_configurations(tmp_path):
    files = {"submission.json": SUB2, **TWO, "train_seed42.log": baseline_log(42, 1.2251, 2.0739, extra_hp={"matrix_lr": "0.03"})}
    said = _said(tmp_path, files)
    assert [(s, f) for s, f, *_ in said] == [(Severity.ERROR, ""), (Severity.WARNING, "train_seed42.log")]


def test_the_finding_names_the_submission_file_the_folder_ships(tmp_path):
    said = _said(tmp_path, {"submission_v2.json": '{"val_bpb": 1.2245, "seeds": [1337, 42, 2024, 7]}', **three_seeds()})
    assert [(f, msg) for _s, f, _l, msg, _e in said] == [("submission_v2.json", "seed(s) [7] are claimed in submission_v2.json but no log shows them")]


def test_the_count_finding_lists_the_logs_not_used_and_why(tmp_path):
    said = _said(tmp_path, {"submission.json": '{"val_bpb": 1.2245, "seeds": [1337, 42, 7]}', **three_seeds()})
    count = [e for _s, f, _l, _m, e in said if f == ""]
    assert count == [EVID2 + ["train_seed2024.log: not used (seed 2024 is not listed in submission.json)"]]


def test_a_log_without_a_seed_line_shows_the_seed_in_its_name(tmp_path):
    files = {**three_seeds(), "train_seed7.log": baseline_log(7, 1.2239, 2.0718).replace("  seed: 7\n", ""),
             "submission.json": '{"val_bpb": 1.2245, "seeds": [1337, 42, 2024, 7]}'}
    assert _said(tmp_path, files) == []
