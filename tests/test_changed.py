"""`pgolf audit --changed BASE` in a real git repository: exactly the folders the branch touched."""
from __future__ import annotations

import json
import subprocess
import sys

from auditor.discover import changed_folders
from tests.ci_helpers import git, make_pr_repo


def _audit(repo, *args):
    proc = subprocess.run([sys.executable, "-m", "auditor", "audit", *args, "--format", "json"],
                          cwd=repo, capture_output=True, text=True, timeout=120)
    return proc


def test_changed_audits_exactly_the_added_folders(tmp_path):
    t = make_pr_repo(tmp_path)
    proc = _audit(t["repo"], "--changed", "main")
    assert proc.returncode == 1, proc.stderr  # E, one of the two changed folders, breaks a rule
    doc = json.loads(proc.stdout)
    paths = sorted(r["path"] for r in doc["records"])
    # Not A or C (untouched), not B (modified on main after the branch point) nor F (added on main).
    assert paths == ["records/track_10min_16mb/2026-02-01_D record", "records/track_non_record_16mb/2026-02-02_E"]


def test_changed_counts_branch_edits_uncommitted_and_untracked_files(tmp_path):
    t = make_pr_repo(tmp_path)
    repo = t["repo"]
    (t["C"] / "README.md").write_text("# C, edited on the branch\n", encoding="utf-8")  # uncommitted edit
    disc, changed = changed_folders([], "main", cwd=repo)
    assert sorted(f.path.name for f in disc.folders) == ["2026-01-01_C", "2026-02-01_D record", "2026-02-02_E"]
    assert "records/track_10min_16mb/2026-01-01_C/README.md" in changed
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "edit C")
    (t["A"] / "extra_seed.log").write_text("seed:9\n", encoding="utf-8")  # untracked file in A
    disc, _ = changed_folders([], "main", cwd=repo)
    assert sorted(f.path.name for f in disc.folders) == ["2026-01-01_A", "2026-01-01_C", "2026-02-01_D record", "2026-02-02_E"]


def test_changed_from_a_subdirectory_and_with_paths(tmp_path):
    t = make_pr_repo(tmp_path)
    sub = t["repo"] / "records" / "track_non_record_16mb"
    disc, _ = changed_folders(["."], "main", cwd=sub)  # only folders under the given path
    assert [f.display for f in disc.folders] == ["2026-02-02_E"]


def test_changed_bad_refs_are_one_line_errors(tmp_path):
    t = make_pr_repo(tmp_path)
    proc = _audit(t["repo"], "--changed", "no-such-ref")
    assert proc.returncode == 2
    assert "no-such-ref" in proc.stderr and "Traceback" not in proc.stderr
    disc, changed = changed_folders([], "--output=/tmp/pwned", cwd=t["repo"])
    assert not disc.folders and changed == []
    assert disc.problems[0].message.startswith("--changed needs a git ref")
    disc, _ = changed_folders([], "main", cwd=tmp_path)  # not a git checkout
    assert disc.problems[0].message == "--changed needs a git checkout; this folder is not inside one"


# ---- the pre-commit hook -----------------------------------------------------------------------------

def _hook():
    import yaml
    from pathlib import Path

    hooks = yaml.safe_load((Path(__file__).resolve().parents[1] / ".pre-commit-hooks.yaml").read_text())
    assert [h["id"] for h in hooks] == ["pgolf-audit"]
    return hooks[0]


def _run_hook(repo, staged):
    """What pre-commit does: keep the staged files matching `files`, pass them to `entry`."""
    import re
    import shlex

    hook = _hook()
    names = [n for n in staged if re.search(hook["files"], n)]
    if not names:
        return None
    cmd = [sys.executable if w == "python" else w for w in shlex.split(hook["entry"])] + hook.get("args", []) + names
    return subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=120)


def test_pre_commit_hook_audits_the_folders_of_staged_files(tmp_path):
    from tests.ci_helpers import bad_record
    from tests.helpers import write_folder

    t = make_pr_repo(tmp_path)
    repo = t["repo"]
    hook = _hook()
    assert hook["language"] == "python" and hook["pass_filenames"] is True
    # A commit staging a log deep inside clean folder D, and README.md outside records/.
    proc = _run_hook(repo, ["README.md", "records/track_10min_16mb/2026-02-01_D record/train_seed1.log"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2026-02-01_D record" in proc.stdout and "2026-02-02_E" not in proc.stdout
    # Staging a file of the bad folder fails the commit and names the finding.
    write_folder(repo, bad_record(), name="2026-03-01_G")
    proc = _run_hook(repo, ["records/track_10min_16mb/2026-03-01_G/train_gpt.py",
                            "records/track_10min_16mb/2026-03-01_G/README.md"])
    assert proc.returncode == 1
    assert proc.stdout.count("2026-03-01_G") >= 1 and "WAIVER-REASON" in proc.stdout and "SUBMISSION-FILES" in proc.stdout
    # Files outside any record folder: nothing to audit, the commit goes on.
    assert _run_hook(repo, ["docs/x.md"]) is None
    proc = _run_hook(repo, ["records/track_10min_16mb/loose.txt"])
    assert proc.returncode == 0 and proc.stdout == ""


def test_record_folder_of():
    from pathlib import Path

    from auditor.precommit import record_folder_of

    assert record_folder_of(Path("records/track_10min_16mb/X/logs/a.log")) == Path("records/track_10min_16mb/X")
    assert record_folder_of(Path("records/X Y/a.log")) == Path("records/X Y")
    assert record_folder_of(Path("records/track_10min_16mb/a.txt")) is None
    assert record_folder_of(Path("README.md")) is None
