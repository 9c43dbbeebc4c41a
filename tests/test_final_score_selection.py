"""Which line is a run's final score and which logs stand for the claim (records.md §3.4).

A final score is the last scoring eval line after the training loop (the stop line, else the last
training step), in its ``_exact`` twin when that agrees to 6e-4; per seed one log is used — the one
closest to the claimed score when a seed has several — and byte-identical copies, editor
checkpoints and unlisted seeds are set aside with the reason."""
from __future__ import annotations

from auditor.evidence.logs import parse_log_text, pick_final
from rules.time_logs import baseline_log, three_seeds
from tests.helpers import audit_one, write_folder

STOP = "stopping_early: wallclock_cap train_time:600000ms step:9/9\n"
STEP = "step:9/9 train_loss:3.0 train_time:600000ms step_avg:2ms\n"


def _final(text: str):
    return parse_log_text(text).runs[0]


def test_a_score_printed_before_training_stopped_is_not_the_final():
    run = _final("final_int8_zlib_roundtrip val_loss:1.5 val_bpb:1.0100 eval_time:1ms\n" + STOP
                 + "final_int8_zlib_roundtrip val_loss:2.0 val_bpb:1.3000 eval_time:1ms\n")
    assert (run.final.val_bpb, run.final.line, run.complete) == (1.3, 3, True)
    assert [e.after_stop for e in run.evals] == [False, True]


def test_without_a_stop_line_training_ends_at_the_last_step_line():
    run = _final("step:1/9 train_loss:3.0 train_time:10ms step_avg:2ms\nquantized val_loss:1.5 val_bpb:1.0100 eval_time:1ms\n"
                 + STEP + "quantized val_loss:2.0 val_bpb:1.3000 eval_time:1ms\n")
    assert (run.final.val_bpb, run.final.line) == (1.3, 4)
    assert [e.after_stop for e in run.evals if not e.label.startswith("step:")] == [False, True]


def test_with_no_score_after_training_the_run_is_incomplete():
    run = _final("step:9/9 val_loss:2.0 val_bpb:1.2500 train_time:600000ms step_avg:2ms\nquantized val_loss:1.5 val_bpb:1.0100\n" + STOP)
    assert run.complete is False
    assert (run.final.label, run.final.val_bpb) == ("step:9", 1.25)


def test_the_last_scoring_line_wins_and_its_exact_twin_stands_for_it():
    run = _final(STOP + "final_a val_loss:2.0 val_bpb:1.3000\nfinal_b_exact val_loss:2.0 val_bpb:1.20000001\n"
                 "final_b val_loss:2.0 val_bpb:1.2000\n")
    assert (run.final.label, run.final.val_bpb) == ("final_b_exact", 1.20000001)


def test_an_exact_twin_that_disagrees_by_6e_4_or_more_is_not_used():
    near = _final(STOP + "final_b val_loss:2.0 val_bpb:1.2000\nfinal_b_exact val_loss:2.0 val_bpb:1.20059\n"
                  "final_b val_loss:2.0 val_bpb:1.2000\n")
    assert (near.final.label, near.final.val_bpb) == ("final_b_exact", 1.20059)
    far = _final(STOP + "final_b_exact val_loss:2.0 val_bpb:1.20061\nfinal_b val_loss:2.0 val_bpb:1.2000\n")
    assert (far.final.label, far.final.val_bpb) == ("final_b", 1.2)
    below = _final(STOP + "final_b_exact val_loss:2.0 val_bpb:1.19939\nfinal_b val_loss:2.0 val_bpb:1.2000\n")
    assert below.final.label == "final_b"


def test_another_label_ending_in_exact_is_not_a_twin():
    run = _final(STOP + "final_c_exact val_loss:2.0 val_bpb:1.2000\nfinal_b val_loss:2.0 val_bpb:1.2000\n")
    assert run.final.label == "final_b"


