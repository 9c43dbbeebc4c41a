"""The JSON report. Its field names are an interface: extend, never rename (schema.json)."""
from __future__ import annotations

import json
import math
from typing import Any

from auditor.model import Finding, Problem, RecordResult, Report

SCHEMA_VERSION = 1


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def finding_json(f: Finding) -> dict[str, Any]:
    return {
        "rule": f.rule,
        "code": f.code,
        "severity": f.severity.value,
        "file": f.file,
        "line": f.line,
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
    }


def report_json(report: Report) -> dict[str, Any]:
    return _clean({
        "schema_version": SCHEMA_VERSION,
        "tool": report.tool,
        "records": [record_json(r) for r in report.records],
        "errors": [problem_json(p) for p in report.errors],
    })


def render(report: Report, **_: Any) -> str:
    return json.dumps(report_json(report), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
