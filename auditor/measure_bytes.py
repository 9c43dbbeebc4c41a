"""Artifact bytes as measured from the folder (records.md §4.2), before any rule runs: the shipped
bytes of every code file the entry point runs (self-extracting wrappers decoded by the code reader,
exec'd sidecars, helper modules, native sources), the compressed model file, tokenizer files, and
per seed the logged and the measured totals. The ARTIFACT-* rules only judge these figures, so the
report's ``measured`` block is the same whichever rules run."""
from __future__ import annotations

from dataclasses import dataclass, field

from auditor.evidence import Evidence
from auditor.evidence.code import CodeBytes
from auditor.evidence.runs import used_runs
from auditor.fs import UnreadableFile, check_readable
from auditor.model import Measured

MODEL_SUFFIXES = (".ptz", ".pt.zst", ".pt.xz", ".pt.lzma", ".pt.br", ".pt.gz", ".int8.ptz", ".int6.ptz", ".lrz")
TOKENIZER_SUFFIXES = (".model", ".vocab")


@dataclass
class SeedBytes:
    log: str
    seed: int | None
    logged_code: int | None
    logged_code_compressed: int | None
    logged_model: int | None
    logged_total: int | None
    model: int | None  # what the measured total uses
    model_source: str  # "file" | "logged" | "logged total − logged code" | "claimed"
    measured_total: int | None
    evidence: list[str] = field(default_factory=list)
    total_line: int | None = None


@dataclass
class ArtifactFacts:
    code: CodeBytes
    model_file: tuple[str, int] | None
    tokenizer_files: list[tuple[str, int]]
    seeds: list[SeedBytes]
    claimed_total: int | None
    claimed_code: int | None

    @property
    def max_measured(self) -> SeedBytes | None:
        cands = [s for s in self.seeds if s.measured_total is not None]
        return max(cands, key=lambda s: s.measured_total) if cands else None

    @property
    def max_logged(self) -> SeedBytes | None:
        cands = [s for s in self.seeds if s.logged_total is not None]
        return max(cands, key=lambda s: s.logged_total) if cands else None


def _size(ev: Evidence, rel: str) -> int | None:
    try:
        return check_readable(ev.path / rel, ev.folder.root, max_bytes=1 << 40)
    except UnreadableFile:
        return None


def _model_file(ev: Evidence) -> tuple[str, int] | None:
    cands = [f for f in ev.folder.files if f.lower().endswith(MODEL_SUFFIXES)
             or f.rsplit("/", 1)[-1].lower().startswith("final_model") and not f.lower().endswith((".pt", ".log", ".txt", ".md"))]
    sized = [(f, s) for f in cands if (s := _size(ev, f)) is not None]
    return max(sized, key=lambda x: x[1]) if sized else None


def _tokenizers(ev: Evidence) -> list[tuple[str, int]]:
    out = []
    for f in ev.folder.files:
        low = f.lower()
        if low.endswith(TOKENIZER_SUFFIXES) or (low.startswith("tokenizers/") and not low.endswith((".md", ".py"))):
            s = _size(ev, f)
            if s is not None:
                out.append((f, s))
    return out


def artifact_bytes(ev: Evidence, m: Measured) -> ArtifactFacts:
    """Code bytes (every file the entry point runs, wrappers decoded), model and tokenizer files, and
    per seed the logged and measured totals; fills the byte fields of ``m``."""
    code = ev.code.code_bytes()
    model_file = _model_file(ev)
    seeds: list[SeedBytes] = []
    for lf, run in used_runs(ev, m):
        seed = run.seed if run.seed is not None else lf.seed_from_name
        lc = run.code_bytes.value if run.code_bytes else None
        lcc = run.code_bytes_compressed.value if run.code_bytes_compressed else None
        lm = run.model_bytes.value if run.model_bytes else None
        lt = run.total_bytes.value if run.total_bytes else None
        evid = [x.text for x in (run.code_bytes, run.code_bytes_compressed, run.model_bytes, run.total_bytes) if x is not None]
        if model_file:
            model, src = model_file[1], "file"
        elif lm is not None:
            model, src = lm, "logged"
        elif lt is not None and (lcc or lc) is not None:
            model, src = lt - (lcc or lc), "logged total − logged code"
        else:
            model, src = None, ""
        total = code.shipped + model if (model is not None and ev.code.entry) else None
        seeds.append(SeedBytes(lf.path, seed, lc, lcc, lm, lt, model, src, total, evid, run.total_bytes.line if run.total_bytes else None))
    if not seeds and ev.claims.bytes_total is not None:
        claimed_model = ev.claims.bytes_total - (ev.claims.bytes_code or 0) if ev.claims.bytes_code else None
        model = model_file[1] if model_file else claimed_model
        seeds.append(SeedBytes(ev.claims.file or "submission.json", None, ev.claims.bytes_code, None, None, ev.claims.bytes_total,
                               model, "file" if model_file else "claimed",
                               code.shipped + model if model is not None and ev.code.entry else None,
                               [f"bytes_total: {ev.claims.bytes_total}"]))
    facts = ArtifactFacts(code, model_file, _tokenizers(ev), seeds, ev.claims.bytes_total, ev.claims.bytes_code)
    _fill_measured(ev, m, facts)
    return facts


def _fill_measured(ev: Evidence, m: Measured, facts: ArtifactFacts) -> None:
    if ev.code.entry:
        m.bytes_code = facts.code.shipped
    top = facts.max_measured
    if top is not None:
        m.bytes_model = top.model
        m.bytes_total = top.measured_total
        m.bytes_source = "measured"
        m.extra["bytes_model_source"] = top.model_source
    elif facts.max_logged is not None:
        m.bytes_total = facts.max_logged.logged_total
        m.bytes_source = "logged"
    elif facts.claimed_total is not None:
        m.bytes_total = facts.claimed_total
        m.bytes_source = "claimed"
    m.extra["bytes"] = {
        "code_files": [{"path": p, "role": r, "bytes": b} for p, r, b in facts.code.files],
        "code_decoded_bytes": facts.code.decoded,
        "model_file": {"path": facts.model_file[0], "bytes": facts.model_file[1]} if facts.model_file else None,
        "tokenizer_files": [{"path": p, "bytes": b} for p, b in facts.tokenizer_files],
        "per_seed": [{"log": s.log, "seed": s.seed, "logged_code": s.logged_code, "logged_code_compressed": s.logged_code_compressed,
                      "logged_model": s.logged_model, "logged_total": s.logged_total, "model": s.model, "model_source": s.model_source,
                      "measured_total": s.measured_total} for s in facts.seeds],
        "claimed_total": facts.claimed_total,
    }
