"""Whole-corpus soak: every folder of ../shared/corpus (2,321 real record folders, code removed)
plus a few hostile folders of ours, audited in ONE `pgolf audit --jobs 2` run: zero crashes, zero
tracebacks, every folder in the report, every unreadable item reported by name."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from auditor.evidence import log_files, readme_file, submission_file
from auditor.fs import UnreadableFile, read_text
from tests.ci_helpers import clean_record
from tests.corpus import corpus_rows
from tests.helpers import CORPUS, write_folder

pytestmark = [pytest.mark.slow, pytest.mark.corpus]

_spec = importlib.util.spec_from_file_location("bench_soak", Path(__file__).resolve().parents[1] / "benchmarks" / "bench_soak.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def _hostile_tree(root: Path) -> Path:
    """Folders whose items cannot be read, so the 'every unreadable item reported' check bites."""
    tree = root / "hostile"
    a = write_folder(tree, clean_record(), name="binary_log")
    (a / "train_seed4.log").write_bytes(b"\x00\x01\x02\x03" * 4000)
    b = write_folder(tree, clean_record(), name="oversized_log")
    with open(b / "train_seed5.log", "wb") as fh:
        fh.truncate(60 * 1024 * 1024)
    c = write_folder(tree, clean_record(), name="symlink_out")
    (c / "train_seed6.log").symlink_to("/etc/hostname")
    d = write_folder(tree, clean_record(), name="bad_json")
    (d / "submission.json").write_bytes(b"\xff\xfe\x00{{{")
    return tree


def _read_items(path: Path) -> list[str]:
    files = sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file() or p.is_symlink())
    return sorted(set(log_files(files)) | ({submission_file(files), readme_file(files)} - {None}))


@pytest.mark.skipif(not (CORPUS / "INDEX.tsv").exists(), reason="../shared/corpus is not present")
def test_whole_corpus_in_one_parallel_run(tmp_path):
    hostile = _hostile_tree(tmp_path)
    out = bench.run_cli([str(CORPUS), str(hostile)], jobs=2, timeout_s=120, workdir=tmp_path)
    s = bench.summarise(out)
    assert out["report"] is not None, out["stderr"][-3000:]
    assert s["returncode"] == 0, out["stderr"][-3000:]
    assert s["tracebacks"] == 0
    assert s["crashes"] == []
    assert s["stderr_lines_not_one_line_problems"] == []

    rows = corpus_rows()
    recs = {r["path"]: r for r in out["report"]["records"]}
    assert len(recs) >= len(rows) + 4  # every corpus folder (nested copies may hold several), plus ours
    for row in rows:  # every folder is in the report under its own path
        # a folder outside the working directory is shown by its absolute path; a corpus folder that only
        # holds a copy of a whole records/ tree is audited as the record folders inside it
        assert any(p == str(row.path) or p.startswith(str(row.path) + "/") for p in recs), row.path

    # every item the audit reads that the reader refuses is named in that folder's errors
    checked = unreadable = 0
    for path_text, rec in recs.items():
        folder = (tmp_path / path_text).resolve() if not Path(path_text).is_absolute() else Path(path_text)
        if not folder.is_dir():
            folder = Path(os.path.normpath(tmp_path / path_text))
        named = {e["file"] for e in rec["errors"]}
        for rel in _read_items(folder):
            checked += 1
            try:
                read_text(folder / rel, folder)
            except UnreadableFile:
                unreadable += 1
                assert rel in named, (path_text, rel, rec["errors"])
    assert checked > 8000 and unreadable >= 3
