"""`--format sarif`: SARIF 2.1.0 (sarif-pydantic), relative URIs, one descriptor per rule id."""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote, urlparse

from dataclasses import replace

from pydantic import BaseModel
from sarif_pydantic import Sarif

from auditor.model import Finding, Severity
from auditor.report import render
from tests.report_cases import odd_report, pipeline_report, write_tree

# SARIF 2.1.0 properties that sarif-pydantic 0.6.2 does not model (it names `suppression` in the
# singular and has no toolExecutionNotifications); anything else unmodelled is a typo of ours.
SPEC_FIELDS_NOT_MODELLED = {"suppressions", "toolExecutionNotifications"}


def _extras(model, where="$"):
    """Keys sarif-pydantic accepted only because it allows extras: a misspelt property hides there."""
    out = []
    if isinstance(model, BaseModel):
        for k in (model.model_extra or {}):
            if k not in SPEC_FIELDS_NOT_MODELLED:
                out.append(f"{where}.{k}")
        for name in type(model).model_fields:
            if name == "properties":
                continue  # the free-form property bag
            out += _extras(getattr(model, name), f"{where}.{name}")
    elif isinstance(model, list):
        for i, v in enumerate(model):
            out += _extras(v, f"{where}[{i}]")
    return out


def validate(text: str) -> dict:
    doc = json.loads(text)
    model = Sarif.model_validate(doc)
    assert model.version == "2.1.0"
    assert _extras(model) == []
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    ids = [r["id"] for r in rules]
    assert len(ids) == len(set(ids)), "one reportingDescriptor per rule id"
    for res in run.get("results", []):
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
        assert res["level"] in ("error", "warning", "note")
        loc = res["locations"][0]["physicalLocation"]
        uri = loc["artifactLocation"]["uri"]
        assert not urlparse(uri).scheme and not uri.startswith("/"), uri  # relative, never file:// or absolute
        assert loc["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
        if "region" in loc:
            assert loc["region"]["startLine"] >= 1
        assert res["partialFingerprints"]
    return doc


def test_pipeline_sarif_points_at_real_files(tmp_path):
    folders = write_tree(tmp_path)
    doc = validate(render(pipeline_report(tmp_path), "sarif"))
    run = doc["runs"][0]
    assert run["automationDetails"]["id"] == "pgolf/static/"
    results = run["results"]
    assert results, "the broken folders yield findings"
    for res in results:
        uri = unquote(res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"])
        assert (tmp_path / uri).exists(), uri  # relative to the report root, which is the checkout
    missing = next(r for r in results if r["message"]["text"].startswith("missing train_gpt.py"))
    assert missing["level"] == "error" and missing["ruleId"] == "SUBMISSION-FILES"
    # A folder-level finding sits on the folder's submission.json; '#' and ' ' are percent-encoded.
    assert missing["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == \
        "records/track_10min_16mb/2026-01-03_No%23Code/submission.json"
    one_seed = next(r for r in results if "seed log" in r["message"]["text"])
    assert one_seed["level"] == "warning" and "2026-01-02_One%20Seed" in one_seed["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    desc = run["tool"]["driver"]["rules"][missing["ruleIndex"]]
    assert desc["helpUri"].startswith("https://") and desc["shortDescription"]["text"]
    # The truncated submission.json is reported as a notification, not dropped.
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert any("submission.json" in n["message"]["text"] for n in notes)
    assert {f.name for f in folders.values()} >= {"2026-01-01_Clean"}


def test_odd_report_sarif(tmp_path):
    doc = validate(render(odd_report(n_extra_folders=4), "sarif"))
    run = doc["runs"][0]
    results = run["results"]
    by_rule = {}
    for r in results:
        by_rule.setdefault(r["ruleId"], []).append(r)
    ngram = by_rule["NGRAM-TARGET-IN-KEY"][0]
    assert ngram["locations"][0]["physicalLocation"]["region"] == {"startLine": 412}
    assert "line one\nline two" in ngram["message"]["text"] and "Fix: Hash the context only." in ngram["message"]["text"]
    # The record root is /tmp/checkout and the record path is relative: the URI stays relative, encoded.
    assert ngram["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == \
        "records/track_10min_16mb/2026-03-26%20%C3%9Cn%C3%AFcode%20%23folder%2520/train_gpt.py"
    waived = by_rule["STATS-SEEDS"][0]
    assert waived["suppressions"][0]["justification"].startswith("reviewed")
    assert "suppressions" not in ngram
    assert by_rule["SUBMISSION-FILES"][0]["level"] == "note"
    assert "region" not in by_rule["SUBMISSION-FILES"][0]["locations"][0]["physicalLocation"]  # line 0 is no line
    # An id the catalog does not know still gets its descriptor.
    ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert "UNKNOWN-RULE" in ids
    assert len(by_rule["REPORT-CONSISTENCY"][0]["message"]["text"]) < 2_000  # 20,000 evidence lines are not copied in
    # A file outside the record folder (a tokenizer in the user's cache) is no repository location:
    # the result sits on the folder's submission.json and its message names the real file.
    outside = by_rule["TOKENIZER-BPB-ACCOUNTING"][0]
    assert outside["locations"][0]["physicalLocation"] == {"artifactLocation": {
        "uri": "records/track_10min_16mb/2026-03-26%20%C3%9Cn%C3%AFcode%20%23folder%2520/submission.json", "uriBaseId": "%SRCROOT%"}}
    assert outside["message"]["text"].startswith("/opt/tokenizers/tok.model: custom tokenizer")


def test_fingerprints_stable_and_distinct():
    def report():
        rep = odd_report(n_extra_folders=6)
        same = Finding("SUBMISSION-FILES", Severity.ERROR, "", None, "missing README.md", evidence=["files: x"])
        rep.records[0].findings += [same, replace(same, message="missing train_gpt.py"), replace(same)]
        return rep
    a = json.loads(render(report(), "sarif"))["runs"][0]["results"]
    b = json.loads(render(report(), "sarif"))["runs"][0]["results"]
    fa = [r["partialFingerprints"] for r in a]
    assert fa == [r["partialFingerprints"] for r in b]
    assert len({json.dumps(f) for f in fa}) == len(fa)


def test_absolute_record_path_outside_root_becomes_relative(tmp_path):
    rep = odd_report()
    rep.records[0].path = str(tmp_path / "elsewhere" / "rec")
    rep.root = str(tmp_path / "checkout")
    doc = validate(render(rep, "sarif"))
    uri = doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri.startswith("../elsewhere/rec/")
    assert Path(tmp_path / "checkout" / unquote(uri)).resolve().parent == (tmp_path / "elsewhere" / "rec").resolve()
