"""Re-entering the scoring function: our record-shaped fixture (tests/fixtures/probes/cuda_record_fn.py,
CUDA-shaped, its eval in eval_val(model, val, device)) runs once through the CPU layer in the sandbox;
eval_val is snapshotted before it runs and called again on mutated validation streams (flips at the
last, middle and early positions, a partial vocabulary sweep at the last position)."""
from __future__ import annotations

from pathlib import Path

import pytest

from auditor.reproduce.instrument import instrument_source
from auditor.reproduce.probes import probe_record
from auditor.reproduce.sandbox import bwrap_works
from tests.helpers import PROBE_FIXTURE, probe_fixture_mode

FIXTURE = PROBE_FIXTURE
SANDBOX = "bwrap" if bwrap_works()[0] else "none"


def _probe(tmp_path: Path, mode: str):
    got, numbers, _ = probe_fixture_mode(tmp_path, mode, SANDBOX)
    return got, numbers


def test_only_functions_holding_a_score_site_are_decorated_and_never_main():
    inst = instrument_source(FIXTURE.read_text(encoding="utf-8"), reentry=True)
    assert [name for name, _ in inst.reentered] == ["eval_val", "eval_diag"]  # adapt() trains, it scores nothing
    assert "@__pgolf_probe__.reentry('eval_val', " in inst.source
    assert inst.source.count("__pgolf_probe__.reentry(") == 2


def test_a_reduced_assignment_is_tapped_per_token_once():
    src = ("def ev(ps):\n    loss_sum = 0.0\n    for p in ps:\n        seg_loss = float((-np.log(p)).sum())\n"
           "        loss_sum += seg_loss\n    return loss_sum\n")
    inst = instrument_source(src)
    assert [(s.line, s.kind) for s in inst.sites] == [(4, "score")]
    assert "seg_loss = float(__pgolf_probe__.passthrough((-np.log(p)), {'p': p}, 4).sum())" in inst.source
    assert "__pgolf_probe__.scored(" not in inst.source  # loss_sum += seg_loss is not recorded a second time


def test_legal_eval_is_re_entered_and_passes_flips_at_three_positions_and_the_sweep(tmp_path):
    got, n = _probe(tmp_path, "legal")
    # a passing re-entry is complemented by the whole-script flip (state shaped before the scoring call)
    assert n["mode"] == "re-entered + whole-script flip" and n["whole_script_flip"].startswith("pass")
    assert [f.rule for f in got.values() if f.severity.value != "info"] == []
    assert n["reentry"]["function"] == "eval_val" and n["reentry"]["stream"] == "argument"
    assert n["reentry"]["replay_matches_original"] is True and n["reentry"]["determinism_checked"] is True
    flip = got["PROBE-SUFFIX-FLIP"]
    assert flip.severity.value == "info" and flip.message.startswith("pass: re-entering eval_val()"), flip.message
    assert n["changed_last_target"] == 1
    # in-order per-token scores: the middle and early flips are placed, and nothing before them moved
    assert n["flips"][0] == "last (2048): 1 changed"
    assert n["flips"][1].startswith("middle (1024): ") and n["flips"][1].endswith(", 0 before it")
    assert n["flips"][2].startswith("early (256): ") and n["flips"][2].endswith(", 0 before it")
    norm = got["PROBE-NORMALIZATION"]
    assert norm.severity.value == "info" and n["sweep"]["sum_p"] <= 1.0 and n["sweep"]["tokens"] >= 3


def test_two_pass_eval_is_flagged_by_the_re_entered_flip_with_position_and_numbers(tmp_path):
    got, n = _probe(tmp_path, "two_pass")
    flip = got["PROBE-SUFFIX-FLIP"]
    assert flip.severity.value == "error"
    assert "flipping the token at position 2048 (last; " in flip.message and " nats); positions probed: last (2048): " in flip.message
    assert flip.evidence[0].startswith("flip at 2048 (last): batch ") and "→" in flip.evidence[0]
    assert n["mode"] == "re-entered"


def test_the_call_whose_result_the_final_line_prints_is_re_entered_not_a_later_diagnostic(tmp_path):
    # eval_val (two-pass) is reported; eval_diag runs after it and prints a diagnostic line
    got, n = _probe(tmp_path, "two_pass_then_diag")
    assert n["reentry"]["function"] == "eval_val", n["reentry"]
    assert n["reentry"]["chosen"] == "its result is the final score line (final)"
    assert got["PROBE-SUFFIX-FLIP"].severity.value == "error" and n["mode"] == "re-entered"