def test_pick_final_of_nothing_scoring_is_none():
    assert pick_final([]) is None
    run = _final(STOP + "DIAGNOSTIC post_ema val_loss:2.0 val_bpb:1.1\n")
    assert run.complete is False


# ---- which logs stand for the claim ---------------------------------------------------------------

def _measured(tmp_path, files):
    return audit_one(write_folder(tmp_path, files), only_rules={"ARTIFACT-16MB"}).measured


def test_a_byte_identical_copy_of_a_log_is_counted_once(tmp_path):
    logs = three_seeds()
    m = _measured(tmp_path, {"train_gpt.py": "print(1)\n", **logs, "zcopy/train_seed42.log": logs["train_seed42.log"]})
    assert m.extra["logs_used"] == ["train_seed1337.log", "train_seed2024.log", "train_seed42.log"]
    assert m.extra["logs_ignored"] == [{"log": "zcopy/train_seed42.log", "why": "byte-identical to train_seed42.log"}]
    assert len(m.seeds) == 3 and round(m.val_bpb, 6) == round((1.2244 + 1.2251 + 1.2239) / 3, 6)
    assert round(m.val_loss, 6) == round((2.0727 + 2.0739 + 2.0718) / 3, 6)


def test_editor_checkpoint_copies_and_logs_without_a_score_are_set_aside(tmp_path):
    logs = three_seeds()
    m = _measured(tmp_path, {**logs, ".ipynb_checkpoints/train_seed7-checkpoint.log": baseline_log(7, 1.0, 1.9),
                             "notes.log": "nothing scored here\n"})
    assert m.extra["logs_ignored"] == [{"log": ".ipynb_checkpoints/train_seed7-checkpoint.log", "why": "an editor checkpoint copy"},
                                       {"log": "notes.log", "why": "no score line"}]
    assert sorted(s.seed for s in m.seeds) == [42, 1337, 2024]


def test_the_rerun_closest_to_the_claim_is_used_not_the_farthest(tmp_path):
    files = {**three_seeds(), "train_seed42_rerun.log": baseline_log(42, 1.1000, 2.0),
             "submission.json": '{"val_bpb": 1.2, "seed_results": {"1337": {"val_bpb": 1.2244}, "42": {"val_bpb": 1.1001}, '
                                '"2024": {"val_bpb": 1.2239}}}'}
    m = _measured(tmp_path, files)
    assert {s.seed: s.log for s in m.seeds}[42] == "train_seed42_rerun.log"
    assert {"log": "train_seed42.log", "why": "another log of seed 42 (train_seed42_rerun.log) was used"} in m.extra["logs_ignored"]
    files["submission.json"] = files["submission.json"].replace('"42": {"val_bpb": 1.1001}', '"42": {"val_bpb": 1.2250}')
    m = _measured(tmp_path / "b", files)
    assert {s.seed: s.log for s in m.seeds}[42] == "train_seed42.log"


def test_with_one_seed_its_logs_compete_for_the_folder_claim(tmp_path):
    files = {"train_seed1.log": baseline_log(1, 1.3000, 2.0), "train_seed1_rerun.log": baseline_log(1, 1.2000, 2.0),
             "submission.json": '{"val_bpb": 1.2001}'}
    assert [s.log for s in _measured(tmp_path / "a", files).seeds] == ["train_seed1_rerun.log"]
    files["submission.json"] = '{"val_bpb": 1.2999}'
    assert [s.log for s in _measured(tmp_path / "b", files).seeds] == ["train_seed1.log"]


def test_without_a_claim_a_rerun_copy_gives_way_to_the_original(tmp_path):
    files = {"a_rerun_seed1.log": baseline_log(1, 1.2000, 2.0), "train_seed1.log": baseline_log(1, 1.3000, 2.0)}
    m = _measured(tmp_path, files)
    assert [s.log for s in m.seeds] == ["train_seed1.log"]
    assert m.extra["logs_ignored"] == [{"log": "a_rerun_seed1.log", "why": "another log of seed 1 (train_seed1.log) was used"}]


