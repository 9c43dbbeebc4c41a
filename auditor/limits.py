"""The limits of an audit, in one place: per-folder time and memory of a worker, output caps, and
the sanitising of report text for terminals. Every entry point (``pgolf audit``, the GitHub Action,
the pre-commit hook) takes its limits from here, so none of them audits with fewer protections.
"""
from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, fields, is_dataclass
from enum import Enum
from typing import Any

from auditor.model import Problem, RecordResult, Report

DEFAULT_FOLDER_TIMEOUT_S = 120.0  # a real folder audits in well under a second
DEFAULT_WORKER_MEMORY_MB = 4096
ENV_TIMEOUT = "PGOLF_FOLDER_TIMEOUT"  # seconds per folder
ENV_MEMORY = "PGOLF_WORKER_MEMORY_MB"  # address-space cap of a worker; 0 = none
ENV_IN_PROCESS = "PGOLF_IN_PROCESS"  # "1": audit in this process (debugging; no isolation, no time limit)
HUMAN_FORMATS = ("text", "markdown", "github")


@dataclass
class Caps:
    """Output caps: a folder with a million findings still gives a readable, bounded report."""

    findings_per_rule: int = 50  # per folder
    findings_per_record: int = 300
    evidence_lines: int = 20
    evidence_chars: int = 500
    text_chars: int = 2000  # message, fix, note
    path_steps: int = 50
    errors_per_record: int = 100
    report_errors: int = 1000


def folder_timeout(given: float | None = None) -> float:
    """The per-folder time limit: the caller's, else ``PGOLF_FOLDER_TIMEOUT``, else the default."""
    return given if given is not None else _env_float(ENV_TIMEOUT, DEFAULT_FOLDER_TIMEOUT_S)


def worker_memory_mb(given: int | None = None) -> int:
    return given if given is not None else _env_int(ENV_MEMORY, DEFAULT_WORKER_MEMORY_MB)


def in_process_requested() -> bool:
    return os.environ.get(ENV_IN_PROCESS) == "1"


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, "") or default)
    except ValueError:
        return default


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, "") or default)
    except ValueError:
        return default


# What one worker may send back for one folder (the pickled, already capped result); the main
# process refuses more, so no folder can grow the main process's memory by much.
MAX_ANSWER_BYTES = 8 * 1024 * 1024


# --- output caps and sanitising -------------------------------------------------------------------

def cap_record(rec: RecordResult, caps: Caps) -> RecordResult:
    """Bound one folder's findings and errors; what is dropped is counted in one line. Idempotent."""
    if getattr(rec, "_capped", None) == caps:
        return rec
    from auditor.evidence.submission import cap_claims

    cap_claims(rec.claims)  # the parsed submission.json stays in the worker
    order = sorted(rec.findings, key=lambda f: (f.waived is not None, -f.severity.rank))  # stable: keeps rule order
    kept, per_rule, dropped = [], Counter(), Counter()
    for f in order:
        if per_rule[f.rule] >= caps.findings_per_rule or len(kept) >= caps.findings_per_record:
            dropped[f.rule] += 1
            continue
        per_rule[f.rule] += 1
        kept.append(f)
    if dropped:
        kept_ids = {id(f) for f in kept}
        rec.findings = [f for f in rec.findings if id(f) in kept_ids]
    for f in rec.findings:
        f.message = _cut(f.message, caps.text_chars)
        f.fix = _cut(f.fix, caps.text_chars)
        f.note = _cut(f.note, caps.text_chars) if f.note else f.note
        more = len(f.evidence) - caps.evidence_lines
        f.evidence = [_cut(e, caps.evidence_chars) for e in f.evidence[: caps.evidence_lines]]
        if more > 0:
            f.evidence.append(f"… {more} more lines not shown")
        f.path = [_cut(p, caps.evidence_chars) for p in f.path[: caps.path_steps]]
    extra = len(rec.errors) - caps.errors_per_record
    rec.errors = rec.errors[: caps.errors_per_record]
    for p in rec.errors:
        p.file, p.message = _cut(p.file, caps.evidence_chars), _cut(p.message, caps.text_chars)
    if extra > 0:
        rec.errors.append(Problem(rec.path, f"{extra} more unreadable items not shown (report cap)"))
    if dropped:
        which = ", ".join(f"{r} ×{c}" for r, c in sorted(dropped.items()))
        rec.errors.append(Problem(rec.path, f"{sum(dropped.values())} more findings not shown (report caps: "
                                            f"{caps.findings_per_rule} per rule, {caps.findings_per_record} per folder): {which}"))
    rec._capped = caps  # travels with the record (pickled __dict__), so the parent does not cap twice
    return rec


def cap_report(report: Report, caps: Caps, human: bool = False) -> Report:
    for rec in report.records:
        cap_record(rec, caps)
    extra = len(report.errors) - caps.report_errors
    report.errors = report.errors[: caps.report_errors]
    if extra > 0:
        report.errors.append(Problem(".", f"{extra} more problems not shown (report cap)"))
    for p in report.errors:
        p.file, p.message = _cut(p.file, caps.evidence_chars), _cut(p.message, caps.text_chars)
    if human:
        sanitize(report)
    return report


def _cut(text: str, limit: int) -> str:
    if not isinstance(text, str) or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


# C0/C1 controls (ANSI escapes, carriage returns that redraw a terminal line), bidi overrides
# ("Trojan Source"), and lone surrogates from undecodable file names.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSAFE_NL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_MULTILINE_FIELDS = {"message", "fix", "ruling", "note"}  # rule-written text may span lines


def _escape(m: re.Match) -> str:
    ch = m.group(0)
    o = ord(ch)
    if ch == "\n":
        return "\\n"
    if 0xDC80 <= o <= 0xDCFF:  # surrogateescape of an undecodable byte
        return f"\\x{o - 0xDC00:02x}"
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"


def _clean(text: str, one_line: bool) -> str:
    return (_UNSAFE_NL if one_line else _UNSAFE).sub(_escape, text)


def sanitize(obj: Any, field_name: str = "", depth: int = 0) -> Any:
    """Escape terminal control characters in every string of a report (human formats only: JSON
    and SARIF escape them already). Mutates dataclasses in place; returns the cleaned value."""
    if depth > 20:
        return obj
    if isinstance(obj, Enum):
        return obj
    if isinstance(obj, str):
        return _clean(obj, field_name not in _MULTILINE_FIELDS)
    if is_dataclass(obj) and not isinstance(obj, type):
        for f in fields(obj):
            if f.name == "raw":  # the parsed submission.json, never rendered as is
                continue
            setattr(obj, f.name, sanitize(getattr(obj, f.name), f.name, depth + 1))
        return obj
    if isinstance(obj, list):
        return [sanitize(v, field_name, depth + 1) for v in obj]
    if isinstance(obj, tuple):
        return tuple(sanitize(v, field_name, depth + 1) for v in obj)
    if isinstance(obj, dict):
        return {sanitize(k, "key", depth + 1): sanitize(v, field_name, depth + 1) for k, v in obj.items()}
    return obj


def clean_line(text: str) -> str:
    """One line for a terminal: control characters escaped, newlines too."""
    return _clean(text, True)
