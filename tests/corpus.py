"""The shared data corpus (records.md §7) as record folders: ``corpus/<source>/<folder>/`` with the
track taken from ``INDEX.tsv`` (the corpus has no track directories)."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from auditor.discover import CANONICAL_TRACKS, RecordFolder
from tests.helpers import CORPUS


@dataclass
class CorpusRow:
    source: str
    track_dir: str
    folder: str
    files: list[str]
    claimed: float | None  # INDEX's claimed_val_bpb

    @property
    def path(self) -> Path:
        return CORPUS / self.source / self.folder

    @property
    def track(self) -> str | None:
        return CANONICAL_TRACKS.get(self.track_dir.rsplit("/", 1)[-1])


def corpus_rows(corpus: Path = CORPUS) -> list[CorpusRow]:
    rows = []
    with open(corpus / "INDEX.tsv", newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            claimed = float(r["claimed_val_bpb"]) if r["claimed_val_bpb"] else None
            rows.append(CorpusRow(r["source"], r["track"], r["folder"], [f for f in r["files"].split(";") if f], claimed))
    return rows


def record_folder(row: CorpusRow) -> RecordFolder:
    path = row.path
    files = sorted(f for f in row.files if (path / f).is_file())
    return RecordFolder(path=path, display=f"{row.source}/{row.folder}", root=path, track=row.track, files=files)
