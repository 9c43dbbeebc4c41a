"""No absolute path of a machine in the repository (issue 11): code, tests, docs and examples name
locations by argument, environment variable (``PGOLF_PRS``, ``PGOLF_HEAD``, ``PGOLF_CHALLENGE_REPO``)
or a placeholder, never a home or workspace directory of the machine they were written on."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Home and workspace directories: /home/<user>/, /Users/<user>/, /root/, /work/, /workspace/, C:\Users\<user>
# An absolute path starts a word: at the line start or after a space, quote, "=", "(", ":", "[", ","
# or a backtick (so a "home" folder inside a run directory, after a word character, is not one).
MACHINE_PATH = re.compile(r"(?<![^\s\"'`=(:\[,{])(?:/home/[\w.-]+/|/Users/[\w.-]+/|/root/|/work/|/workspace/|[A-Za-z]:\\\\?Users\\\\?[\w.-]+)")
# Files that must name host paths: the sandbox test proves the host's private files and directories
# stay out of reach.
ALLOWED = {"tests/test_trust_sandbox.py"}


def tracked_files() -> list[str]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    return [p for p in out.decode("utf-8", "surrogateescape").split("\0") if p]


def test_no_tracked_file_names_a_machine_path():
    hits = []
    files = tracked_files()
    assert "auditor/pipeline.py" in files
    for rel in files:
        if rel in ALLOWED or rel == "tests/test_no_machine_paths.py":
            continue
        p = REPO / rel
        if not p.is_file() or p.is_symlink() or p.stat().st_size > 20_000_000:
            continue
        data = p.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary (model files, archives)
        for n, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            m = MACHINE_PATH.search(line)
            if m:
                hits.append(f"{rel}:{n}: {m.group(0)} in {line.strip()[:120]}")
    assert not hits, "\n".join(hits[:40])


def test_the_pattern_finds_what_it_must():
    # The bad examples are built from parts, so this file carries no machine path itself.
    home, root, work, users = "/" + "home", "/" + "root", "/" + "work", "/" + "Users"
    for bad in (f"x = '{home}/alice/data'", f"PRS={work}/pg/prs", f"({root}/.cache)", f"`{home}/bob/x`", f"see {users}/bob/src",
                f"{root}/.cache/pgolf/data", f"--prs {work}/pg/prs", f"{work}space/parameter-golf", "C:" + "\\" + "Users\\carol\\x"):
        assert MACHINE_PATH.search(bad), bad
    for ok in ("~/.cache/pgolf/data", "records/track_10min_16mb/x", "/tmp/pgolf-ref", "$PGOLF_PRS/864", "/opt/tokenizers/tok.model",
               f"no `{root}`, `{home}`, `/var`", 'cp "$OUT"/seed_*' + home + "/pgolf-clock/x .", "seed_<s>" + home + "/pgolf-clock/"):
        assert not MACHINE_PATH.search(ok), ok
