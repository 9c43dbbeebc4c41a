"""The JSON report. Its field names are an interface: extend, never rename (schema.json)."""
from __future__ import annotations

import enum
import json
import math
from typing import Any

from auditor.model import Finding, Problem, RecordResult, Report
from auditor.report import common as C

SCHEMA_VERSION = 1


def _clean(x: Any) -> Any:
    """Plain JSON values only: NaN/inf become null, enums their value, sets sorted lists, and any
    other object its str (``measured.extra`` and ``stats.extra`` are open to every rule author)."""
    if isinstance(x, enum.Enum):
        x = x.value
    if x is None or isinstance(x, (bool, int, str)):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (set, frozenset)):
        return [_clean(v) for v in sorted(x, key=str)]
    return str(x)


def finding_json(f: Finding) -> dict[str, Any]:
    return {
        "rule": f.rule,
        "code": f.code,
        "severity": f.severity.value,
        "file": f.file,
        "line": f.line if isinstance(f.line, int) and f.line >= 1 else None,  # 1-based or null
        "message": f.message,
        "evidence": list(f.evidence),
        "ruling": f.ruling,
        "fix": f.fix,
        "path": list(f.path),
        "reachability": f.reachability,
        "note": f.note,
        "waived": f.waived,
    }


def problem_json(p: Problem) -> dict[str, Any]:
    return {"file": p.file, "message": p.message}


def record_json(r: RecordResult) -> dict[str, Any]:
    return {
        "path": r.path,
        "track": r.track,
        "verdict": r.verdict,
        "claims": r.claims.to_json(),
        "measured": r.measured.to_json(),
        "stats": r.stats.to_json() if r.stats else None,
        "findings": [finding_json(f) for f in r.findings],
        "errors": [problem_json(p) for p in r.errors],
        "seconds": round(r.seconds, 4),
        # added with the leaderboard: the score without the illegal eval-time stage (auditor.admissible)
        "admissible": r.admissible.to_json() if r.admissible is not None else None,
    }


def tool_json(report: Report) -> dict[str, Any]:
    import auditor

    return {"name": "pgolf", "version": auditor.__version__, **report.tool}


def summary_json(report: Report) -> dict[str, Any]:
    findings = {"error": 0, "warning": 0, "info": 0, "waived": 0}
    for r in report.records:
        for k, v in C.counts(r).items():
            findings[k] += v
    return {"records": len(report.records), "verdicts": C.verdict_counts(report), "findings": findings,
            "errors": len(report.errors) + sum(len(r.errors) for r in report.records)}


def report_json(report: Report) -> dict[str, Any]:
    # "verdict" (the worst over all records, null when nothing was readable) and "summary" were
    # added after the first fields; readers of schema_version 1 may rely on everything below.
    return _clean({
        "schema_version": SCHEMA_VERSION,
        "tool": tool_json(report),
        "verdict": C.overall_verdict(report),
        "summary": summary_json(report),
        "records": [record_json(r) for r in report.records],
        "errors": [problem_json(p) for p in report.errors],
    })


def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) this report follows; shipped as ``auditor/report/schema.json``."""
    from importlib.resources import files

    return json.loads(files("auditor.report").joinpath("schema.json").read_text(encoding="utf-8"))


def render(report: Report, **_: Any) -> str:
    text = json.dumps(report_json(report), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    return C.printable(text)
