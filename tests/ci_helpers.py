"""Build a real git repository shaped like the challenge repository, with a PR branch on it."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.helpers import write_folder

GIT_ENV = {
    "GIT_AUTHOR_NAME": "pgolf tests", "GIT_AUTHOR_EMAIL": "tests@pgolf.invalid",
    "GIT_COMMITTER_NAME": "pgolf tests", "GIT_COMMITTER_EMAIL": "tests@pgolf.invalid",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
}


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


def clean_record(seed_note: str = "") -> dict[str, str]:
    """A small record folder that passes: our own code, logs and claims."""
    logs = {
        f"train_seed{s}.log": (
            f"seed:{s}\nstep:1/100 train_loss:6.9000 train_time:50ms step_avg:50.00ms\n"
            f"step:100/100 val_loss:2.0000 val_bpb:1.2000 train_time:5000ms step_avg:50.00ms\n"
            f"final_int8_zlib_roundtrip_exact val_loss:2.00000000 val_bpb:1.20000000\n"
        )
        for s in (1, 2, 3)
    }
    return {
        "README.md": f"# A tiny record{seed_note}\n",
        "submission.json": '{"author": "t", "github_id": "t", "name": "tiny", "val_bpb": 1.2}\n',
        "train_gpt.py": "import os\nprint('train')\n",
        **logs,
    }


def bad_record() -> dict[str, str]:
    """Breaks two rules we control: no submission.json (SUBMISSION-FILES, no line) and a
    suppression without a reason (WAIVER-REASON at train_gpt.py:2)."""
    files = clean_record()
    del files["submission.json"]
    files["train_gpt.py"] = "import os\nDATA = os.environ.get('DATA_PATH', '.')  # pgolf: allow DATA-NO-TRAIN-AT-EVAL\nprint(DATA)\n"
    return files


def make_pr_repo(root: Path) -> dict[str, Path]:
    """main: records A, B, C.  Branch `pr` (checked out at the end): adds D (clean) and E (bad).
    After the branch point main moves on: modifies B and adds F. Untouched: A, C."""
    repo = root / "challenge"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("# challenge\n", encoding="utf-8")
    folders = {}
    for name in ("A", "B", "C"):
        folders[name] = write_folder(repo, clean_record(), name=f"2026-01-01_{name}")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "checkout", "-q", "-b", "pr")
    folders["D"] = write_folder(repo, clean_record(), name="2026-02-01_D record")  # a space, as real folders have
    folders["E"] = write_folder(repo, bad_record(), track="track_non_record_16mb", name="2026-02-02_E")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "add D and E")
    git(repo, "checkout", "-q", "main")
    (folders["B"] / "README.md").write_text("# B, edited on main after the branch point\n", encoding="utf-8")
    folders["F"] = write_folder(repo, clean_record(), name="2026-02-03_F")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "main moves on")
    git(repo, "checkout", "-q", "pr")
    return {"repo": repo, **folders}
