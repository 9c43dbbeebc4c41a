"""What a rule sees: the evidence of one record folder, the options, and facts computed once."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from auditor.evidence import Evidence
from auditor.model import Measured, Stats
from auditor.policy import DEFAULT_RULEBOOK


@dataclass
class AuditOptions:
    against: list[str] = field(default_factory=list)  # previous record folder(s) for STATS-*
    rulebook: str = DEFAULT_RULEBOOK  # dated rulebook (auditor.policy.RULEBOOKS); default the latest
    only_rules: set[str] | None = None  # run only these rule ids (tests, `--rule`)
    waivers_file: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class AuditContext:
    evidence: Evidence
    options: AuditOptions = field(default_factory=AuditOptions)
    measured: Measured = field(default_factory=Measured)
    stats: Stats | None = None
    cache: dict[str, Any] = field(default_factory=dict)  # facts shared between rules, built once

    def fact(self, key: str, build):
        """Compute a shared fact once per folder (e.g. the code analysis) and reuse it."""
        if key not in self.cache:
            self.cache[key] = build(self)
        return self.cache[key]
