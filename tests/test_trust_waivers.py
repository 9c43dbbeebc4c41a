"""Trust boundaries of the audit: an entrant cannot waive its own findings, cannot make git run a
program through the checkout's config, and a real author's name is never read as a placeholder."""
from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from auditor.discover import changed_folders
from auditor.evidence.submission import parse_claims_text
from tests.ci_helpers import bad_record, clean_record
from tests.hardening_fixtures import assert_no_traceback, run_pgolf
from tests.helpers import CORPUS, write_folder

WAIVE_ALL = textwrap.dedent("""\
    [[waiver]]
    folder = "."
    rule = "*"
    reason = "the entrant says so"
    who = "entrant"
""")


def _findings(proc) -> list[dict]:
    doc = json.loads(proc.stdout)
    return [f for r in doc["records"] for f in r["findings"]]


def test_waiver_file_shipped_in_the_record_folder_is_not_read(tmp_path):
    """Item 1: `pgolf-waivers.toml` inside the record folder waived every error (verdict pass, exit 0)."""
    folder = write_folder(tmp_path, {**bad_record(), "pgolf-waivers.toml": WAIVE_ALL})
    elsewhere = tmp_path / "reviewer"
    elsewhere.mkdir()
    for cwd, target in ((elsewhere, str(folder)), (folder, ".")):  # audited from outside, and from inside it
        proc = run_pgolf(["audit", target, "--format", "json"], cwd, module=True)
        assert_no_traceback(proc)
        assert proc.returncode == 1, (cwd, proc.stdout[-2000:], proc.stderr[-2000:])
        found = _findings(proc)
        assert [f for f in found if f["rule"] == "SUBMISSION-FILES" and f["severity"] == "error" and not f["waived"]]
        named = [f for f in found if f["rule"] == "WAIVER-REASON" and f["severity"] == "warning"]
        assert named and named[0]["file"] == "pgolf-waivers.toml" and "not read" in named[0]["message"], found
        assert json.loads(proc.stdout)["records"][0]["verdict"] == "fail"


def test_symlinked_waiver_file_is_not_followed(tmp_path):
    """Item 1: a waivers file that is a symlink was followed out of the tree (to a FIFO: blocked)."""
    folder = write_folder(tmp_path, bad_record())
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    secret = tmp_path / "outside.toml"
    secret.write_text(WAIVE_ALL.replace('"."', f'"{folder}"'), encoding="utf-8")
    for target in (fifo, secret):
        link = tmp_path / "pgolf-waivers.toml"
        if link.is_symlink():
            link.unlink()
        link.symlink_to(target)
        for args in (["--waivers", str(link)], []):  # given explicitly, and as the working directory's default
            proc = run_pgolf(["audit", str(folder), "--format", "json", *args], tmp_path, module=True, timeout=60)
            assert_no_traceback(proc)
            if proc.returncode == 2 and args:  # the command line refuses a --waivers that is no regular file
                assert target == fifo and proc.stderr.count("\n") == 1 and str(link) in proc.stderr, proc.stderr
                continue
            assert proc.returncode == 1, proc.stderr[-2000:]
            rec = json.loads(proc.stdout)["records"][0]
            assert not [f for f in rec["findings"] if f["waived"]]
            assert any("symlink" in e["message"] and "not followed" in e["message"] for e in rec["errors"]), rec["errors"]


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    write_folder(repo, clean_record(), name="2026-01-01_Old")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "base")
    _git(repo, "checkout", "-q", "-b", "pr")
    return repo


def test_changed_mode_reads_waivers_from_the_base_revision(tmp_path):
    """Item 1 (CI): a pull request that adds or edits the repository's pgolf-waivers.toml must not waive itself."""
    repo = _repo(tmp_path)
    write_folder(repo, bad_record(), name="2026-02-02_New")
    (repo / "pgolf-waivers.toml").write_text(WAIVE_ALL.replace('"."', '"records/track_10min_16mb/2026-02-02_New"'))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "pr")
    proc = run_pgolf(["audit", "--changed", "main", "--format", "json"], repo, module=True)
    assert_no_traceback(proc)
    assert proc.returncode == 1, proc.stderr[-2000:]
    found = _findings(proc)
    assert not [f for f in found if f["waived"]], found
    named = [f for f in found if f["rule"] == "WAIVER-REASON" and f["severity"] == "warning"]
    assert named and "pgolf-waivers.toml" in named[0]["message"] and "base revision" in named[0]["message"]