def test_without_a_matching_final_line_the_last_scoring_call_is_re_entered(tmp_path):
    got, n = _probe(tmp_path, "legal")
    assert n["reentry"]["chosen"].startswith("its result is the final score line")  # the legal run prints its final line
    from auditor.reproduce import probe_runtime as rt

    a, b = ({"original": {"returned": [1.25]}}, {"original": {"returned": [2.5]}})
    rt._TAIL[:] = ["step:1/2 train_loss:3.0\n", "final val_loss:9.000000 val_bpb:12.984255\n"]
    try:
        assert rt._chosen([(None,) * 4 + (a,), (None,) * 4 + (b,)])[4] is b and b["chosen"].startswith("the last scoring call")
        rt._TAIL[:] = ["final val_loss:1.250000 val_bpb:1.803369\n"]
        assert rt._chosen([(None,) * 4 + (a,), (None,) * 4 + (b,)])[4] is a and a["chosen"] == "its result is the final score line (final)"
    finally:
        rt._TAIL.clear()


def test_ttt_before_score_is_flagged_by_the_re_entered_flip(tmp_path):
    got, n = _probe(tmp_path, "ttt_before_score")
    assert got["PROBE-SUFFIX-FLIP"].severity.value == "error", got["PROBE-SUFFIX-FLIP"].message
    assert n["changed_last_target"] == 0  # TTT on the whole stream moved every score


def test_target_in_key_passes_the_flip_and_is_flagged_by_the_sweep(tmp_path):
    got, n = _probe(tmp_path, "target_in_key")
    assert got["PROBE-SUFFIX-FLIP"].message.startswith("pass"), got["PROBE-SUFFIX-FLIP"].message
    norm = got["PROBE-NORMALIZATION"]
    assert norm.severity.value == "error" and norm.line is not None
    assert n["sweep"]["sum_p"] > 1.0 and n["sweep"]["position"] == 2048
    assert f"at the last position (2048) of the re-entered scoring function, {n['sweep']['tokens']} of 64 tokens already carry" in norm.message
    assert all(" nats → p = " in e for e in norm.evidence)


def test_eval_inside_main_falls_back_to_the_whole_script_flip_and_says_why(tmp_path):
    pytest.importorskip("sentencepiece")
    folder = tmp_path / "records" / "track_10min_16mb" / "2026-11-01_two_pass"
    folder.mkdir(parents=True)
    text = (FIXTURE.parent / "cuda_record.py").read_text(encoding="utf-8").replace('MODE = "legal"', 'MODE = "two_pass"')
    (folder / "train_gpt.py").write_text(text, encoding="utf-8")
    out = probe_record(folder, sandbox=SANDBOX, work=tmp_path / "work", timeout_s=240, tok_cache=tmp_path / "tok")
    why = [f for f in out.findings if f.rule == "PROBE-NOT-RUN" and "re-entering" in f.message]
    assert why and "no function other than main() holds a score site" in why[0].message
    assert out.numbers["train_gpt.py"]["mode"] == "whole script"
    assert [f for f in out.findings if f.rule == "PROBE-SUFFIX-FLIP"][0].severity.value == "error"


def test_minified_lines_are_split_so_their_scores_are_recorded():
    """Records shipped as self-extracting wrappers decode to minified code: `a; b` lines and one-line loop bodies."""
    src = ("def ev(xs):\n    loss_sum = 0\n    for x in xs: y = x * 2; loss_sum += y\n    a = 1; loss_sum += a; b = 2\n"
           "    return loss_sum\n")
    inst = instrument_source(src)
    assert [(s.line, s.kind) for s in inst.sites] == [(3, "score"), (4, "score")]
    ns: dict = {}
    exec(compile(inst.source, "minified", "exec"), ns)
    from auditor.reproduce import probe_runtime as rt

    rt.reset()
    assert ns["ev"]([1, 2]) == 7  # same result: the split changes no semantics
    assert [(e["values"], e["line"]) for e in rt.EVENTS] == [([2.0], 3), ([4.0], 3), ([1.0], 4)]
    rt.reset()


