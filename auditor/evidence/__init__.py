"""read: a RecordFolder → Evidence (claims, logs, code, README). Readers never raise on bad input."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from auditor.discover import RecordFolder, is_marker, looks_like_log
from auditor.evidence.bpb_proof import BpbProof, read_proof
from auditor.evidence.code import CodeBundle, read_code
from auditor.evidence.logs import read_log
from auditor.evidence.submission import read_claims
from auditor.fs import UnreadableFile, read_text
from auditor.model import Claims, LogFile, Problem

_SEED_IN_NAME = re.compile(r"seed[_\-]?(\d+)", re.I)
# ternary_log_1337.txt, log_42.out: a trailing number of two or more digits is a seed; train0.txt is a run index
_TRAILING_NUMBER = re.compile(r"[_\-](\d{2,})\.(?:log|txt|out)$", re.I)


@dataclass
class Evidence:
    folder: RecordFolder
    claims: Claims
    logs: list[LogFile] = field(default_factory=list)
    code: CodeBundle = field(default_factory=CodeBundle)
    readme: str | None = None
    readme_file: str | None = None
    problems: list[Problem] = field(default_factory=list)
    # decoded text of the other files rules read (submission.json, Markdown docs, Python sources), by
    # relative path: rules read these and ``LogFile.text``, never the disk
    texts: dict[str, str] = field(default_factory=dict)
    bpb_proof: BpbProof | None = None  # a shipped byte-accounting proof, re-checked (TOKENIZER-BPB-ACCOUNTING)

    @property
    def path(self) -> Path:
        return self.folder.path


def submission_file(files: list[str]) -> str | None:
    top = [f for f in files if "/" not in f]
    if "submission.json" in top:
        return "submission.json"
    cands = sorted(f for f in top if f.lower().startswith("submission") and f.lower().endswith(".json"))
    return cands[0] if cands else None


def log_files(files: list[str], folder: Path | None = None) -> list[str]:
    out = []
    for f in files:
        name = f.rsplit("/", 1)[-1]
        low = name.lower()
        if f.count("/") > 2 or low.endswith((".md", ".json", ".py")):
            continue
        if is_marker(name) or (folder is not None and looks_like_log(folder / f)):
            out.append(f)
    return out


def seed_in_name(rel: str) -> int | None:
    name = rel.rsplit("/", 1)[-1]
    m = _SEED_IN_NAME.search(name) or _TRAILING_NUMBER.search(name)
    return int(m.group(1)) if m else None


def readme_file(files: list[str]) -> str | None:
    for f in files:
        if "/" not in f and f.lower() == "readme.md":
            return f
    return None


SOURCE_TEXT_MAX_BYTES = 2_000_000  # a larger .py is data, not a script a rule reads
DOC_TEXT_MAX_CHARS = 200_000


def read_texts(folder: RecordFolder, sub: str | None) -> dict[str, str]:
    """The submission file, Markdown docs (top level and one folder down) and Python sources, decoded
    through ``auditor.fs`` (caps, no symlinks). What cannot be read is left out: the claims, README and
    code readers report their own files; the rest are only searched."""
    out: dict[str, str] = {}
    for rel in folder.files:
        low = rel.lower()
        if rel == sub:
            limit = None
        elif low.endswith(".md") and rel.count("/") <= 1:
            limit = DOC_TEXT_MAX_CHARS
        elif low.endswith(".py"):
            limit = None
        else:
            continue
        try:
            text = read_text(folder.path / rel, folder.root, **({"max_bytes": SOURCE_TEXT_MAX_BYTES - 1} if low.endswith(".py") else {})).text
        except UnreadableFile:
            continue
        out[rel] = text[:limit] if limit else text
    return out


def read_evidence(folder: RecordFolder) -> Evidence:
    problems: list[Problem] = list(folder.problems)
    sub = submission_file(folder.files)
    claims = read_claims(folder.path / sub, folder.root, sub) if sub else Claims()
    problems.extend(claims.problems)
    readme = None
    rf = readme_file(folder.files)
    if rf:
        try:
            readme = read_text(folder.path / rf, folder.root).text
        except UnreadableFile as exc:
            problems.append(Problem(rf, str(exc)))
    logs = []
    for rel in log_files(folder.files, folder.path):
        lf = read_log(folder.path / rel, folder.root, rel)
        if lf.seed_from_name is None:
            lf.seed_from_name = seed_in_name(rel)
        problems.extend(lf.problems)
        logs.append(lf)
    code = read_code(folder.path, folder.root, folder.files, readme)
    problems.extend(code.problems)
    return Evidence(folder=folder, texts=read_texts(folder, sub), claims=claims, logs=logs, code=code, readme=readme, readme_file=rf, problems=problems,
                    bpb_proof=read_proof(folder.path, folder.root, folder.files))
