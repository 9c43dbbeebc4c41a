"""The record preset's switches run end to end (on the ci data, at ci size) and the folder they
write passes pgolf's own audit: no error outside the one-seed statistics."""
from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from auditor.cli import app
from reference_impl.presets import PRESETS

SWITCHES = ("MLP_NEG_SLOPE", "QAT_BITS", "QUANT_BITS", "QUANT_MIN_CLIP", "QUANT_INT6_PACK", "COMPRESSOR", "EMA_DECAY",
            "QUANT_FP16_EMBED", "EVAL_STRIDE")


def test_record_preset_names_a_source_for_each_switch():
    src = (__import__("reference_impl.presets", fromlist=["x"]).__file__)
    text = open(src, encoding="utf-8").read()
    block = text[text.index('"record": Preset('):text.index('"tiny": Preset(')]
    rec = PRESETS["record"].env
    for k in SWITCHES + ("TRAIN_SEQ_LEN", "WARMDOWN_ITERS", "MATRIX_LR"):
        assert k in rec, k
    assert len(set(re.findall(r"# (20\d\d-\d\d-\d\d_\S+)", block))) >= 6
    assert not {"TTT", "NGRAM"} & {k.split("_")[0] for k in rec}


def test_record_switches_train_and_audit_clean(tmp_path):
    rec = PRESETS["record"].env
    sets = [f"{k}={rec[k]}" for k in SWITCHES if k != "EVAL_STRIDE"] + ["EMA_DECAY=0.5"]
    out = tmp_path / "records" / "track_10min_16mb" / "2026-01-02_RefRecordSwitches"
    args = ["train", "--preset", "ci", "--out", str(out), "--data", str(tmp_path / "data"), "--timeout", "240"]
    for s in sets:
        args += ["--set", s]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, (res.output, repr(res.exception))
    log = (out / "train_seed1337.log").read_text()
    assert re.search(r"^  qat_bits: 6$", log, re.M) and re.search(r"^  mlp_neg_slope: 0.5$", log, re.M)
    assert re.search(r"^ema:applied decay:0.5 val_loss:[\d.]+ val_bpb:[\d.]+$", log, re.M)
    assert re.search(r"^Serialized model int6\+zstd: \d+ bytes$", log, re.M)
    assert re.search(r"^final_int6_sliding_window_exact val_loss:[\d.]+ val_bpb:[\d.]+$", log, re.M)
    report = json.loads(CliRunner().invoke(app, ["audit", "--format", "json", "--fail-on", "never", str(out)]).output)
    errors = [(f["rule"], f["message"]) for r in report["records"] for f in r["findings"] if f["severity"] == "error"]
    assert [e for e in errors if not e[0].startswith("STATS-")] == []