def test_a_malformed_re_entry_report_is_a_reason_not_a_crash():
    """The re-entry report is written inside the sandbox by the record's own process: pgolf reads it as hostile."""
    import numpy as np

    from auditor.reproduce.probe_outcome import ProbeOutcome
    from auditor.reproduce.probe_reentry import read_reentry

    val = np.arange(64) % 7
    assert read_reentry(ProbeOutcome("x"), "train_gpt.py", [], val, 7) == "no function holding a score site (other than main) was called"
    bad = [{"function": "eval_val", "line": 3, "calls": [{"tag": "replay", "error": None, "events": "not a list"}], "original": {}}]
    with pytest.raises((KeyError, TypeError, ValueError, AttributeError, IndexError)):
        read_reentry(ProbeOutcome("x"), "train_gpt.py", bad, val, 7)  # probe_script turns this into a stated reason


def test_logs_shipped_under_logs_are_read_for_the_toy_switches(tmp_path):
    from auditor.reproduce.probe_script import _log_files

    (tmp_path / "logs").mkdir()
    for n in ("b_seed1.txt", "a_seed2.txt", "notes.md"):
        (tmp_path / "logs" / n).write_text("ngram_cache:enabled\n")
    assert [p.name for p in _log_files(tmp_path)] == ["a_seed2.txt", "b_seed1.txt"]
    (tmp_path / "train_seed1.log").write_text("x\n")
    assert [p.name for p in _log_files(tmp_path)] == ["train_seed1.log"]  # top-level logs first, as before


def test_an_entry_not_named_train_gpt_is_probed_as_the_record_names_it(tmp_path):
    """Merged records ship train_gpt_v5.py or train_gpt_cuda_ternary.py: the plan's entry is probed, not 'no scorer'."""
    pytest.importorskip("sentencepiece")
    folder = tmp_path / "records" / "track_10min_16mb" / "2026-11-01_v5"
    folder.mkdir(parents=True)
    (folder / "train_gpt_v5.py").write_text(FIXTURE.read_text(encoding="utf-8").replace('MODE = "legal"', 'MODE = "two_pass"'))
    out = probe_record(folder, sandbox=SANDBOX, work=tmp_path / "work", timeout_s=240, tok_cache=tmp_path / "tok")
    flip = [f for f in out.findings if f.rule == "PROBE-SUFFIX-FLIP"]
    assert flip and flip[0].severity.value == "error" and flip[0].file == "train_gpt_v5.py"
    assert out.numbers["train_gpt_v5.py"]["mode"] == "re-entered"


def test_logged_booleans_become_1_0_for_knobs_the_script_parses_with_int():
    from auditor.reproduce.probe_script import _as_script_parses

    text = "ln_scale=bool(int(os.environ.get('LN_SCALE',_E)));name=os.environ.get('FLAG','True')"
    got = _as_script_parses({"LN_SCALE": "True", "FLAG": "True", "TIE": "False", "X": "False"}, {"TIE": "1"}, text)
    assert got == {"LN_SCALE": "1", "FLAG": "True", "TIE": "0", "X": "False"}


def test_a_sum_of_negative_logs_into_any_name_is_a_score_site():
    # PR #869's n-gram eval accumulates `cl += float((-np.log(final_p)).sum())`: no accumulator name, still the score
    src = "def ev(ps):\n    cl = 0.0\n    for p in ps:\n        cl += float((-np.log(p)).sum())\n    return cl\n"
    inst = instrument_source(src)
    assert [(s.line, s.kind) for s in inst.sites] == [(4, "score")]
    assert "__pgolf_probe__.scored((-np.log(p)), {'p': p}, 4)" in inst.source
    # a table bumped by a negative log stays an update, and a plain sum into a non-accumulator is nothing
    assert [s.kind for s in instrument_source("def f(t, k, p):\n    t[k] += float((-np.log(p)).sum())\n").sites] == ["update"]
    assert instrument_source("def f(ps):\n    c = 0\n    for p in ps:\n        c += p.sum()\n").sites == []


def test_a_name_assigned_negative_logs_then_summed_into_any_name_is_a_score_site():
    # PR #776's n-gram eval, inline in main: snll = -np.log(np.clip(smp, 1e-12, 1.0)); ls += float(snll.sum())
    src = ("def main(ws):\n    ls = 0.0\n    for w in ws:\n        snll = w.nll\n        snll = -np.log(np.clip(w.p, 1e-12, 1.0))\n"
           "        ls += float(snll.sum())\n    return ls\n")
    inst = instrument_source(src)
    assert [(s.line, s.kind) for s in inst.sites] == [(6, "score")]
    assert "__pgolf_probe__.scored(snll, {'w': w}, 6)" in inst.source
    # the same sum of a name never assigned a negative log is not a score
    assert instrument_source(src.replace("snll = -np.log(np.clip(w.p, 1e-12, 1.0))", "snll = w.p")).sites == []
