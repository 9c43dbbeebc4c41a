"""`pgolf audit --statistics`: how often each rule fired, like ``ruff --statistics``.

One line per rule, most frequent first: the count of live findings, the code, the rule id, the
severities, and in how many folders. Waived findings are counted apart. JSON output gives the same
rows as a list (``--format json``); every other format prints the text table.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

from auditor.model import Report
from auditor.report import common as C


def rows(report: Report) -> list[dict[str, Any]]:
    live: Counter = Counter()
    waived: Counter = Counter()
    code: dict[str, str] = {}
    severities: dict[str, Counter] = defaultdict(Counter)
    folders: dict[str, set] = defaultdict(set)
    for rec in report.records:
        for f in rec.findings:
            code.setdefault(f.rule, f.code or "")
            if f.waived is not None:
                waived[f.rule] += 1
                continue
            live[f.rule] += 1
            severities[f.rule][f.severity.value] += 1
            folders[f.rule].add(rec.path)
    out = []
    for rule in sorted(set(live) | set(waived), key=lambda r: (-live[r], r)):
        out.append({"rule": rule, "code": code.get(rule, ""), "count": live[rule], "waived": waived[rule],
                    "folders": len(folders[rule]),
                    "severity": {k: severities[rule][k] for k in ("error", "warning", "info") if severities[rule][k]}})
    return out


def render(report: Report, fmt: str = "text", *, elapsed: float | None = None, **_: Any) -> str:
    table = rows(report)
    if fmt == "json":
        return json.dumps({"statistics": table, "folders": len(report.records)}, indent=2) + "\n"
    if not table:
        lines = ["no findings"]
    else:
        cw = max(len(str(r["count"])) for r in table)
        code_w = max(len(r["code"]) for r in table)
        rule_w = max(len(r["rule"]) for r in table)
        lines = []
        for r in table:
            sev = ", ".join(f"{n} {k}" for k, n in r["severity"].items())
            extra = [sev] if sev else []
            extra.append(C.plural(r["folders"], "folder"))
            if r["waived"]:
                extra.append(f"{r['waived']} waived")
            lines.append(f"{r['count']:>{cw}}  {r['code']:<{code_w}}  {r['rule']:<{rule_w}}  {'; '.join(extra)}")
    from auditor.report.text import _totals

    lines.append(_totals(report, elapsed).plain if report.records else "nothing readable: no record folder could be audited")
    return C.printable("\n".join(lines) + "\n")
