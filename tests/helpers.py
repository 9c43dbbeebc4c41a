"""Shared test helpers: build real record folders on disk and audit them."""
from __future__ import annotations

from pathlib import Path

from auditor.context import AuditOptions
from auditor.discover import discover
from auditor.model import RecordResult
from auditor.pipeline import audit_folder

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPUS = SHARED / "corpus"
LABELS = SHARED / "labels" / "labels.tsv"


def write_folder(root: Path, files: dict[str, str | bytes], track: str = "track_10min_16mb", name: str = "2026-01-01_Test") -> Path:
    folder = root / "records" / track / name
    folder.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")
    return folder


def audit_one(folder: Path, **opts) -> RecordResult:
    disc = discover([folder])
    assert len(disc.folders) == 1, (disc.folders, disc.problems)
    return audit_folder(disc.folders[0], AuditOptions(**opts))
