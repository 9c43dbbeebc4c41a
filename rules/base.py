"""The rule contract: a rule is a small class with its id, its ruling, its fix, and the VALID and
INVALID cases that are also its tests (Fixit style). ``check`` reads the facts in an
``AuditContext`` and yields findings; it never imports or executes submission code.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Iterable

from auditor.model import Finding, Severity

if TYPE_CHECKING:  # pragma: no cover
    from auditor.context import AuditContext


@dataclass
class Case:
    """One example record folder for a rule's tests.

    ``files`` maps relative paths to contents; a bare string is the folder's ``train_gpt.py``.
    VALID cases must yield no finding of the rule at warning or above; INVALID cases must yield
    at least one at ``expect`` or above (and on ``line`` of ``file`` when given).
    """

    files: dict[str, str] | str
    expect: Severity = Severity.ERROR
    line: int | None = None
    file: str | None = None
    note: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    track: str = "track_10min_16mb"

    def file_map(self) -> dict[str, str]:
        if isinstance(self.files, str):
            return {"train_gpt.py": textwrap.dedent(self.files).lstrip("\n")}
        return {k: textwrap.dedent(v).lstrip("\n") if k.endswith(".py") else v for k, v in self.files.items()}


def Valid(files: dict[str, str] | str, note: str = "", **kw) -> Case:
    return Case(files, expect=Severity.WARNING, note=note, **kw)


def Invalid(files: dict[str, str] | str, expect: Severity = Severity.ERROR, line: int | None = None, note: str = "", **kw) -> Case:
    return Case(files, expect=expect, line=line, note=note, **kw)


class Rule:
    id: ClassVar[str]  # catalog id from rules.md, e.g. "NGRAM-TARGET-IN-KEY"
    code: ClassVar[str]  # short code, e.g. "PG101"
    title: ClassVar[str]  # the one-line message
    family: ClassVar[str] = "misc"  # eval | ngram | ttt | slot | data | net | artifact | time | stats | tokenizer | report | submission
    ruling: ClassVar[str] = ""  # link to the ruling
    fix: ClassVar[str] = ""
    default_severity: ClassVar[Severity] = Severity.ERROR
    reports_under: ClassVar[tuple[str, ...]] = ()  # sibling ids this rule may also report under
    VALID: ClassVar[list[Case]] = []
    INVALID: ClassVar[list[Case]] = []

    def check(self, ctx: "AuditContext") -> Iterable[Finding]:  # pragma: no cover - abstract
        raise NotImplementedError

    # Findings carry the rule's own ruling and fix unless the caller has a more precise one.
    def finding(
        self,
        file: str,
        line: int | None,
        message: str,
        *,
        evidence: list[str] | None = None,
        severity: Severity | None = None,
        fix: str | None = None,
        ruling: str | None = None,
        path: list[str] | None = None,
        reachability: str | None = None,
        note: str | None = None,
        rule: str | None = None,
    ) -> Finding:
        # ``rule`` lets a check report under a sibling catalog id (e.g. log evidence of a stage the
        # code lacks is a REPORT-CONSISTENCY finding raised by an eval-integrity rule); the finding
        # then carries the sibling's code, title and family, so `--rule SIBLING` and the catalog agree.
        # (``--rule SIBLING`` runs this rule only when the sibling is in its ``reports_under``; a test
        # checks every rule module declares the ids it reports under.)
        owner = type(self) if rule is None or rule == self.id else _REGISTRY.get(rule)
        if owner is None:
            raise KeyError(f"{self.id} reports under {rule!r}, which is no registered rule")
        return Finding(
            rule=owner.id,
            severity=severity or self.default_severity,
            file=file,
            line=line,
            message=message,
            evidence=list(evidence or []),
            ruling=ruling or self.ruling,
            fix=fix or self.fix,
            code=owner.code,
            path=list(path or []),
            reachability=reachability,
            note=note,
            title=owner.title,
            family=owner.family,
        )

    @classmethod
    def doc(cls) -> str:
        return textwrap.dedent(cls.__doc__ or "").strip()


_REGISTRY: dict[str, type[Rule]] = {}


def register(cls: type[Rule]) -> type[Rule]:
    if cls.id in _REGISTRY and _REGISTRY[cls.id] is not cls:
        raise ValueError(f"duplicate rule id {cls.id}")
    _REGISTRY[cls.id] = cls
    return cls


def registry() -> dict[str, type[Rule]]:
    return _REGISTRY
