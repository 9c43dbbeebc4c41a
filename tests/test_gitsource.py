"""Record folders read straight from git objects: refs, merge-base diffing, caching, no checkout.

The repository is built here with real git: a main branch with one record, a PR that adds a
record, a PR that changes only files outside records/, a PR merged with a merge commit, a PR that
ships a symlink and an oversized file.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from auditor import fs, gitsource
from auditor.context import AuditOptions
from rules.time_logs import baseline_log

ONLY = {"SUBMISSION-FILES", "STATS-SEEDS", "REPORT-CONSISTENCY", "NGRAM-TARGET-IN-KEY"}
FINALS = {1337: (1.2244, 2.0727), 42: (1.2251, 2.0739), 2024: (1.2239, 2.0718)}


TRAIN = "import torch\n\ndef main():\n    pass\n"


def record_files(bpb_shift: float = 0.0, claim: float | None = None, name: str = "Test", after: str = "") -> dict[str, str]:
    files = {f"train_seed{s}.log": baseline_log(s, b + bpb_shift, l, code=len(TRAIN)) + after for s, (b, l) in FINALS.items()}
    mean = sum(b + bpb_shift for b, _ in FINALS.values()) / 3
    files["submission.json"] = json.dumps({"name": name, "author": "t", "github_id": "t",
                                           "val_bpb": round(claim if claim is not None else mean, 4),
                                           "bytes_total": 15_812_345 + len(TRAIN), "seeds": sorted(FINALS)})
    files["README.md"] = f"# {name}\n"
    files["train_gpt.py"] = TRAIN
    return files


def _git(repo: Path, *args: str, **kw) -> str:
    env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(repo), "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True, **kw).stdout.strip()


def _write(repo: Path, rel: str, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        p = repo / rel / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode())


BASE = "records/track_10min_16mb/2026-01-01_Base"
NEW = "records/track_10min_16mb/2026-02-01_New"
MERGED = "records/track_10min_16mb/2026-01-15_Merged"


def make_repo(root: Path) -> Path:
    """A checkout whose .git holds main and refs/pull/{1,2,3,4}/head."""
    repo = root / "challenge"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _write(repo, BASE, record_files(name="Base"))
    (repo / "README.md").write_text("# challenge\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "base")
    # PR 1 adds a better record
    _git(repo, "checkout", "-q", "-b", "pr1")
    _write(repo, NEW, record_files(-0.01, name="New"))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "new record")
    _git(repo, "update-ref", "refs/pull/1/head", "HEAD")
    # PR 2 changes only files outside records/
    _git(repo, "checkout", "-q", "main")
    _git(repo, "checkout", "-q", "-b", "pr2")
    (repo / "README.md").write_text("# challenge\n\nbetter docs\n")
    _git(repo, "commit", "-q", "-am", "docs only")
    _git(repo, "update-ref", "refs/pull/2/head", "HEAD")
    # PR 3 is merged into main with a merge commit: its head is an ancestor of main
    _git(repo, "checkout", "-q", "main")
    _git(repo, "checkout", "-q", "-b", "pr3")
    _write(repo, MERGED, record_files(-0.005, name="Merged"))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "merged record")
    _git(repo, "update-ref", "refs/pull/3/head", "HEAD")
    _git(repo, "checkout", "-q", "main")
    (repo / "NOTES.md").write_text("main moves on\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "main moves on")
    _git(repo, "merge", "-q", "--no-ff", "-m", "merge pr3", "pr3")
    # PR 4 ships a symlink to a secret and a file over the cap inside its record
    _git(repo, "checkout", "-q", "-b", "pr4")
    folder = repo / "records/track_10min_16mb/2026-03-01_Hostile"
    _write(repo, "records/track_10min_16mb/2026-03-01_Hostile", record_files(name="Hostile"))
    os.symlink("/etc/passwd", folder / "train_seed7.log")
    (folder / "big.txt").write_bytes(b"x" * 4096)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "hostile")
    _git(repo, "update-ref", "refs/pull/4/head", "HEAD")
    _git(repo, "checkout", "-q", "main")
    return repo


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return make_repo(tmp_path_factory.mktemp("gitsrc"))


def _folders(repo: Path, pats: list[str]) -> dict[str, list[str]]:
    gitdir = gitsource.find_gitdir(repo)
    _, per = gitsource.discover_refs(gitdir, pats)
    return {rf.ref: [p for p, _ in rf.folders] for rf in per}


def test_find_gitdir_checkout_and_bare(repo, tmp_path):
    assert gitsource.find_gitdir(repo) == str((repo / ".git").resolve())
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(bare)], check=True, capture_output=True)
    assert gitsource.find_gitdir(bare) == str(bare.resolve())
    with pytest.raises(gitsource.GitError, match="not a git repository"):
        gitsource.find_gitdir(tmp_path)


def test_pr_folders_come_from_the_merge_base_diff(repo):
    got = _folders(repo, ["refs/pull/*/head"])
    assert got["refs/pull/1/head"] == [NEW]  # the base record it inherits is not its own
    assert got["refs/pull/2/head"] == []
    assert got["refs/pull/3/head"] == [MERGED]  # merged with a merge commit: diffed against its fork point
    assert got["refs/pull/4/head"] == ["records/track_10min_16mb/2026-03-01_Hostile"]


def test_base_branch_is_read_whole(repo):
    assert _folders(repo, ["main"])["refs/heads/main"] == [BASE, MERGED]


def test_pr_outside_records_says_so(repo):
    gitdir = gitsource.find_gitdir(repo)
    _, per = gitsource.discover_refs(gitdir, ["refs/pull/2/head"])
    assert per[0].folders == []
    assert per[0].problems == [("refs/pull/2/head", "changes 1 file(s), none under records/; no record folder to audit")]


def test_unknown_ref_and_option_like_ref(repo):
    gitdir = gitsource.find_gitdir(repo)
    disc, per = gitsource.discover_refs(gitdir, ["refs/pull/99/head", "refs/nothing/*"])
    assert per == []
    assert [p.line() for p in disc.problems] == ["refs/pull/99/head: no such ref or commit in the repository",
                                                "refs/nothing/*: no ref matches this pattern"]
    with pytest.raises(gitsource.GitError, match="not '--output=x'"):
        gitsource.discover_refs(gitdir, ["--output=x"])


def test_files_are_read_through_the_same_caps_without_a_checkout(repo):
    gitdir = gitsource.find_gitdir(repo)
    _, per = gitsource.discover_refs(gitdir, ["refs/pull/4/head"])
    folders, _ = gitsource.build_folders(gitdir, per[0])
    f = folders[0]
    assert not Path(f.path).exists()  # nothing on disk: the path exists only in the mount table
    assert "train_seed1337.log" in f.files and "train_seed7.log" not in f.files
    assert f.symlinks == ["train_seed7.log"]
    assert any(p.message == "symlink in the git tree; not followed" for p in f.problems)
    text = fs.read_text(f.path / "train_seed1337.log", f.root).text
    assert "final_int8_zlib_roundtrip_exact" in text
    assert fs.check_readable(f.path / "big.txt", f.root) == 4096
    with pytest.raises(fs.UnreadableFile, match="4,096 bytes, over the 4,095-byte cap"):
        fs.read_bytes(f.path / "big.txt", f.root, max_bytes=4095)
    with pytest.raises(fs.UnreadableFile, match="symlink"):
        fs.read_bytes(f.path / "train_seed7.log", f.root)
    with pytest.raises(fs.UnreadableFile, match="no such file"):
        fs.read_bytes(f.path / "../2026-01-01_Base/README.md", f.root)


def _snapshot(repo: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in repo.rglob("*") if p.is_file() and not p.is_symlink()}


def test_cached_audit_of_refs(repo, tmp_path, monkeypatch):
    monkeypatch.setenv("PGOLF_IN_PROCESS", "1")
    monkeypatch.setattr(gitsource, "CHUNK", 2)  # results are cached chunk by chunk, in order
    gitdir = gitsource.find_gitdir(repo)
    before = _snapshot(repo)
    opts = AuditOptions(only_rules=ONLY)
    cache = tmp_path / "cache"
    first = gitsource.audit_refs(gitdir, ["refs/pull/*/head"], opts, cache=cache)
    paths = [r.path for r in first.report.records]
    assert paths == [f"refs/pull/1/head:{NEW}", f"refs/pull/3/head:{MERGED}",
                     "refs/pull/4/head:records/track_10min_16mb/2026-03-01_Hostile"]
    assert (first.audited, first.cached) == (3, 0)
    new = first.report.records[0]
    assert new.verdict == "pass" and abs(new.measured.val_bpb - (1.2244 + 1.2251 + 1.2239 - 0.03) / 3) < 1e-9
    assert new.admissible.status == "measured"
    second = gitsource.audit_refs(gitdir, ["refs/pull/*/head"], opts, cache=cache)
    assert (second.audited, second.cached) == (0, 3)
    assert [r.path for r in second.report.records] == paths
    assert [r.verdict for r in second.report.records] == [r.verdict for r in first.report.records]
    # another rulebook is another key: nothing stale is served
    third = gitsource.audit_refs(gitdir, ["refs/pull/1/head"], AuditOptions(only_rules=ONLY, rulebook="2026-03-18"), cache=cache)
    assert (third.audited, third.cached) == (1, 0)
    assert _snapshot(repo) == before  # no checkout, no file written in the repository
    assert not list(Path(gitsource.MOUNT_TOP).parent.glob(".pgolf-git"))


def test_same_tree_under_two_refs_is_audited_once(repo, tmp_path, monkeypatch):
    monkeypatch.setenv("PGOLF_IN_PROCESS", "1")
    gitdir = gitsource.find_gitdir(repo)
    _git(repo, "update-ref", "refs/pull/5/head", "refs/pull/1/head")
    try:
        ra = gitsource.audit_refs(gitdir, ["refs/pull/1/head", "refs/pull/5/head"], AuditOptions(only_rules=ONLY),
                                  use_cache=False)
    finally:
        _git(repo, "update-ref", "-d", "refs/pull/5/head")
    assert ra.audited == 1
    assert [r.path for r in ra.report.records] == [f"refs/pull/1/head:{NEW}", f"refs/pull/5/head:{NEW}"]


def test_workers_read_git_folders(repo, tmp_path, monkeypatch):
    """Through the isolated worker pool: the folder is pickled, and the worker mounts it again."""
    monkeypatch.delenv("PGOLF_IN_PROCESS", raising=False)
    gitdir = gitsource.find_gitdir(repo)
    ra = gitsource.audit_refs(gitdir, ["refs/pull/1/head"], AuditOptions(only_rules=ONLY), use_cache=False, jobs=1)
    assert ra.failed == [] and ra.report.records[0].verdict == "pass"
    assert [s.seed for s in ra.report.records[0].measured.seeds] == [42, 1337, 2024] or \
        sorted(s.seed for s in ra.report.records[0].measured.seeds) == [42, 1337, 2024]


def test_hostile_repository_config_runs_nothing(repo, tmp_path):
    marker = tmp_path / "pwned"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    cfg = repo / ".git" / "config"
    old = cfg.read_text()
    try:
        with open(cfg, "a") as fh:
            fh.write(f"[core]\n\tfsmonitor = {hook}\n\thooksPath = {tmp_path}\n[diff]\n\texternal = {hook}\n")
        _folders(repo, ["refs/pull/*/head", "main"])
    finally:
        cfg.write_text(old)
    assert not marker.exists()


def test_ref_cache_skips_diffing(repo, tmp_path):
    gitdir = gitsource.find_gitdir(repo)
    cache: dict = {}
    _, per = gitsource.discover_refs(gitdir, ["refs/pull/1/head"], ref_cache=cache)
    assert len(cache) == 1
    key = next(iter(cache))
    cache[key]["folders"] = [["records/x", "0" * 40]]  # served from the cache, not recomputed
    _, again = gitsource.discover_refs(gitdir, ["refs/pull/1/head"], ref_cache=cache)
    assert again[0].folders == [("records/x", "0" * 40)]


PR864 = "records/track_10min_16mb/2026-03-26_11L_ParallelMuon_NgramBackoff"


@pytest.mark.skipif(not os.environ.get("PGOLF_CHALLENGE_REPO"), reason="PGOLF_CHALLENGE_REPO (the challenge repository's git dir) is not set")
def test_pr864_from_its_ref(monkeypatch):
    monkeypatch.setenv("PGOLF_IN_PROCESS", "1")
    gitdir = gitsource.find_gitdir(os.environ["PGOLF_CHALLENGE_REPO"])
    ra = gitsource.audit_refs(gitdir, ["refs/pull/864/head"], AuditOptions(), use_cache=False)
    rec = ra.report.records[0]
    assert rec.path == f"refs/pull/864/head:{PR864}"
    assert rec.verdict == "fail" and rec.claims.val_bpb == 0.2841
    adm = rec.admissible
    assert adm.status == "derived" and round(adm.val_bpb, 4) == 1.1278
    assert adm.evidence[0] == "train_seed1337.log:79: final_int6_zstd_roundtrip_exact val_loss:1.90443578 val_bpb:1.12791767"
    assert len(adm.evidence) == 3 and "n-gram cache" in adm.excludes


def test_txt_log_named_like_nothing_is_read_as_a_log(tmp_path, monkeypatch):
    """discovery sniffs a .txt file's content (byte_jepa_896d14l_2000.txt); so does a folder from git."""
    repo = tmp_path / "r"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    files = record_files(name="Odd")
    files["byte_jepa_896d14l_2000.txt"] = files.pop("train_seed42.log")
    _write(repo, "records/track_10min_16mb/2026-01-01_Odd", files)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "odd")
    gitdir = gitsource.find_gitdir(repo)
    _, per = gitsource.discover_refs(gitdir, ["main"])
    folder = gitsource.build_folders(gitdir, per[0])[0][0]
    from auditor.evidence import read_evidence

    ev = read_evidence(folder)
    assert sorted(lf.path for lf in ev.logs) == ["byte_jepa_896d14l_2000.txt", "train_seed1337.log", "train_seed2024.log"]


