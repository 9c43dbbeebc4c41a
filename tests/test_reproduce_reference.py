"""The Done-when of `pgolf reproduce`: a record exported by the reference implementation
(`pgolf train --preset ci`, its smallest config) reproduces on CPU with two gloo ranks."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pathlib import Path

from typer.testing import CliRunner

from auditor.cli import app
from auditor.reproduce.plan import GpuInfo, build_plan
from auditor.reproduce.sandbox import bwrap_works

SANDBOX_OK, _ = bwrap_works()


@pytest.mark.slow
def test_reference_record_reproduces_with_nproc_2(tmp_path, capsys):
    record = tmp_path / "2026-11-05_RefCI"
    train = subprocess.run([sys.executable, "-m", "auditor", "train", "--preset", "ci", "--out", str(record), "--data", str(tmp_path / "data"),
                            "--seeds", "7"],
                           capture_output=True, text=True, timeout=300)
    if train.returncode != 0 and "No such command" in train.stderr:
        pytest.skip("the reference implementation's `pgolf train` is not available")
    assert train.returncode == 0, train.stderr[-2000:]
    claims = json.loads((record / "submission.json").read_text())
    # the data and tokenizer live outside the record folder: a reviewer hands them in (the README's paths are never probed)
    plan = build_plan(record, run_dir=tmp_path / "plan", gpu=GpuInfo())
    data, tok = plan.env["DATA_PATH"].value, plan.env["TOKENIZER_PATH"].value
    args = ["reproduce", str(record), "--nproc", "2", "--run-dir", str(tmp_path / "run"), "--quiet", "--format", "json",
            "--data", data, "--tokenizer", tok, "--tolerance", "0.001"] + ([] if SANDBOX_OK else ["--no-sandbox"])
    res = CliRunner().invoke(app, args)
    code = res.exit_code
    rec = json.loads(res.stdout)["records"][0]
    assert code == 0, [f["message"] for f in rec["findings"]]
    rep = rec["measured"]["reproduce"]
    assert rep["reproduced"] and rep["nproc_per_node"] == 2
    assert rep["tolerance_bpb"] == 0.001  # --tolerance reached the verdict
    (row,) = rep["seeds"]
    assert row["seed"] == 7 and plan.seeds == [7]  # `train --seeds` chose the seed the record claims
    assert abs(row["val_bpb"] - claims["val_bpb"]) <= rep["tolerance_bpb"]
    assert row["bytes_total"] == claims["bytes_total"]  # the artifact it wrote + the counted code
    assert row["artifact"] == "final_model.int8.ptz"


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "records" / "track_10min_16mb" / "2026-11-05_Reference_EditedClaim"


@pytest.mark.skipif(not EXAMPLE.is_dir(), reason="example record missing")
def test_edited_claim_example_plan(tmp_path):
    """The example is the exporter's output with its claim lowered by 0.05 afterwards: the plan reads
    the README's env (with its $PGOLF_DATA variable) and takes the per-seed claim from the log."""
    plan = build_plan(EXAMPLE, run_dir=tmp_path / "run", gpu=GpuInfo())
    assert plan.seeds == [1337]
    assert plan.env["VOCAB_SIZE"].value == "384" and plan.env["ITERATIONS"].value == "6"
    assert plan.env["DATA_PATH"].value.endswith("/pgolf/data/datasets/stdlib400k_sp384") and "$" not in plan.env["DATA_PATH"].value
    assert plan.claimed_by_seed[1337][0] == pytest.approx(6.25172391)
    assert plan.claimed_seed_results[1337] == pytest.approx(6.20172391)
    assert plan.evidence.claims.val_bpb == pytest.approx(6.20172391)