def test_logs_of_seeds_the_submission_does_not_list_are_not_used(tmp_path):
    files = {**three_seeds(), "train_seed7.log": baseline_log(7, 1.0, 1.9),
             "submission.json": '{"val_bpb": 1.2245, "seeds": [1337, 42, 2024]}'}
    m = _measured(tmp_path, files)
    assert sorted(s.seed for s in m.seeds) == [42, 1337, 2024]
    assert m.extra["logs_ignored"] == [{"log": "train_seed7.log", "why": "seed 7 is not listed in submission.json"}]
    # a list that matches no log drops nothing: the wrong list is STATS-SEEDS's finding
    files["submission.json"] = '{"val_bpb": 1.2245, "seeds": [1, 2, 3]}'
    assert len(_measured(tmp_path / "b", files).seeds) == 4


def test_a_log_named_for_a_listed_seed_counts_as_that_seed(tmp_path):
    files = {k: v for k, v in three_seeds().items() if "2024" not in k}
    files["train_seed0.log"] = baseline_log(2024, 1.2239, 2.0718)
    files["submission.json"] = '{"val_bpb": 1.2245, "seeds": [1337, 42, 0]}'
    m = _measured(tmp_path, files)
    assert sorted(s.seed for s in m.seeds) == [0, 42, 1337]


def test_a_seedless_log_repeating_a_seed_final_is_not_a_fourth_seed(tmp_path):
    logs = three_seeds()
    # (read after the seed logs: logs are taken in name order)
    m = _measured(tmp_path, {**logs, "z_train.log": logs["train_seed42.log"].replace("  seed: 42\n", "") + "\n"})
    assert len(m.seeds) == 3
    assert m.extra["logs_ignored"] == [{"log": "z_train.log", "why": "repeats the final of train_seed42.log"}]
    m = _measured(tmp_path / "b", {**logs, "z_train.log": baseline_log(5, 1.1, 2.0).replace("  seed: 5\n", "")})
    assert len(m.seeds) == 4 and m.seeds[-1].seed is None


def test_the_logged_total_is_the_largest_seed_total(tmp_path):
    files = {f"train_seed{s}.log": baseline_log(s, 1.22, 2.07, model=mb, code=10) for s, mb in ((1, 100), (2, 300), (3, 200))}
    from auditor.measure import measure_scores
    from auditor.discover import discover
    from auditor.evidence import read_evidence
    ev = read_evidence(discover([write_folder(tmp_path, files)]).folders[0])
    m = measure_scores(ev)
    assert (m.bytes_total, m.bytes_source) == (310, "logged")
    assert [s.bytes_total for s in m.seeds] == [110, 310, 210]
    assert [s.train_time_ms for s in m.seeds] == [599_800.0] * 3 and [s.world_size for s in m.seeds] == [8] * 3
    assert [s.label for s in m.seeds] == ["final_int8_zlib_roundtrip_exact"] * 3


def test_a_seed_eval_time_is_the_logged_total_else_the_final_line_own(tmp_path):
    from auditor.measure import measure_scores
    from auditor.discover import discover
    from auditor.evidence import read_evidence

    plain = STOP + "final_int8_zlib_roundtrip val_loss:2.0 val_bpb:1.3000 eval_time:1234ms\n"
    files = {"train_seed1.log": "seed:1\n" + plain, "train_seed2.log": "seed:2\n" + plain + "total_eval_time: 321.5s\n",
             "train_seed3.log": "seed:3\n" + STOP + "final_x val_loss:2.0 val_bpb:1.3000\n"}
    m = measure_scores(read_evidence(discover([write_folder(tmp_path, files)]).folders[0]))
    assert [(s.seed, s.eval_time_ms) for s in m.seeds] == [(1, 1234.0), (2, 321_500.0), (3, None)]
    assert [s.val_loss for s in m.seeds] == [2.0, 2.0, 2.0] and m.val_loss == 2.0


