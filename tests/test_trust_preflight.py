"""Trust boundaries of `pgolf reproduce --dry-run`: preflight never blocks on a file the record
ships, and a README cannot make pgolf probe host paths."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.hardening_fixtures import assert_no_traceback, clean_env
from tests.reproduce_helpers import FIXTURE

README = "```\nDATA_PATH=./data TOKENIZER_PATH={tok} VOCAB_SIZE=64 torchrun --standalone --nproc_per_node=1 train_gpt.py\n```\n"


def _record(tmp_path: Path, tok: str) -> Path:
    folder = tmp_path / "records" / "track_10min_16mb" / "2026-11-01_Blocking"
    (folder / "data").mkdir(parents=True)
    (folder / "train_gpt.py").write_text(FIXTURE.read_text(), encoding="utf-8")
    (folder / "submission.json").write_text('{"author": "x", "val_bpb": 1.2, "seeds": [1]}', encoding="utf-8")
    (folder / "README.md").write_text(README.format(tok=tok), encoding="utf-8")
    return folder


def _dry_run(folder: Path, cwd: Path, *extra: str) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-P", "-m", "auditor", "reproduce", str(folder), "--dry-run", "--no-sandbox",
                           "--run-dir", str(cwd / "run"), *extra],
                          cwd=cwd, capture_output=True, text=True, timeout=120, env=clean_env())
    return proc, time.monotonic() - t0


def _lines(proc, name: str) -> list[str]:
    return [x.strip() for x in proc.stdout.splitlines() if x.strip().split()[1:2] == [name]]


def test_a_fifo_or_kmsg_shard_does_not_block_the_dry_run(tmp_path):
    """Item 5: DATA_PATH=./data with data/fineweb_val_000000.bin a FIFO (or a link to /proc/kmsg) blocked forever."""
    for kind in ("fifo", "kmsg", "link-to-fifo"):
        case = tmp_path / kind
        folder = _record(case, "./tok.model")
        shard = folder / "data" / "fineweb_val_000000.bin"
        if kind == "fifo":
            os.mkfifo(shard)
        elif kind == "kmsg":
            shard.symlink_to("/proc/kmsg")
        else:
            os.mkfifo(case / "pipe")
            shard.symlink_to(case / "pipe")
        os.mkfifo(folder / "tok.model")  # the tokenizer too
        proc, seconds = _dry_run(folder, case)
        assert_no_traceback(proc)
        assert proc.returncode == 1, (kind, proc.stdout, proc.stderr)
        assert seconds < 100, seconds
        data = _lines(proc, "data")
        assert data and data[0].startswith("FAIL") and "not challenge shards" in data[0], (kind, proc.stdout)
        tok = _lines(proc, "tokenizer")
        assert tok and tok[0].startswith("FAIL"), (kind, proc.stdout)


def test_readme_paths_outside_the_folder_are_not_probed(tmp_path):
    """Item 5: TOKENIZER_PATH=/etc/shadow in the README answered "present"."""
    folder = _record(tmp_path, "/etc/shadow")
    (folder / "README.md").write_text(README.replace("./data", "/etc").format(tok="/etc/shadow"), encoding="utf-8")
    proc, _ = _dry_run(folder, tmp_path)
    assert_no_traceback(proc)
    assert proc.returncode == 1
    for name, key, fix in (("data", "DATA_PATH=/etc", "pass --data"), ("tokenizer", "TOKENIZER_PATH=/etc/shadow", "pass --tokenizer")):
        (line,) = _lines(proc, name)
        assert line.startswith("FAIL") and key in line and "outside the record folder; not probed" in line and fix in line, line
    assert "shadow present" not in proc.stdout and "pieces" not in proc.stdout
    # what the reviewer names with --data/--tokenizer is checked
    data = tmp_path / "given"
    data.mkdir()
    proc, _ = _dry_run(folder, tmp_path, "--data", str(data), "--tokenizer", str(tmp_path / "missing.model"))
    (line,) = _lines(proc, "data")
    assert line.startswith("FAIL") and f"no fineweb_val_*.bin under {data}" in line
    (line,) = _lines(proc, "tokenizer")
    assert line.startswith("FAIL") and "does not exist (--tokenizer)" in line
