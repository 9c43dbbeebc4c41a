"""Severity policy, in one place: verdicts from findings, and how reachability lowers severity."""
from __future__ import annotations

from auditor.model import VERDICT_FAIL, VERDICT_PASS, VERDICT_REVIEW, Finding, RecordResult, Severity

UNREACHABLE = "unreachable"  # the logged configuration does not run this code
NON_DEFAULT = "non-default"  # reachable only under a flag the logs do not show


def apply_reachability(f: Finding, reach: str | None) -> Finding:
    """A finding on code that does not run under the logged configuration is at most info;
    on code reachable only under a non-default flag the logs do not show, at most warning."""
    if reach == UNREACHABLE and f.severity.rank > Severity.INFO.rank:
        f.severity = Severity.INFO
    elif reach == NON_DEFAULT and f.severity.rank > Severity.WARNING.rank:
        f.severity = Severity.WARNING
    return f


def _self_suppressed_error(rec: RecordResult) -> bool:
    from auditor.waivers import SUPPRESSED_PREFIX

    return any(f.severity is Severity.ERROR and f.waived and f.waived.startswith(SUPPRESSED_PREFIX) for f in rec.findings)


def verdict(rec: RecordResult) -> str:
    """fail on a live error; needs-review on a warning, an unreadable item, or an error that only the
    entrant's own inline suppression silences (a reviewer has not seen it); else pass."""
    worst = rec.worst()
    if worst is Severity.ERROR or (rec.errors and not rec.findings and not rec.claims.raw and not rec.measured.seeds):
        return VERDICT_FAIL if worst is Severity.ERROR else VERDICT_REVIEW
    if worst is Severity.WARNING or rec.errors or _self_suppressed_error(rec):
        return VERDICT_REVIEW
    return VERDICT_PASS