def test_changed_mode_applies_the_base_revisions_reviewed_waiver(tmp_path):
    """The reviewer's waiver, committed on the base branch, still works; the pull request's edit of it does not count."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "pgolf-waivers.toml").write_text(textwrap.dedent("""\
        [[waiver]]
        folder = "records/track_10min_16mb/2026-02-02_New"
        rule = "SUBMISSION-FILES"
        reason = "reviewed: claims in the PR description"
        who = "maintainer"
    """))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "base")
    _git(repo, "checkout", "-q", "-b", "pr")
    write_folder(repo, bad_record(), name="2026-02-02_New")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "pr")
    proc = run_pgolf(["audit", "--changed", "main", "--format", "json"], repo, module=True)
    found = _findings(proc)
    sub = [f for f in found if f["rule"] == "SUBMISSION-FILES"]
    assert sub and all(f["waived"] and "maintainer" in f["waived"] and "pgolf-waivers.toml@main:1" in f["waived"] for f in sub), sub
    assert not [f for f in found if f["rule"] == "WAIVER-REASON" and f["severity"] == "warning"]
    # the pull request widens the waiver to every rule: the base copy still rules, and the edit is named
    (repo / "pgolf-waivers.toml").write_text(WAIVE_ALL.replace('"."', '"records/track_10min_16mb/2026-02-02_New"'))
    proc = run_pgolf(["audit", "--changed", "main", "--format", "json"], repo, module=True)
    assert proc.returncode == 1
    found = _findings(proc)
    assert [f for f in found if f["rule"] == "WAIVER-REASON" and f["severity"] == "error" and not f["waived"]]
    named = [f for f in found if f["rule"] == "WAIVER-REASON" and f["severity"] == "warning"]
    assert named and "changed since the base revision" in named[0]["message"]


def test_fsmonitor_in_the_checkout_config_never_runs(tmp_path):
    """Item 7: `--changed` ran git in the audited checkout; its `.git/config` core.fsmonitor ran four times."""
    repo = _repo(tmp_path)
    write_folder(repo, clean_record(), name="2026-02-02_New")
    canary = tmp_path / "ran"
    hook = tmp_path / "fsmonitor.sh"
    hook.write_text(f"#!/bin/sh\necho x >> {canary}\n")
    hook.chmod(0o755)
    _git(repo, "config", "core.fsmonitor", str(hook))
    disc, changed = changed_folders([], "main", cwd=repo)
    assert not canary.exists(), canary.read_text()
    assert disc.folders == [] and changed == []
    assert len(disc.problems) == 1 and "core.fsmonitor" in disc.problems[0].message and "refuses" in disc.problems[0].message
    proc = run_pgolf(["audit", "--changed", "main"], repo, module=True, GIT_CONFIG_PARAMETERS="")
    assert_no_traceback(proc)
    assert not canary.exists()
    _git(repo, "config", "--unset", "core.fsmonitor")
    disc, _ = changed_folders([], "main", cwd=repo)  # the same checkout without it audits
    assert [f.path.name for f in disc.folders] == ["2026-02-02_New"] and not disc.problems


def test_global_git_config_is_not_read(tmp_path, monkeypatch):
    repo = _repo(tmp_path)
    canary = tmp_path / "ran"
    hook = tmp_path / "fsmonitor.sh"
    hook.write_text(f"#!/bin/sh\necho x >> {canary}\n")
    hook.chmod(0o755)
    glob = tmp_path / "global.gitconfig"
    glob.write_text(f"[core]\n\tfsmonitor = {hook}\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(glob))
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "nowhere"))
    disc, _ = changed_folders([], "main", cwd=repo)
    assert not canary.exists() and not disc.problems


REAL_NAMES = ("Will DePue", "Will", "William", "Nan Liu", "Nan", "Na Li", "Fillip", "Tobe Ok", "Nathan Maine", "Willem")


def _corpus_names() -> list[str]:
    names = []
    if not CORPUS.is_dir():
        return names
    for p in sorted(CORPUS.glob("*/*/submission.json")):
        try:
            obj = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        v = obj.get("author") if isinstance(obj, dict) else None
        if isinstance(v, str) and v.lower().startswith(("will", "na", "fill", "to", "see")):
            names.append(v)
    return names


@pytest.mark.parametrize("name", REAL_NAMES)
def test_real_author_names_are_not_placeholders(name):
    """Item 8: a real author named "Will …" was read as a placeholder (`will .*`)."""
    c = parse_claims_text(json.dumps({"author": name, "github_id": name.split()[0].lower(), "val_bpb": 1.2}))
    assert c.author == name and not c.problems, c.problems


def test_corpus_author_names_are_not_placeholders():
    names = _corpus_names()
    if not names:
        pytest.skip("the shared corpus (tests.helpers.CORPUS) is not present on this machine")
    assert any(n.startswith("Will") for n in names)
    for n in names:
        c = parse_claims_text(json.dumps({"author": n, "val_bpb": 1.2}))
        assert c.author == n.strip(), (n, c.problems)


@pytest.mark.parametrize("value", ["pending", "TBD", "will be updated", "Will update after runs", "to be added", "N/A - see README",
                                   "FILL_AFTER_RUN", "<your name>", "WIP", "placeholder", "", "???"])
def test_placeholder_forms_still_caught(value):
    c = parse_claims_text(json.dumps({"author": value, "val_bpb": 1.2}))
    assert c.author is None and any("placeholder" in p.message for p in c.problems), (value, c.problems)
