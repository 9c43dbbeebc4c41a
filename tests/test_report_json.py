"""`--format json`: valid against the shipped schema, field names kept, never invalid JSON."""
from __future__ import annotations

import copy
import json

import jsonschema
import pytest

from auditor.model import Report
from auditor.report import json_report, render
from tests.report_cases import odd_report, pipeline_report, write_tree


@pytest.fixture(scope="module")
def validator():
    schema = json_report.schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_schema_is_shipped_as_package_data():
    from importlib.resources import files

    text = files("auditor.report").joinpath("schema.json").read_text(encoding="utf-8")
    schema = json.loads(text)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["schema_version"] == {"const": 1}


def test_pipeline_report_validates_and_keeps_interface_names(tmp_path, validator):
    write_tree(tmp_path)
    doc = json.loads(render(pipeline_report(tmp_path), "json"))
    validator.validate(doc)
    assert doc["schema_version"] == 1 and doc["tool"]["name"] == "pgolf"
    by_name = {r["path"].rsplit("/", 1)[-1]: r for r in doc["records"]}
    assert set(by_name) == {"2026-01-01_Clean", "2026-01-02_One Seed", "2026-01-03_No#Code"}
    clean = by_name["2026-01-01_Clean"]
    assert clean["verdict"] == "pass" and clean["findings"] == []
    # The interface of issue 2: claims and measured, with per-seed entries.
    assert clean["claims"]["val_bpb"] == 1.2244 and clean["claims"]["bytes_total"] == 15_863_489
    assert [s["seed"] for s in clean["measured"]["seeds"]] == [1, 2, 3]
    for key in ("seed", "val_bpb", "label", "train_time_ms", "eval_time_ms", "bytes_total", "bytes_code"):
        assert key in clean["measured"]["seeds"][0]
    broken = by_name["2026-01-03_No#Code"]
    assert broken["verdict"] == "fail"
    f = next(f for f in broken["findings"] if f["message"] == "missing train_gpt.py")
    assert set(f) >= {"rule", "severity", "file", "line", "message", "evidence", "ruling", "fix"}
    assert f["rule"] == "SUBMISSION-FILES" and f["severity"] == "error" and f["ruling"].startswith("https://")
    assert any(e["file"] == "submission.json" for e in broken["errors"])  # the truncated JSON, one line
    assert doc["verdict"] == "fail"
    assert doc["summary"]["verdicts"] == {"fail": 1, "needs-review": 1, "pass": 1}


def test_odd_content_stays_valid_json(validator):
    text = render(odd_report(n_extra_folders=5), "json")
    text.encode("utf-8")  # undecodable bytes from submissions must not break the write
    doc = json.loads(text)
    validator.validate(doc)
    rec = doc["records"][0]
    assert rec["measured"]["val_bpb"] is None  # NaN is not JSON
    assert rec["measured"]["seeds"][1]["val_bpb"] is None  # inf neither
    assert rec["stats"]["nan"] is None and rec["stats"]["p_practice"] == 0.18
    assert rec["measured"]["odd"] == [1, 2] and rec["measured"]["path"] == "x/y" and rec["measured"]["sev"] == "error"
    f0 = rec["findings"][0]
    assert "\n" in f0["message"] and f0["evidence"][0].endswith("字")  # verbatim, not flattened
    assert len(rec["findings"][1]["evidence"]) == 20_000  # JSON keeps every line
    line0 = next(f for f in rec["findings"] if f["message"] == "line 0 is not a line")
    assert line0["line"] is None
    assert next(f for f in rec["findings"] if f["waived"])["waived"].startswith("reviewed")


def test_schema_rejects_a_renamed_field(validator):
    doc = json.loads(render(odd_report(), "json"))
    bad = copy.deepcopy(doc)
    f = bad["records"][0]["findings"][0]
    f["rule_id"] = f.pop("rule")
    assert not validator.is_valid(bad)
    bad = copy.deepcopy(doc)
    bad["records"][0]["verdict"] = "maybe"
    assert not validator.is_valid(bad)
    bad = copy.deepcopy(doc)
    bad["records"][0]["measured"]["seeds"][0]["val_bpb"] = "1.2"
    assert not validator.is_valid(bad)


def test_empty_report_is_valid(validator):
    doc = json.loads(render(Report(), "json"))
    validator.validate(doc)
    assert doc["verdict"] is None and doc["records"] == []
