"""The verdict policy and the exit code, finding by finding: what fails a folder, what only asks for
review, what a waiver or an entrant's own suppression changes, and where --fail-on draws the line."""
from __future__ import annotations

import pytest

from auditor.model import VERDICT_FAIL, VERDICT_PASS, VERDICT_REVIEW, Finding, Problem, RecordResult, Report, Severity
from auditor.policy import NON_DEFAULT, UNREACHABLE, apply_reachability, verdict
from auditor.waivers import SUPPRESSED_PREFIX


def f(sev: Severity, waived: str | None = None) -> Finding:
    return Finding("NGRAM-TARGET-IN-KEY", sev, "train_gpt.py", 3, "m", waived=waived)


def rec(*findings: Finding, errors: int = 0) -> RecordResult:
    return RecordResult(path="r", findings=list(findings), errors=[Problem("x.log", "unreadable")] * errors)


@pytest.mark.parametrize("findings,errors,expected", [
    ((), 0, VERDICT_PASS),
    ((f(Severity.INFO),), 0, VERDICT_PASS),
    ((f(Severity.WARNING),), 0, VERDICT_REVIEW),
    ((f(Severity.ERROR),), 0, VERDICT_FAIL),
    ((f(Severity.INFO), f(Severity.ERROR), f(Severity.WARNING)), 0, VERDICT_FAIL),
    ((), 1, VERDICT_REVIEW),  # an unreadable item is never a pass
    ((f(Severity.INFO),), 1, VERDICT_REVIEW),
    ((f(Severity.ERROR),), 1, VERDICT_FAIL),
    ((f(Severity.ERROR, waived="reviewed in #864 (alice)"),), 0, VERDICT_PASS),  # a reviewer's waiver
    ((f(Severity.WARNING, waived="reviewed (alice)"),), 0, VERDICT_PASS),
    ((f(Severity.ERROR, waived=f"{SUPPRESSED_PREFIX} train_gpt.py:3: mine"),), 0, VERDICT_REVIEW),  # the entrant's own
    ((f(Severity.WARNING, waived=f"{SUPPRESSED_PREFIX} train_gpt.py:3: mine"),), 0, VERDICT_PASS),
    ((f(Severity.ERROR, waived=f"{SUPPRESSED_PREFIX} train_gpt.py:3: mine"), f(Severity.WARNING)), 0, VERDICT_REVIEW),
])
def test_verdict(findings, errors, expected):
    assert verdict(rec(*findings, errors=errors)) == expected


@pytest.mark.parametrize("sev,reach,expected", [
    (Severity.ERROR, UNREACHABLE, Severity.INFO),
    (Severity.WARNING, UNREACHABLE, Severity.INFO),
    (Severity.INFO, UNREACHABLE, Severity.INFO),
    (Severity.ERROR, NON_DEFAULT, Severity.WARNING),
    (Severity.WARNING, NON_DEFAULT, Severity.WARNING),
    (Severity.INFO, NON_DEFAULT, Severity.INFO),  # never raised
    (Severity.ERROR, None, Severity.ERROR),
    (Severity.ERROR, "reachable", Severity.ERROR),
])
def test_reachability_only_lowers(sev, reach, expected):
    assert apply_reachability(f(sev), reach).severity is expected


@pytest.mark.parametrize("findings,fail_on,code", [
    ((f(Severity.ERROR),), Severity.ERROR, 1),
    ((f(Severity.WARNING),), Severity.ERROR, 0),
    ((f(Severity.WARNING),), Severity.WARNING, 1),
    ((f(Severity.INFO),), Severity.WARNING, 0),
    ((f(Severity.INFO),), Severity.INFO, 1),
    ((f(Severity.ERROR),), None, 0),  # --fail-on never
    ((f(Severity.ERROR, waived="ok (bob)"),), Severity.INFO, 0),  # waived findings never fail
    ((), Severity.INFO, 0),
])
def test_exit_code(findings, fail_on, code):
    assert Report(records=[rec(*findings)]).exit_code(fail_on) == code


def test_nothing_readable_is_exit_2():
    assert Report(records=[]).exit_code(Severity.ERROR) == 2
    assert Report(records=[]).exit_code(None) == 2
