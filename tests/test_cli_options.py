"""Command-line behaviours a reviewer relies on: a per-folder time limit, a branch that changes no
record folder, and plain text when the report goes to a file."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.ci_helpers import clean_record, git
from tests.helpers import write_folder

PGOLF = [sys.executable, "-P", "-m", "auditor"]


def _run(args, cwd, **env):
    return subprocess.run(PGOLF + args, cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "FORCE_COLOR": "1", **env})


def test_timeout_option_stops_slow_folders_and_fails_the_run(tmp_path):
    write_folder(tmp_path, clean_record())
    proc = _run(["audit", "records", "-f", "json", "--timeout", "0.001"], tmp_path)
    assert proc.returncode == 1, proc.stderr
    rec = json.loads(proc.stdout)["records"][0]
    assert rec["verdict"] == "needs-review"
    assert rec["errors"][-1]["message"].startswith("audit stopped after 0.001 s")
    assert "Traceback" not in proc.stderr


def test_changed_with_no_record_folder_is_not_an_error(tmp_path):
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "notes.txt").write_text("x\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "base")
    proc = _run(["audit", "--changed", "HEAD", "-f", "json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["records"] == []
    text = _run(["audit", "--changed", "HEAD"], tmp_path)
    assert text.returncode == 0 and text.stdout == "no record folder changed since HEAD; nothing to audit\n"


def test_text_written_to_a_file_has_no_colour_codes(tmp_path):
    write_folder(tmp_path, clean_record())
    out = tmp_path / "report.txt"
    proc = _run(["audit", "records", "-o", str(out), "--fail-on", "never"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text(encoding="utf-8")
    assert "2026-01-01_Test" in text and "\x1b[" not in text
