"""ARTIFACT-*: measured bytes land in the report with the figure the verdict used."""
from __future__ import annotations

from rules.time_logs import three_seeds
from tests.helpers import audit_one, write_folder

STUB = 'exec(open(__file__.replace("train_gpt.py", "train_gpt_decode.py")).read())\n'
SIDECAR = "X = 1\n" * 30_000


def test_measured_bytes_fill_the_report(tmp_path):
    folder = write_folder(tmp_path, {"train_gpt.py": STUB, "train_gpt_decode.py": SIDECAR, **three_seeds(model=15_950_000, code=len(STUB))})
    rec = audit_one(folder, only_rules={"ARTIFACT-16MB", "ARTIFACT-CODE-COUNTED"})
    m = rec.measured
    assert m.bytes_code == len(STUB) + len(SIDECAR)
    assert m.bytes_model == 15_950_000 and m.extra["bytes_model_source"] == "logged"
    assert m.bytes_total == m.bytes_code + m.bytes_model and m.bytes_source == "measured"
    errs = [f for f in rec.findings if f.rule == "ARTIFACT-16MB" and f.severity.value == "error"]
    assert errs and f"{m.bytes_total:,}" in errs[0].message and "verdict uses the measured figure" in errs[0].message


def test_model_file_in_the_folder_wins_over_the_log(tmp_path):
    folder = write_folder(tmp_path, {"train_gpt.py": "print(1)\n", "final_model.int8.ptz": b"\0" * 1234, **three_seeds(code=9)})
    rec = audit_one(folder, only_rules={"ARTIFACT-16MB"})
    assert rec.measured.bytes_model == 1234 and rec.measured.extra["bytes_model_source"] == "file"


def test_log_over_cap_but_shipped_wrapper_under_is_a_warning(tmp_path):
    folder = write_folder(tmp_path, {"train_gpt.py": "print(1)\n", **three_seeds(code=104_721, model=15_966_600)})
    rec = audit_one(folder, only_rules={"ARTIFACT-16MB"})
    hits = [f for f in rec.findings if f.rule == "ARTIFACT-16MB"]
    assert [f.severity.value for f in hits] == ["warning"] and "disputed" in hits[0].message
