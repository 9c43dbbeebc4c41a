"""Filesystem safety: symlinks out of the tree are never followed, loops end, odd names survive,
oversized and special files are reported, not read."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from auditor.discover import discover
from auditor.fs import MAX_FILE_BYTES, UnreadableFile, read_bytes, read_text
from auditor.pipeline import audit_paths
from tests.ci_helpers import clean_record
from tests.hardening_fixtures import assert_no_traceback, json_report, run_pgolf, snapshot
from tests.helpers import write_folder

SECRET = "SECRET-TOKEN-7f3a9c"


def _all_errors(report) -> list[str]:
    return [p.line() for p in report.errors] + [p.line() for r in report.records for p in r.errors]


@pytest.fixture()
def outside(tmp_path: Path) -> Path:
    d = tmp_path / "outside"
    d.mkdir()
    (d / "secret.txt").write_text(f"val_bpb:0.1 {SECRET}\n")
    (d / "logs").mkdir()
    (d / "logs" / "train_seed9.log").write_text(f"step:1/1 val_loss:1 val_bpb:0.5 {SECRET}\n")
    (d / "sub.json").write_text(json.dumps({"val_bpb": 0.01, "author": SECRET}))
    return d


def test_symlinks_to_secrets_outside_are_not_followed(tmp_path, outside):
    folder = write_folder(tmp_path / "tree", clean_record())
    (folder / "train_seed4.log").symlink_to(outside / "secret.txt")
    (folder / "submission_extra.json").symlink_to(outside / "sub.json")
    (folder / "logs").symlink_to(outside / "logs", target_is_directory=True)
    (folder / "notes").mkdir()
    (folder / "notes" / "deep.log").symlink_to(outside / "secret.txt")
    proc = run_pgolf(["audit", str(tmp_path / "tree"), "-f", "json", "--fail-on", "never"], tmp_path)
    assert_no_traceback(proc)
    assert SECRET not in proc.stdout and SECRET not in proc.stderr
    rec = json_report(proc)["records"][0]
    lines = [f"{e['file']}: {e['message']}" for e in rec["errors"]]
    assert "train_seed4.log: symlink pointing outside the audited folder; not followed" in lines
    assert "notes/deep.log: symlink pointing outside the audited folder; not followed" in lines
    assert "logs: symlinked folder; not followed" in lines
    assert rec["verdict"] != "pass"


def test_reader_refuses_a_path_through_a_symlinked_parent(tmp_path, outside):
    root = tmp_path / "tree"
    root.mkdir()
    (root / "via").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnreadableFile, match="outside the audited folder"):
        read_bytes(root / "via" / "secret.txt", root)
    with pytest.raises(UnreadableFile, match="symlink pointing outside"):
        (root / "direct.log").symlink_to(outside / "secret.txt")
        read_text(root / "direct.log", root)


def test_symlinked_record_folder_and_loops_end(tmp_path, outside):
    tree = tmp_path / "tree"
    folder = write_folder(tree, clean_record())
    track = folder.parent
    (track / "evil_record").symlink_to(outside, target_is_directory=True)
    (folder / "loop").symlink_to(folder, target_is_directory=True)  # loop → itself
    (folder / "up").symlink_to(tree, target_is_directory=True)  # loop → the whole tree
    (folder / "a" / "b").mkdir(parents=True)
    (folder / "a" / "b" / "back").symlink_to(folder / "a", target_is_directory=True)
    (folder / "self.log").symlink_to(folder / "self.log")  # a symlink to itself (ELOOP)
    (folder / "dangling.log").symlink_to(tmp_path / "nowhere")
    report = audit_paths([str(tree)])
    assert [Path(r.path).name for r in report.records] == [folder.name]
    errors = _all_errors(report)
    assert any("evil_record: symlinked folder; not followed" in e for e in errors), errors
    assert any(e.endswith("loop: symlinked folder; not followed") for e in errors)
    assert any(e.endswith("a/b/back: symlinked folder; not followed") for e in errors)
    assert any(e.startswith("self.log") for e in errors), errors
    assert any(e.startswith("dangling.log") for e in errors), errors


def test_fifo_and_oversized_files_are_reported_not_read(tmp_path):
    folder = write_folder(tmp_path, clean_record())
    os.mkfifo(folder / "train_seed7.log")  # opening it for reading would block forever
    with open(folder / "train_seed8.log", "wb") as fh:  # sparse: 100 MB on paper, nothing on disk
        fh.truncate(MAX_FILE_BYTES * 2)
    report = audit_paths([str(folder)])
    errors = _all_errors(report)
    assert "train_seed7.log: not a regular file" in errors, errors
    assert f"train_seed8.log: {MAX_FILE_BYTES * 2:,} bytes, over the {MAX_FILE_BYTES:,}-byte cap; skipped" in errors


def test_odd_names_survive_every_format(tmp_path):
    tree = tmp_path / "tree"
    names = ["2026-01-01 spaces and ünïcödé ✨", "--output=pwned", "new\nline", "esc\x1b[31mred", "bidi\u202eflipped"]
    for n in names:
        write_folder(tree, clean_record(), name=n)
    odd = write_folder(tree, clean_record(), name="odd_files")
    (odd / "train\nseed5.log").write_text("step:1/1 val_loss:2 val_bpb:1.2\n")
    (odd / "tab\tand space seed6.log").write_text("step:1/1 val_loss:2 val_bpb:1.2\n")
    (odd / "\x1b]0;title\x07seed7.log").write_text("step:1/1 val_loss:2 val_bpb:1.2\n")
    os.close(os.open(os.fsencode(odd) + b"/train_seed\xff\xfe.log", os.O_CREAT | os.O_WRONLY))  # not UTF-8
    before = snapshot(tree)
    proc = run_pgolf(["audit", "records", "-f", "json", "--jobs", "2", "--fail-on", "never"], tree)
    assert_no_traceback(proc)
    report = json_report(proc)
    got = sorted(Path(r["path"]).name for r in report["records"])
    assert got == sorted(names + ["odd_files"])
    for fmt in ("text", "markdown", "github", "sarif"):
        proc = run_pgolf(["audit", "records", "-f", fmt, "--fail-on", "never"], tree)
        assert_no_traceback(proc)
        assert proc.returncode == 0, (fmt, proc.stderr[-2000:])
        if fmt == "sarif":
            json.loads(proc.stdout)
        else:  # human formats: no raw terminal control characters, each name on its own line
            assert "\x1b" not in proc.stdout and "\u202e" not in proc.stdout and "\x07" not in proc.stdout, fmt
            assert "\x1b" not in proc.stderr
            assert not any(line.startswith("line") for line in proc.stdout.splitlines()), fmt
    assert snapshot(tree) == before


def test_deep_nesting_is_cut_off_and_said(tmp_path):
    tree = tmp_path / "tree"
    deep = tree / "records" / "/".join(f"d{i}" for i in range(30))
    deep.mkdir(parents=True)
    (deep / "README.md").write_text("# too deep\n")
    folder = write_folder(tree, clean_record())
    inner = folder / "/".join(f"n{i}" for i in range(20))
    inner.mkdir(parents=True)
    (inner / "train_seed9.log").write_text("step:1/1 val_loss:2 val_bpb:1.2\n")
    disc = discover([tree])
    assert [f.path for f in disc.folders] == [folder]
    assert any("nested more than 8 levels deep; not searched" in p.message for p in disc.problems), disc.problems
    assert any("nested more than 6 levels deep; not listed" in p.message for p in disc.folders[0].problems)


def test_file_count_cap_is_reported(tmp_path):
    folder = write_folder(tmp_path, clean_record())
    (folder / "many").mkdir()
    for i in range(2100):
        (folder / "many" / f"f{i}.bin").write_bytes(b"")
    disc = discover([folder])
    assert len(disc.folders[0].files) == 2000
    assert any("more than 2000 files" in p.message for p in disc.folders[0].problems)


def test_unreadable_file_is_one_line(tmp_path):
    """A file pgolf may not read is one line naming it. As root, permissions alone do not stop a read,
    so the audit runs without the capabilities that let root ignore them (util-linux setpriv)."""
    folder = write_folder(tmp_path, clean_record())
    p = folder / "train_seed1.log"
    p.chmod(0)
    try:
        if os.geteuid() != 0:
            report = audit_paths([str(folder)])
            assert any(e.startswith("train_seed1.log: cannot read") for e in _all_errors(report))
            return
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is needed to drop root's file capabilities"
        proc = subprocess.run([setpriv, "--bounding-set", "-dac_override,-dac_read_search", sys.executable, "-P", "-m", "auditor",
                               "audit", str(folder), "--format", "json", "--fail-on", "never"],
                              capture_output=True, text=True, timeout=300, env={**os.environ, "PGOLF_IN_PROCESS": "1"})
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
        doc = json.loads(proc.stdout)
        lines = [e for r in doc["records"] for e in r.get("errors", [])]
        assert any(str(e).startswith("train_seed1.log: cannot read") or
                   (isinstance(e, dict) and e.get("file") == "train_seed1.log" and "cannot read" in e.get("message", ""))
                   for e in lines), lines
        assert doc["records"][0]["verdict"] != "pass"  # an unread log is never a pass
    finally:
        p.chmod(0o644)


def test_paths_the_user_gives_that_cannot_be_opened(tmp_path):
    disc = discover([str(tmp_path / ("x" * 5000)), "nul\0byte", str(tmp_path / "missing")])
    assert not disc.folders
    assert len(disc.problems) == 3 and all(p.message for p in disc.problems)
