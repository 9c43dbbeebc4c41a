"""Any text a submission can put in a finding keeps every format well-formed."""
from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.model import Claims, Finding, RecordResult, Report, Severity
from auditor.report import render
from tests.report_cases import COMMAND_RE, unescape
from tests.test_report_markdown import _balanced
from tests.test_report_sarif import validate

# Printable text plus the characters that break formats: newlines, CR, '%', ':', ',', backticks, HTML, '|'.
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)) | st.sampled_from(list("\n\r%:,`<>|[]@#\\*_~")), max_size=80)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message=TEXT, evidence=st.lists(TEXT, max_size=4), file=TEXT, folder=TEXT, waived=st.none() | TEXT,
       sev=st.sampled_from(list(Severity)), line=st.none() | st.integers(min_value=-3, max_value=10**6))
def test_formats_stay_well_formed(message, evidence, file, folder, waived, sev, line):
    f = Finding("REPORT-CONSISTENCY", sev, file.replace("\n", ""), line, message, evidence=evidence, waived=waived)
    rec = RecordResult(path="records/" + (folder.replace("\n", "") or "x"), verdict="fail", claims=Claims(file="submission.json"),
                       findings=[f])
    rep = Report(records=[rec], root="/tmp/checkout")

    doc = json.loads(render(rep, "json"))
    assert doc["records"][0]["findings"][0]["message"] == message

    validate(render(rep, "sarif"))

    lines = render(rep, "github").rstrip("\n").split("\n")
    m = COMMAND_RE.match(lines[0])
    assert m, lines[0]
    assert len(lines) == 2 and lines[1].startswith("pgolf: ")
    assert message.strip() in unescape(m.group(3))  # every character survives escaping

    md = render(rep, "markdown")
    _balanced(md)
    render(rep, "text", color=False).encode("utf-8")
