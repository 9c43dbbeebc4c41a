"""Terminal report (rich). PLACEHOLDER: the report work makes this the full summary+findings view."""
from __future__ import annotations

from typing import Any

from auditor.model import Report


def render(report: Report, **_: Any) -> str:
    lines = []
    for r in report.records:
        lines.append(f"{r.verdict.upper():13} {r.path}")
        for f in r.findings:
            loc = f"{f.file}:{f.line}" if f.line else f.file
            lines.append(f"  {f.severity.value:7} {f.rule} {loc}: {f.message}")
        for p in r.errors:
            lines.append(f"  unreadable {p.line()}")
    for p in report.errors:
        lines.append(f"error: {p.line()}")
    return "\n".join(lines) + "\n"
