"""The admissible score: the last scoring evaluation a seed's log prints before its flagged eval-time
stage, quoted line by line; or why there is none."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor.admissible import STATUS_DERIVED, STATUS_MEASURED, STATUS_NONE, derive
from auditor.evidence.logs import parse_log_text
from auditor.model import Finding, Measured, RecordResult, SeedMeasure, Severity
from rules.time_logs import baseline_log
from tests.helpers import audit_one, write_folder

EXAMPLE = Path(__file__).resolve().parents[1] / "examples/records/track_10min_16mb/2026-11-02_IllegalNgramTwoPass"
FINALS = {1337: (1.1279, 1.9044), 42: (1.1276, 1.9039), 2024: (1.1279, 1.9044)}
NGRAM_TAIL = ("Starting N-gram eval: order 2-9, buckets=4194304\n"
              "  ngram_chunk [0/947] bpb=1.175644 time=0.6s\n"
              "ngram_eval val_loss:0.4796 val_bpb:0.2841 eval_time:416328ms\n"
              "ngram_eval_exact val_loss:0.47961142 val_bpb:0.28405290\n")


def _log(seed: int, tail: str = NGRAM_TAIL, **kw) -> str:
    bpb, loss = FINALS[seed]
    return baseline_log(seed, bpb, loss, **kw) + tail


def _result(logs: dict[str, str], errors: list[str], verdict: str = "fail"):
    """A record as the pipeline leaves it: real parsed logs, measured seeds, error findings."""
    lfs = []
    seeds = []
    for name, text in logs.items():
        lf = parse_log_text(text)
        lf.path = name
        lfs.append(lf)
        fin = lf.last_run.final
        seeds.append(SeedMeasure(seed=lf.last_run.seed, val_bpb=fin.val_bpb, val_loss=fin.val_loss, label=fin.label,
                                 train_time_ms=None, eval_time_ms=None, bytes_total=None, bytes_code=None, log=name))
    vals = [s.val_bpb for s in seeds]
    rec = RecordResult(path="f", verdict=verdict, measured=Measured(val_bpb=sum(vals) / len(vals), seeds=seeds),
                       findings=[Finding(r, Severity.ERROR, "train_gpt.py", 10, "m") for r in errors])
    return rec, lfs


def test_ngram_stage_excluded_per_seed_with_its_lines():
    rec, lfs = _result({f"train_seed{s}.log": _log(s) for s in FINALS}, ["NGRAM-TARGET-IN-KEY", "EVAL-SINGLE-PASS"])
    adm = derive(rec, lfs)
    assert adm.status == STATUS_DERIVED
    assert [a.val_bpb for a in adm.seeds] == [1.1279, 1.1276, 1.1279]
    assert adm.val_bpb == pytest.approx((1.1279 + 1.1276 + 1.1279) / 3, abs=1e-12)
    assert adm.excludes == ["n-gram cache", "rescoring pass"]
    first = adm.seeds[0]
    assert first.label == "final_int8_zlib_roundtrip_exact"
    assert adm.evidence[0] == f"train_seed1337.log:{first.line}: final_int8_zlib_roundtrip_exact val_loss:1.90440000 val_bpb:1.12790000"
    assert first.stage_text.startswith("Starting N-gram eval") and first.stage_line == first.line + 1
    # every admissible value is a line of the log, verbatim
    for a, (name, text) in zip(adm.seeds, [(f"train_seed{s}.log", _log(s)) for s in FINALS]):
        assert text.split("\n")[a.line - 1] == a.text and f"val_bpb:{a.val_bpb:.8f}" in a.text


def test_a_repeated_alias_line_quotes_the_first_print():
    # PR #864's shape: the int6 line, then a compatibility alias printing the same numbers
    tail = "final_int8_zlib_roundtrip_exact val_loss:1.90440000 val_bpb:1.12790000\n" + NGRAM_TAIL
    rec, lfs = _result({"train_seed1337.log": _log(1337, tail)}, ["NGRAM-HASHED-CACHE"])
    a = derive(rec, lfs).seeds[0]
    text = _log(1337, tail).split("\n")
    assert text[a.line - 1] == a.text and text[a.line] == a.text  # the first of two identical lines


def test_no_evaluation_before_the_stage():
    rec, lfs = _result({"train_seed1.log": (EXAMPLE / "train_seed1.log").read_text()}, ["NGRAM-TARGET-IN-KEY"])
    adm = derive(rec, lfs)
    assert adm.status == STATUS_NONE and adm.val_bpb is None
    assert adm.reason == "no evaluation is printed before the stage"
    assert adm.seeds[0].stage_text == "ngram_eval_exact val_loss:0.40000000 val_bpb:0.24000000"


def test_stage_echoed_in_the_hyperparameters_is_not_the_stage():
    # "ngram_pass2: …" printed with the configuration, before training: the stage starts after training
    log = "ngram_pass2: rescoring first 50 chunks\n" + _log(42)
    rec, lfs = _result({"train_seed42.log": log}, ["EVAL-SINGLE-PASS"])
    adm = derive(rec, lfs)
    assert adm.status == STATUS_DERIVED and adm.seeds[0].val_bpb == 1.1276


def test_training_time_rule_is_not_derivable():
    rec, lfs = _result({"train_seed42.log": _log(42)}, ["NGRAM-TARGET-IN-KEY", "DATA-NO-VAL-IN-TRAIN"])
    adm = derive(rec, lfs)
    assert adm.status == STATUS_NONE and adm.reason == "the illegal stage runs inside training (DATA-NO-VAL-IN-TRAIN)"


def test_errors_outside_eval_stages_are_not_excluded():
    rec, lfs = _result({"train_seed42.log": _log(42)}, ["NGRAM-TARGET-IN-KEY", "ARTIFACT-16MB"])
    adm = derive(rec, lfs)
    assert adm.val_bpb is None and adm.reason.startswith("fails outside any eval-time stage (ARTIFACT-16MB)")


def test_stage_that_prints_nothing_cannot_be_located():
    rec, lfs = _result({"train_seed42.log": _log(42, tail="")}, ["TTT-SCORE-FIRST"])
    adm = derive(rec, lfs)
    assert adm.val_bpb is None
    assert adm.reason == "the log shows no line of the flagged stage (it may not have run), so no score can be tied to before it"


def test_one_seed_without_a_value_leaves_the_folder_without_one():
    logs = {"train_seed1337.log": _log(1337), "train_seed42.log": _log(42, tail="ngram_eval_exact val_loss:0.4 val_bpb:0.28\n")}
    logs["train_seed42.log"] = logs["train_seed42.log"].replace("final_int8_zlib_roundtrip", "final_ngram_roundtrip")
    rec, lfs = _result(logs, ["NGRAM-TARGET-IN-KEY"])
    adm = derive(rec, lfs)
    assert adm.val_bpb is None and adm.seeds[0].val_bpb == 1.1279 and adm.seeds[1].val_bpb is None
    assert adm.reason == "train_seed42.log: no evaluation is printed before the stage"


def test_passing_folder_keeps_its_measured_finals():
    rec, lfs = _result({f"train_seed{s}.log": _log(s, tail="") for s in FINALS}, [], verdict="pass")
    adm = derive(rec, lfs)
    assert adm.status == STATUS_MEASURED and adm.val_bpb == rec.measured.val_bpb and adm.excludes == []
    assert len(adm.evidence) == 3 and all("final_int8_zlib_roundtrip_exact" in e for e in adm.evidence)


def test_pipeline_reports_it_in_json(tmp_path):
    code = (EXAMPLE / "train_gpt.py").read_text()
    files = {f"train_seed{s}.log": _log(s, code=len(code)) for s in FINALS}
    files["train_gpt.py"] = code
    files["submission.json"] = json.dumps({"author": "t", "github_id": "t", "val_bpb": 0.2841, "seeds": sorted(FINALS)})
    files["README.md"] = "# n-gram\n"
    rec = audit_one(write_folder(tmp_path, files))
    assert rec.verdict == "fail"
    adm = rec.admissible
    assert adm.status == STATUS_DERIVED and round(adm.val_bpb, 4) == 1.1278
    from auditor.model import Report
    from auditor.report import render

    doc = json.loads(render(Report(records=[rec]), "json"))
    got = doc["records"][0]["admissible"]
    assert got["val_bpb"] == adm.val_bpb and got["excludes"] == adm.excludes and len(got["evidence"]) == 3
    assert [(s["log"], s["val_bpb"]) for s in got["seeds"]] == [("train_seed1337.log", 1.1279), ("train_seed2024.log", 1.1279),
                                                                ("train_seed42.log", 1.1276)]
    md = render(Report(records=[rec]), "markdown")
    assert "admissible val_bpb" in md and "1.1278" in md
