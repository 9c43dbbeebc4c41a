"""Property tests for the renderers: any Report → JSON that parses and validates against the report
schema, SARIF that validates, and human formats that render (after the runner's caps and
sanitising, as `pgolf audit` does) without raw terminal control characters."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.model import (VERDICT_FAIL, VERDICT_PASS, VERDICT_REVIEW, Claims, Finding, Measured, Problem, RecordResult,
                           Report, SeedMeasure, Severity, Stats)
from auditor.report import render
from auditor.runner import Caps, cap_report

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "auditor" / "report" / "schema.json").read_text())
VALIDATOR = jsonschema.validators.validator_for(SCHEMA)(SCHEMA)
FUZZ = settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))

try:  # the SARIF tests' own validator (sarif-pydantic plus structural checks), when present
    from tests.test_report_sarif import validate as validate_sarif
except Exception:  # pragma: no cover - fall back to the model alone
    from sarif_pydantic import Sarif

    def validate_sarif(text: str) -> dict:
        doc = json.loads(text)
        Sarif.model_validate(doc)
        return doc


def _rule_ids() -> list[str]:
    try:
        import rules

        return sorted(rules.load_all())
    except Exception:
        return ["SUBMISSION-FILES"]


# any code point, lone surrogates included: file names that are not UTF-8 come back as surrogates
odd_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=30) | st.sampled_from(
    ["", "a\nb", "\x1b[31mred\x1b[0m", "::error::x", "%0A", "| a | b |", "<script>", "\u202eevil", "x" * 3000, "../../etc/passwd",
     "C:\\win\\path", "file:///x", "100%"])
floats = st.floats(allow_nan=True, allow_infinity=True) | st.none()
ints = st.integers(-10**18, 10**18) | st.none()
severity = st.sampled_from(list(Severity))
rule_ids = st.sampled_from(_rule_ids()) | st.text("ABCDEFGH-", min_size=1, max_size=12)

findings = st.builds(
    Finding, rule=rule_ids, severity=severity, file=odd_text, line=st.none() | st.integers(-3, 10**7), message=odd_text,
    evidence=st.lists(odd_text, max_size=4), ruling=odd_text, fix=odd_text, code=st.text(max_size=6),
    path=st.lists(odd_text, max_size=3), reachability=st.none() | st.sampled_from(["unreachable", "non-default", "reachable"]),
    note=st.none() | odd_text, waived=st.none() | odd_text)
problems = st.builds(Problem, file=odd_text, message=odd_text)
seeds = st.builds(SeedMeasure, seed=ints, val_bpb=floats, val_loss=floats, label=st.none() | odd_text, train_time_ms=floats,
                  eval_time_ms=floats, bytes_total=ints, bytes_code=ints, log=odd_text, world_size=ints)
claims = st.builds(Claims, file=st.none() | odd_text, val_bpb=floats, val_loss=floats, bytes_total=ints, bytes_code=ints,
                   val_bpb_std=floats, seeds=st.lists(st.integers(-5, 10**9), max_size=4),
                   track=st.none() | st.sampled_from(["10min", "non_record"]), author=st.none() | odd_text,
                   github_id=st.none() | odd_text, name=st.none() | odd_text, date=st.none() | odd_text)
measured = st.builds(Measured, val_bpb=floats, val_loss=floats, seeds=st.lists(seeds, max_size=4), bytes_code=ints,
                     bytes_model=ints, bytes_total=ints, bytes_source=st.none() | st.sampled_from(["measured", "logged", "claimed"]))
stats = st.none() | st.builds(Stats, n_seeds=st.integers(0, 9), mean_bpb=floats, std_bpb=floats, against=st.none() | odd_text,
                              delta_nats=floats, p_readme=floats, p_practice=floats)
records = st.builds(
    RecordResult, path=odd_text.filter(bool), track=st.none() | st.sampled_from(["10min", "non_record"]),
    verdict=st.sampled_from([VERDICT_PASS, VERDICT_REVIEW, VERDICT_FAIL]), claims=claims, measured=measured, stats=stats,
    findings=st.lists(findings, max_size=6), errors=st.lists(problems, max_size=3),
    seconds=st.floats(0, 1e6))
reports = st.builds(Report, records=st.lists(records, max_size=4), errors=st.lists(problems, max_size=3),
                    tool=st.just({"name": "pgolf", "version": "0.1.0", "information_uri": "https://github.com/openai/parameter-golf"}),
                    root=st.sampled_from([".", "/tmp/x", "/"]))


def _as_cli(report: Report, fmt: str) -> str:
    """Render as `pgolf audit` does: caps, sanitising for human formats, UTF-8 safe text."""
    cap_report(report, Caps(), human=fmt in ("text", "markdown", "github"))
    return render(report, fmt).encode("utf-8", "backslashreplace").decode("utf-8")


@FUZZ
@given(reports)
def test_json_report_always_parses_and_validates(report):
    doc = json.loads(_as_cli(report, "json"))
    VALIDATOR.validate(doc)
    assert len(doc["records"]) == len(report.records)


@FUZZ
@given(reports)
def test_sarif_always_validates(report):
    validate_sarif(_as_cli(report, "sarif"))


@FUZZ
@given(reports, st.sampled_from(["text", "markdown", "github"]))
def test_human_formats_render_without_terminal_controls(report, fmt):
    out = _as_cli(report, fmt)
    assert isinstance(out, str)
    assert "\x1b" not in out and "\u202e" not in out
