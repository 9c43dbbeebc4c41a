"""Core types of an audit: plain dataclasses that flow one way.

discover → RecordFolder → read → Evidence (Claims, LogFile/RunLog, CodeBundle)
→ rules → Finding → RecordResult → Report → renderers.

The JSON report is built from these types (``auditor.report.json_report``); its field names are an
interface other tools read, so fields are only ever added, never renamed.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 3, "warning": 2, "info": 1}[self.value]

    @classmethod
    def parse(cls, text: str) -> "Severity":
        return cls(text.strip().lower())


@dataclass
class Problem:
    """Something that could not be read. Rendered as one line: ``file: message``."""

    file: str
    message: str

    def line(self) -> str:
        return f"{self.file}: {self.message}"


@dataclass
class Finding:
    rule: str  # catalog id, e.g. "NGRAM-TARGET-IN-KEY"
    severity: Severity
    file: str  # relative to the record folder ("" for the folder itself)
    line: int | None
    message: str
    evidence: list[str] = field(default_factory=list)  # the lines that prove it, verbatim
    ruling: str = ""  # link to the ruling
    fix: str = ""
    code: str = ""  # short code, e.g. "PG101"
    path: list[str] = field(default_factory=list)  # helper path "fn:line → helper:line"
    reachability: str | None = None
    note: str | None = None  # e.g. "in the code decoded from the lzma wrapper"
    waived: str | None = None  # the waiver's reason when a waiver or suppression covers it
    title: str = ""  # the catalog title of ``rule`` (the id it is reported under)
    family: str = ""  # the catalog family of ``rule``


@dataclass
class RuleInfo:
    """A catalog entry as the renderers need it; the pipeline builds the catalog from the rules, so
    renderers never import them."""

    id: str
    code: str
    title: str
    ruling: str
    fix: str
    family: str
    severity: str  # the rule's default severity


@dataclass
class EvalLine:
    """One evaluation line of a log: ``<label> val_loss:F val_bpb:F ...``."""

    label: str
    val_bpb: float | None
    val_loss: float | None
    line: int  # 1-based line number in the original file
    text: str
    eval_time_ms: float | None = None
    after_stop: bool = False  # printed after the training loop ended


@dataclass
class SizeLine:
    value: int
    line: int
    text: str
    tag: str | None = None  # "int8+zlib", "compressed", ...


@dataclass
class EmbeddedCode:
    """A block of source code a log carries (or the corpus marker that replaced it)."""

    sha256: str
    n_lines: int
    line: int  # where the block starts in the original file
    elided: bool = False  # True when the corpus marker stands in for the code


@dataclass
class RunLog:
    """One run inside a log file (a log may hold several runs)."""

    index: int
    first_line: int
    last_line: int
    seed: int | None = None
    world_size: int | None = None
    grad_accum_steps: int | None = None
    iterations: int | None = None
    steps: int | None = None  # last step reached
    step_avg_ms: float | None = None
    train_time_ms: float | None = None  # from the stop line, else the last step line
    max_wallclock_seconds: float | None = None
    stop: SizeLine | None = None  # the stopping_early line (value = train_time ms)
    evals: list[EvalLine] = field(default_factory=list)
    final: EvalLine | None = None
    code_bytes: SizeLine | None = None
    code_bytes_compressed: SizeLine | None = None
    model_bytes: SizeLine | None = None  # the tagged, compressed artifact model size
    total_bytes: SizeLine | None = None  # the last tagged "Total submission size <tag>"
    total_eval_time_s: float | None = None
    val_tokens: int | None = None
    train_shards: int | None = None
    tokenizer_path: str | None = None
    hyperparameters: dict[str, str] = field(default_factory=dict)
    embedded_code: list[EmbeddedCode] = field(default_factory=list)
    gptq_reserve_s: float | None = None
    markers: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # notable lines by kind
    complete: bool = False  # has a final eval line


@dataclass
class LogFile:
    path: str  # relative to the record folder
    runs: list[RunLog] = field(default_factory=list)
    seed_from_name: int | None = None
    sha256: str = ""
    problems: list[Problem] = field(default_factory=list)
    n_lines: int = 0
    text: str | None = field(default=None, repr=False)  # the decoded text (None when unreadable); rules read this

    @property
    def last_run(self) -> RunLog | None:
        complete = [r for r in self.runs if r.complete]
        if complete:
            return complete[-1]
        return self.runs[-1] if self.runs else None


@dataclass
class Claims:
    """What submission.json says, folded over its many spellings. Numbers or None."""

    file: str | None = None
    val_bpb: float | None = None
    val_loss: float | None = None
    bytes_total: int | None = None
    bytes_code: int | None = None
    val_bpb_std: float | None = None
    seeds: list[int] = field(default_factory=list)
    seed_results: dict[int, dict[str, Any]] = field(default_factory=dict)
    track: str | None = None  # "10min" | "non_record" | None
    author: str | None = None
    github_id: str | None = None
    name: str | None = None
    date: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    repairs: list[str] = field(default_factory=list)  # what the lenient reader had to fix
    problems: list[Problem] = field(default_factory=list)
    key_lines: dict[str, int] = field(default_factory=dict)  # key -> line in the file

    def to_json(self) -> dict[str, Any]:
        return {
            "val_bpb": self.val_bpb,
            "val_loss": self.val_loss,
            "bytes_total": self.bytes_total,
            "bytes_code": self.bytes_code,
            "val_bpb_std": self.val_bpb_std,
            "seeds": list(self.seeds),
            "track": self.track,
            "author": self.author,
            "github_id": self.github_id,
            "name": self.name,
            "date": self.date,
        }


@dataclass
class SeedMeasure:
    seed: int | None
    val_bpb: float | None
    val_loss: float | None
    label: str | None
    train_time_ms: float | None
    eval_time_ms: float | None
    bytes_total: int | None
    bytes_code: int | None
    log: str = ""
    world_size: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "val_bpb": self.val_bpb,
            "val_loss": self.val_loss,
            "label": self.label,
            "train_time_ms": self.train_time_ms,
            "eval_time_ms": self.eval_time_ms,
            "bytes_total": self.bytes_total,
            "bytes_code": self.bytes_code,
            "log": self.log,
            "world_size": self.world_size,
        }


@dataclass
class Measured:
    val_bpb: float | None = None  # mean of the per-seed finals
    val_loss: float | None = None
    seeds: list[SeedMeasure] = field(default_factory=list)
    bytes_code: int | None = None  # measured from the files (artifact rules)
    bytes_model: int | None = None
    bytes_total: int | None = None
    bytes_source: str | None = None  # "measured" | "logged" | "claimed": what the verdict used
    extra: dict[str, Any] = field(default_factory=dict)
    # auditor.measure_bytes.ArtifactFacts: the byte figures the ARTIFACT-* rules judge (not in the JSON;
    # ``bytes_*`` and ``extra["bytes"]`` carry them there)
    artifact: Any = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        out = {
            "val_bpb": self.val_bpb,
            "val_loss": self.val_loss,
            "seeds": [s.to_json() for s in self.seeds],
            "bytes_code": self.bytes_code,
            "bytes_model": self.bytes_model,
            "bytes_total": self.bytes_total,
            "bytes_source": self.bytes_source,
        }
        out.update(self.extra)
        return out


@dataclass
class Stats:
    n_seeds: int = 0
    mean_bpb: float | None = None
    std_bpb: float | None = None
    against: str | None = None
    delta_nats: float | None = None
    p_readme: float | None = None
    p_practice: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = {
            "n_seeds": self.n_seeds,
            "mean_bpb": self.mean_bpb,
            "std_bpb": self.std_bpb,
            "against": self.against,
            "delta_nats": self.delta_nats,
            "p_readme": self.p_readme,
            "p_practice": self.p_practice,
        }
        out.update(self.extra)
        return out


VERDICT_PASS = "pass"
VERDICT_REVIEW = "needs-review"
VERDICT_FAIL = "fail"


@dataclass
class RecordResult:
    path: str  # as the user should see it (relative to the working directory when possible)
    track: str | None = None
    verdict: str = VERDICT_PASS
    claims: Claims = field(default_factory=Claims)
    measured: Measured = field(default_factory=Measured)
    stats: Stats | None = None
    findings: list[Finding] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    seconds: float = 0.0
    admissible: Any = None  # auditor.admissible.Admissible: the score without the illegal eval-time stage

    def worst(self, include_waived: bool = False) -> Severity | None:
        live = [f for f in self.findings if include_waived or not f.waived]
        if not live:
            return None
        return max((f.severity for f in live), key=lambda s: s.rank)


@dataclass
class Report:
    records: list[RecordResult] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)  # problems not tied to one record
    tool: dict[str, Any] = field(default_factory=dict)
    root: str = "."  # the directory paths are relative to (for SARIF)
    rules: dict[str, RuleInfo] = field(default_factory=dict)  # the catalog of the rules the audit loaded

    def exit_code(self, fail_on: Severity | None) -> int:
        """0: nothing at or above ``fail_on``; 1: findings; 2: nothing readable."""
        if not self.records:
            return 2
        if fail_on is None:
            return 0
        for rec in self.records:
            for f in rec.findings:
                if not f.waived and f.severity.rank >= fail_on.rank:
                    return 1
        return 0


def relpath(p: Path, base: Path) -> str:
    try:
        return p.relative_to(base).as_posix()
    except ValueError:
        return p.as_posix()
