"""What a dynamic probe returns, shared by the scorer probes (``probes``) and the whole-script probe
(``probe_script``) so neither imports the other."""
from __future__ import annotations

from dataclasses import dataclass, field

from auditor.model import Finding, Severity

RULES_URL = "https://github.com/openai/parameter-golf/issues/1017"


@dataclass
class ProbeOutcome:
    target: str
    findings: list[Finding] = field(default_factory=list)
    numbers: dict = field(default_factory=dict)


def probe_finding(rule: str, sev: Severity, file: str, line: int | None, msg: str, evidence: list[str], fix: str) -> Finding:
    from auditor.reproduce.catalog import entry

    e = entry(rule)
    extra = {"code": e.code, "title": e.title, "family": e.family} if e else {}
    return Finding(rule=rule, severity=sev, file=file, line=line, message=msg, evidence=evidence, ruling=RULES_URL, fix=fix, **extra)
