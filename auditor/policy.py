"""Severity policy, in one place: verdicts from findings, and how reachability lowers severity."""
from __future__ import annotations

from auditor.model import VERDICT_FAIL, VERDICT_PASS, VERDICT_REVIEW, Finding, RecordResult, Severity

# --- the choices every entry point offers (CLI, config file, GitHub Action), in one place -----------

FAIL_ON = ("error", "warning", "info", "never")  # exit 1 at or above this severity; "never" never fails
DEFAULT_FAIL_ON = "error"
# Dated rulebooks: the significance rule changed with the leaderboard practice of 2026-04-28.
RULEBOOKS = {
    "2026-03-18": "README rule: 0.005 nats at p < 0.01 against the previous record",
    "2026-04-28": "leaderboard practice: bpb improvement, one-sided p < 0.25",
}
DEFAULT_RULEBOOK = "2026-04-28"
FORMATS = ("text", "json", "markdown", "sarif", "github")  # auditor.report.FORMATS maps each to its renderer
DEFAULT_FORMAT = "text"

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
    if worst is Severity.ERROR:
        return VERDICT_FAIL
    if worst is Severity.WARNING or rec.errors or _self_suppressed_error(rec):
        return VERDICT_REVIEW
    return VERDICT_PASS
