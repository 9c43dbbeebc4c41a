"""Reading the adversarial suite's manifest and judging an audit result against it (shared by
tests/test_adversarial.py and benchmarks/bench_adversarial.py)."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from auditor.model import RecordResult, Severity

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "manifest.toml"
KNOWN_MISSES = HERE / "known_misses.txt"
UNCHECKED = "could not be checked"

CAUGHT, REVIEW, MISSED, FALSE_ERROR, CLEAN = "caught", "needs-review", "missed", "false-error", "clean"


@dataclass(frozen=True)
class Expectation:
    rel: str  # records/<track>/<folder>, relative to tests/adversarial
    legal: bool
    klass: int
    title: str
    rules: tuple[str, ...] = ()
    severity: str = "error"
    accept_unchecked: bool = False

    @property
    def name(self) -> str:
        return self.rel.rsplit("/", 1)[-1]


def load_manifest(path: Path = MANIFEST) -> dict[str, Expectation]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    out = {}
    for rel, e in data.items():
        exp = Expectation(rel=rel, legal=bool(e["legal"]), klass=int(e["class"]), title=e["title"],
                          rules=tuple(e.get("rules", ())), severity=e.get("severity", "error"),
                          accept_unchecked="could not be checked" in e.get("accept", ""))
        out[exp.name] = exp
    return out


def load_known_misses(path: Path = KNOWN_MISSES) -> dict[str, str]:
    """folder name -> why it is missed today. Lines: ``<folder>  # reason``; blank and # lines skipped."""
    out = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, why = line.partition("#")
        out[name.strip()] = why.strip()
    return out


def judge(exp: Expectation, rec: RecordResult) -> tuple[str, str]:
    """(outcome, detail). Illegal: caught | needs-review (accepted only for class 9) | missed.
    Legal: clean | false-error."""
    live = [f for f in rec.findings if not f.waived]
    if exp.legal:
        errors = [f for f in live if f.severity is Severity.ERROR]
        if errors:
            return FALSE_ERROR, "; ".join(f"{f.rule} {f.file}:{f.line} {f.message[:100]}" for f in errors)
        warn = [f.rule for f in live if f.severity is Severity.WARNING]
        return CLEAN, f"warnings: {', '.join(sorted(set(warn)))}" if warn else ""
    need = Severity.parse(exp.severity).rank
    hits = [f for f in live if f.rule in exp.rules and f.severity.rank >= need]
    if hits:
        return CAUGHT, "; ".join(sorted({f"{f.rule}:{f.severity.value}" for f in hits}))
    unchecked = [f for f in live if f.severity.rank >= Severity.WARNING.rank and UNCHECKED in f.message]
    if exp.accept_unchecked and unchecked and rec.verdict != "pass":
        return REVIEW, f"{unchecked[0].rule}: {unchecked[0].message[:100]}"
    seen = sorted({f"{f.rule}:{f.severity.value}" for f in live if f.severity.rank >= Severity.WARNING.rank})
    return MISSED, f"verdict {rec.verdict}; findings: {', '.join(seen) or 'none'}"


def ok(exp: Expectation, outcome: str) -> bool:
    return outcome == CLEAN if exp.legal else outcome in (CAUGHT, REVIEW)