def test_the_mean_loss_is_left_out_when_a_seed_has_no_loss(tmp_path):
    from auditor.measure import measure_scores
    from auditor.discover import discover
    from auditor.evidence import read_evidence

    files = {"train_seed1.log": "seed:1\n" + STOP + "final_a val_loss:2.0 val_bpb:1.3000\n",
             "train_seed2.log": "seed:2\n" + STOP + "final_a val_bpb:1.1000\n"}
    m = measure_scores(read_evidence(discover([write_folder(tmp_path, files)]).folders[0]))
    assert round(m.val_bpb, 6) == 1.2 and m.val_loss is None
    assert m.bytes_total is None and m.bytes_source is None and "logs_ignored" not in m.extra


def test_a_line_without_a_bpb_is_never_the_final():
    run = _final(STOP + "final_a val_loss:2.0 val_bpb:1.3000\nfinal_b val_loss:1.0\n")
    assert (run.final.label, run.final.val_bpb) == ("final_a", 1.3)


def test_of_two_exact_twins_the_later_one_is_used():
    run = _final(STOP + "final_b_exact val_loss:2.0 val_bpb:1.20001\nfinal_b_exact val_loss:2.0 val_bpb:1.20002\n"
                 "final_b val_loss:2.0 val_bpb:1.2000\n")
    assert (run.final.val_bpb, run.final.line) == (1.20002, 3)


def test_a_step_line_after_the_stop_is_not_a_final():
    run = _final(STOP + "final_a val_loss:2.0 val_bpb:1.3000\nstep:10/9 val_loss:1.0 val_bpb:1.0000 train_time:1ms step_avg:1ms\n")
    assert (run.final.label, run.final.val_bpb) == ("final_a", 1.3)


def test_step_lines_are_never_scoring_and_never_after_the_stop():
    from auditor.evidence.logs import is_scoring_label

    assert not is_scoring_label("step:10") and is_scoring_label("steps_final")
    run = _final(STOP + "step:10/9 val_loss:1.0 val_bpb:1.0000 train_time:1ms step_avg:1ms\n")
    assert [(e.label, e.after_stop) for e in run.evals] == [("step:10", False)]


def test_a_twin_exactly_6e_4_away_is_another_score():
    run = _final(STOP + "final_b_exact val_loss:2.0 val_bpb:0.0006\nfinal_b val_loss:2.0 val_bpb:0.0000\n")
    assert (run.final.label, run.final.val_bpb) == ("final_b", 0.0)


def test_a_seed_measure_takes_the_run_seed_else_the_name_and_the_compressed_code_first():
    from auditor.measure import seed_measure

    lf = parse_log_text("seed:5\n" + STOP + "Code size: 900 bytes\nCode size (compressed): 300 bytes\n"
                        "final_a val_loss:2.0 val_bpb:1.3000\n")
    lf.seed_from_name, lf.path = 7, "train_seed7.log"
    sm = seed_measure(lf, lf.runs[0])
    assert (sm.seed, sm.bytes_code, sm.val_bpb, sm.val_loss, sm.label, sm.log) == (5, 300, 1.3, 2.0, "final_a", "train_seed7.log")
    lf = parse_log_text(STOP + "Code size: 900 bytes\nfinal_a val_loss:2.0 val_bpb:1.3000\n")
    lf.seed_from_name = 7
    sm = seed_measure(lf, lf.runs[0])
    assert (sm.seed, sm.bytes_code) == (7, 900)


def test_a_seed_measure_of_a_run_without_a_score_is_empty_not_an_error():
    from auditor.measure import seed_measure

    lf = parse_log_text("seed:5\nhello\n")
    sm = seed_measure(lf, lf.runs[0])
    assert (sm.val_bpb, sm.val_loss, sm.label, sm.eval_time_ms, sm.bytes_code) == (None, None, None, None, None)
