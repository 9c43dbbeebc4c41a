"""`pgolf audit --format ...` end to end: exit codes, --output, and the bundled examples."""
from __future__ import annotations

import json

import jsonschema
import pytest
from sarif_pydantic import Sarif
from typer.testing import CliRunner

from auditor.cli import app
from auditor.report import json_report
from tests.report_cases import EXAMPLES, write_tree
from tests.test_report_sarif import validate as validate_sarif

ENV = {"PGOLF_IN_PROCESS": "1", "NO_COLOR": "1", "COLUMNS": "120"}  # workers add nothing to what is rendered


def audit(*args: str, cwd=None, monkeypatch=None):
    if cwd is not None:
        monkeypatch.chdir(cwd)
    return CliRunner().invoke(app, ["audit", "-q", *args], env=ENV)


@pytest.fixture()
def tree(tmp_path, monkeypatch):
    folders = write_tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    return {k: str(v.relative_to(tmp_path)) for k, v in folders.items()}


def test_exit_codes(tree):
    only = ["--rule", "SUBMISSION-FILES"]
    assert audit(tree["pass"], *only).exit_code == 0
    assert audit(tree["fail"], *only).exit_code == 1  # an error finding
    assert audit(tree["needs-review"], *only).exit_code == 0  # warnings pass the default --fail-on error
    assert audit(tree["needs-review"], *only, "--fail-on", "warning").exit_code == 1
    assert audit(tree["fail"], *only, "--fail-on", "never").exit_code == 0
    assert audit("no/such/folder").exit_code == 2  # nothing readable
    assert audit(tree["pass"], "--format", "yaml").exit_code == 2  # usage error
    assert audit(tree["pass"], "--fail-on", "sometimes").exit_code == 2


@pytest.mark.parametrize("fmt", ["text", "json", "markdown", "sarif", "github"])
def test_every_format_to_a_file(tree, tmp_path, fmt):
    out = tmp_path / f"report.{fmt}"
    r = audit("records", "--rule", "SUBMISSION-FILES", "--format", fmt, "--output", str(out))
    assert r.exit_code == 1, r.output
    text = out.read_text(encoding="utf-8")
    assert "No#Code" in text or "No%23Code" in text
    if fmt == "json":
        jsonschema.validate(json.loads(text), json_report.schema())
    if fmt == "sarif":
        validate_sarif(text)


def test_relative_paths_from_the_checkout(tree):
    r = audit("records", "--rule", "SUBMISSION-FILES", "--format", "github")
    assert "file=records/track_10min_16mb/2026-01-03_No#Code/submission.json" in r.stdout


needs_examples = pytest.mark.skipif(not any(EXAMPLES.glob("*/*")), reason="no examples/records yet")


@needs_examples
def test_examples_sarif_validates(monkeypatch):
    monkeypatch.chdir(EXAMPLES.parents[1])
    r = audit("examples/records", "--format", "sarif")
    assert r.exit_code == 1, r.output  # several examples break the rules on purpose (examples/README.md)
    doc = validate_sarif(r.stdout)
    Sarif.model_validate(doc)
    for res in doc["runs"][0]["results"]:
        assert res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].startswith("examples/records")


@needs_examples
def test_examples_json_validates_against_shipped_schema(monkeypatch):
    monkeypatch.chdir(EXAMPLES.parents[1])
    r = audit("examples/records", "--format", "json")
    assert r.exit_code == 1, r.output
    doc = json.loads(r.stdout)
    jsonschema.Draft202012Validator(json_report.schema()).validate(doc)
    assert not [r["path"] for r in doc["records"] if r["path"] == "examples/records"]
    assert len(doc["records"]) == len([p for p in EXAMPLES.glob("*/*") if p.is_dir()])