def test_a_git_folder_is_dated_by_its_repository_path_not_its_mount_point(tmp_path, monkeypatch):
    """STATS-SEEDS reports a one-seed record from before the 3-seed rule as info; read from git, the
    folder's path is a mount point named after its tree id, so the date must come from the repo path."""
    monkeypatch.setenv("PGOLF_IN_PROCESS", "1")
    repo = tmp_path / "early"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    rel = "records/track_10min_16mb/2026-03-17_Early"
    files = {k: v for k, v in record_files(name="Early").items() if "42" not in k and "2024" not in k}
    _write(repo, rel, files)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "early")
    ra = gitsource.audit_refs(gitsource.find_gitdir(repo), ["main"], AuditOptions(only_rules={"STATS-SEEDS"}), use_cache=False)
    [rec] = ra.report.records
    [f] = [f for f in rec.findings if f.rule == "STATS-SEEDS" and "seed(s) with a final score" in f.message]
    assert f.severity.value == "info" and "predates the 2026-03-20 rule" in f.message
    from auditor.discover import discover
    from auditor.pipeline import audit_folder
    on_disk = audit_folder(discover([str(repo / rel)]).folders[0], AuditOptions(only_rules={"STATS-SEEDS"}))
    assert [(g.rule, g.severity, g.message) for g in on_disk.findings] == [(g.rule, g.severity, g.message) for g in rec.findings]
