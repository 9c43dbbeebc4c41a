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


PROBE_FIXTURE = Path(__file__).parent / "fixtures" / "probes" / "cuda_record_fn.py"


def probe_fixture_mode(tmp_path: Path, mode: str, sandbox: str):
    """Probe our record-shaped fixture (tests/fixtures/probes/cuda_record_fn.py) with MODE set: (findings by rule,
    the probe's numbers, the script's text)."""
    import pytest

    from auditor.reproduce.probes import probe_record

    pytest.importorskip("sentencepiece")
    folder = tmp_path / "records" / "track_10min_16mb" / f"2026-11-01_{mode}"
    folder.mkdir(parents=True)
    text = PROBE_FIXTURE.read_text(encoding="utf-8").replace('MODE = "legal"', f'MODE = "{mode}"')
    (folder / "train_gpt.py").write_text(text, encoding="utf-8")
    out = probe_record(folder, sandbox=sandbox, work=tmp_path / "work", timeout_s=240, tok_cache=tmp_path / "tok")
    return {f.rule: f for f in out.findings}, out.numbers["train_gpt.py"], text
