"""The audited leaderboard: frontiers, significance against the frontier of a record's date, the
README cross-check, every format, and the command over a synthetic repository with PR refs."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from auditor import leaderboard as lb
from auditor.admissible import Admissible, AdmissibleSeed
from auditor.model import Claims, Finding, Measured, RecordResult, SeedMeasure, Severity
from tests.test_gitsource import BASE, MERGED, NEW, make_repo

README = """# Challenge

## Leaderboard

| Run | Score | Author | Summary | Date | Info |
|-----|------:|--------|---------|------|------|
| New | 1.2145 | a | On PR #1: better | 2026-02-01 | [info](https://github.com/openai/parameter-golf/pull/1) |
| Merged | 1.2195 | b | merged one | 2026-01-15 | [info](records/track_10min_16mb/2026-01-15_Merged/README.md) |
| Base | 1.2300 | c | wrong score | 2026-01-02 | [info](records/track_10min_16mb/2026-01-01_Base/README.md) |
| Gone | 1.1000 | d | no folder | 2026-01-03 | [info](records/track_10min_16mb/2026-01-03_Gone/README.md) |
| Unknown PR | 1.0000 | e | no ref | 2026-01-04 | [info](https://github.com/openai/parameter-golf/pull/77) |
| Merged PR | 1.2195 | g | merged with a merge commit | 2026-01-15 | [info](https://github.com/openai/parameter-golf/pull/3) |

#### Unlimited Compute Leaderboard & Non-record Submissions

| Run | Score | Author | Summary | Date | Info |
|-----|------:|--------|---------|------|------|
| Long | 1.1 | f | four hours | 2026-01-05 | [info](records/track_non_record_16mb/2026-01-05_Long/README.md) |
"""


def _rec(path: str, claimed: float | None, verdict: str, seeds: list[tuple[float, float]], status: str = "measured",
         errors: tuple[str, ...] = (), date: str | None = None, track: str = "10min") -> RecordResult:
    sm = [SeedMeasure(seed=i, val_bpb=b, val_loss=l, label="final", train_time_ms=None, eval_time_ms=None,
                      bytes_total=15_000_000, bytes_code=None, log=f"s{i}.log") for i, (b, l) in enumerate(seeds)]
    mean = sum(b for b, _ in seeds) / len(seeds) if seeds else None
    adm = Admissible(status=status, val_bpb=mean if status != "not-derivable" else None,
                     seeds=[AdmissibleSeed(seed=s.seed, log=s.log, val_bpb=s.val_bpb, val_loss=s.val_loss) for s in sm],
                     excludes=["n-gram cache"] if status == "derived" else [],
                     reason="no evaluation is printed before the stage" if status == "not-derivable" else None)
    return RecordResult(path=path, track=track, verdict=verdict, claims=Claims(val_bpb=claimed, date=date),
                        measured=Measured(val_bpb=mean, seeds=sm, bytes_total=15_000_000, bytes_source="measured"),
                        findings=[Finding(e, Severity.ERROR, "train_gpt.py", 1, "m") for e in errors], admissible=adm)


def _seeds(m: float, d: float = 0.0004) -> list[tuple[float, float]]:
    return [(m - d, 2 * (m - d)), (m, 2 * m), (m + d, 2 * (m + d))]


def _board():
    T = "records/track_10min_16mb/"
    recs = [
        (_rec("a", 1.2244, "pass", _seeds(1.2244)), lb.Origin(T + "2026-01-01_A")),
        (_rec("b", 0.2841, "fail", _seeds(1.2100), "derived", ("NGRAM-TARGET-IN-KEY",)), lb.Origin(T + "2026-01-10_B", ref="refs/pull/5/head")),
        (_rec("c", 1.1000, "fail", _seeds(1.1000), "not-derivable", ("ARTIFACT-16MB",)), lb.Origin(T + "2026-01-12_C")),
        (_rec("d", 1.2090, "pass", _seeds(1.2095)), lb.Origin(T + "2026-01-20_D")),
        (_rec("e", 1.2000, "needs-review", _seeds(1.2000)), lb.Origin(T + "2026-01-25_E")),
    ]
    return lb.build(recs, source="test")


def test_frontiers_claimed_and_audited():
    board = _board()
    claimed = [(p.date, p.val_bpb) for p in board.claimed_frontier["10min"]]
    audited = [(p.date, round(p.val_bpb, 6)) for p in board.audited_frontier["10min"]]
    assert claimed == [("2026-01-01", 1.2244), ("2026-01-10", 0.2841)]
    # the n-gram record counts with the score it printed before its cache; the over-cap one and
    # the one that needs review do not count
    assert audited == [("2026-01-01", 1.2244), ("2026-01-10", 1.21), ("2026-01-20", 1.2095)]
    b = next(e for e in board.entries if e.folder.endswith("_B"))
    assert b.pr == 5 and b.eligible and b.on_audited_frontier and b.on_claimed_frontier


def test_significance_against_the_frontier_of_its_date():
    board = _board()
    by = {e.folder.rsplit("_", 1)[-1]: e for e in board.entries}
    assert by["A"].against is None and by["A"].p_practice is None  # nothing before it
    assert by["B"].against.endswith("2026-01-01_A")
    assert by["B"].significant_practice is True and by["B"].significant_readme is True  # 0.0144 bpb ≈ 0.029 nats better
    d = by["D"]
    assert d.against == "refs/pull/5/head:records/track_10min_16mb/2026-01-10_B"  # the audited frontier on its date
    assert d.significant_practice is True and d.significant_readme is False  # 0.0005 bpb: under the 0.005-nat margin
    assert by["C"].p_practice is None  # no admissible values: not tested


def test_readme_rows_are_parsed_per_table():
    rows = lb.readme_rows(README)
    assert [(r.table, r.score, r.pr) for r in rows] == [("10min", "1.2145", 1), ("10min", "1.2195", None),
                                                        ("10min", "1.2300", None), ("10min", "1.1000", None),
                                                        ("10min", "1.0000", 77), ("10min", "1.2195", 3), ("non_record", "1.1", None)]
    assert rows[1].link == "records/track_10min_16mb/2026-01-15_Merged/README.md" and rows[1].line == 8


def test_score_rounding_follows_the_rows_decimals():
    assert lb._score_ok("1.206", 1.20576) and not lb._score_ok("1.206", 1.20651)
    assert lb._score_ok("1.2244", 1.22436) and not lb._score_ok("1.2244", 1.22446)
    assert not lb._score_ok("n/a", 1.0) and not lb._score_ok("1.2", None)


def _run(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    e = dict(os.environ, PGOLF_IN_PROCESS="1", **(env or {}))
    return subprocess.run([sys.executable, "-m", "auditor", *args], cwd=cwd, env=e, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = make_repo(tmp_path_factory.mktemp("lb"))
    (repo / "README.md").write_text(README)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "readme"], cwd=repo, check=True)
    return repo


def test_leaderboard_command_from_refs_with_readme_check(repo, tmp_path):
    from auditor.cli_leaderboard import leaderboard_command
    import os

    os.environ["PGOLF_IN_PROCESS"] = "1"
    try:
        out = tmp_path / "lb.json"
        png = tmp_path / "lb.png"
        code = leaderboard_command(source=str(repo), refs=["main"], base=None, readme=None, fmt="json", output=str(out),
                                   plot=str(png), jobs=1, timeout=None, cache_dir=str(tmp_path / "cache"), use_cache=True,
                                   rulebook=None, quiet=True)
    finally:
        os.environ.pop("PGOLF_IN_PROCESS", None)
    assert code == 0
    doc = json.loads(out.read_text())
    folders = sorted((r["ref"], r["folder"]) for r in doc["records"])
    # main's two records, and PR #1's folder, audited because a README row links that PR
    assert folders == [("refs/heads/main", BASE), ("refs/heads/main", MERGED), ("refs/pull/1/head", NEW)]
    rows = {r["run"]: r for r in doc["readme"]}
    assert rows["New"]["status"] == "supported" and rows["New"]["ref"] == "refs/pull/1/head"
    assert rows["Merged"]["status"] == "supported" and rows["Merged"]["folder"] == MERGED
    assert rows["Base"]["status"] == "mismatch"
    assert rows["Base"]["reasons"] == ["score: the row says 1.2300, the folder claims 1.2245",
                                       "score: the logs give 1.22447 (mean of 3 seed finals), not 1.2300",
                                       "date: the row says 2026-01-02, the folder is dated 2026-01-01 (+1 days)"]
    assert rows["Gone"]["status"] == "unmatched"
    assert rows["Gone"]["reasons"] == ["link: records/track_10min_16mb/2026-01-03_Gone is not a record folder of the audited tree"]
    assert rows["Unknown PR"]["reasons"] == ["link: PR #77 has no ref in the repository"]
    assert rows["Long"]["status"] == "unmatched"
    # a PR merged with a merge commit: matched to its folder as it sits on main, which learns the PR number
    assert (rows["Merged PR"]["status"], rows["Merged PR"]["ref"], rows["Merged PR"]["folder"]) == ("supported", "refs/heads/main", MERGED)
    assert next(r for r in doc["records"] if r["folder"] == MERGED)["pr"] == 3
    assert png.stat().st_size > 10_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_format_renders(repo):
    board = _board()
    lb.crosscheck(board, README, pr_refs_known={1})
    text = lb.render_text(board)
    assert "== track_10min_16mb (5 records) ==" in text and "README leaderboard: 7 rows" in text
    assert "2026-01-10  #5" in text
    md = lb.render_markdown(board)
    assert "| date | PR | folder |" in md and "### Frontier over time" in md
    rows = list(csv.DictReader(io.StringIO(lb.render_csv(board))))
    assert len(rows) == 5 and rows[1]["admissible_status"] == "derived" and rows[1]["excludes"] == "n-gram cache"
    doc = json.loads(lb.render_json(board))
    assert doc["audited_frontier"]["10min"][1]["val_bpb"] == pytest.approx(1.21)


def test_cli_leaderboard_and_audit_ref(repo, tmp_path):
    from auditor.cli import app  # noqa: F401  (the command must be registered)

    r = _run(["leaderboard", str(repo), "--ref", "refs/pull/*/head", "--format", "csv", "--cache-dir", str(tmp_path / "c")], tmp_path)
    if "No such command" in r.stderr:
        pytest.skip("the leaderboard command is not registered in this checkout's cli.py")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith("track,date,pr,folder")
    assert len(r.stdout.splitlines()) == 4  # PRs 1, 3 and 4 add a record folder; PR 2 none
    a = _run(["audit", str(repo), "--ref", "refs/pull/1/head", "--format", "json"], tmp_path, {"PGOLF_CACHE_DIR": str(tmp_path / "c")})
    assert a.returncode == 0, a.stderr
    doc = json.loads(a.stdout)
    assert [r["path"] for r in doc["records"]] == [f"refs/pull/1/head:{NEW}"]
    bad = _run(["leaderboard", str(tmp_path), "--ref", "main"], tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "not a git repository" in bad.stderr


def test_cli_leaderboard_options(repo, tmp_path):
    out, png, cache = tmp_path / "lb.md", tmp_path / "f.png", tmp_path / "cache"
    readme = tmp_path / "R.md"
    readme.write_text(README.replace("| Base | 1.2300 |", "| Base | 1.2245 |"))
    r = _run(["leaderboard", str(repo), "--ref", "main", "--base", "main", "--readme", str(readme), "--format", "markdown",
              "--output", str(out), "--plot", str(png), "--jobs", "1", "--timeout", "60", "--no-cache",
              "--cache-dir", str(cache), "--rulebook", "2026-03-18", "--quiet"], tmp_path)
    if "No such command" in r.stderr:
        pytest.skip("the leaderboard command is not registered in this checkout's cli.py")
    assert r.returncode == 0 and r.stdout == "" and r.stderr == ""  # --quiet: no summary line; -o: nothing on stdout
    md = out.read_text()
    assert md.startswith("# Audited leaderboard") and "## README leaderboard rows" in md
    assert "| 9 | 1.2245 | 2026-01-02 | Base |" in md  # the file given with --readme was read, not main's README
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert not list(cache.rglob("*.pickle"))  # --no-cache: nothing read or written there
    for bad, why in ((["--jobs", "0"], "--jobs must be at least 1, not 0"), (["--rulebook", "1999"], "--rulebook '1999'"),
                     (["--readme", "nope.md"], "--readme nope.md: no such file")):
        b = _run(["leaderboard", str(repo), "--ref", "main", *bad], tmp_path)
        assert b.returncode == 2 and why in b.stderr and b.stderr.count("\n") == 1, b.stderr


@pytest.mark.parametrize("sub", ["", "records"])
def test_a_checkout_or_its_records_folder_match_the_same_readme_rows(repo, tmp_path, sub):
    """README rows link records/track_…/folder; handing in the checkout or its records/ folder names the
    folders the same way, so the same rows are supported."""
    from auditor.cli_leaderboard import leaderboard_command
    import os

    os.environ["PGOLF_IN_PROCESS"] = "1"
    try:
        out = tmp_path / "lb.json"
        code = leaderboard_command(source=str(repo / sub) if sub else str(repo), refs=[], base=None,
                                   readme=str(repo / "README.md"), fmt="json", output=str(out), plot=None, jobs=1,
                                   timeout=None, cache_dir=str(tmp_path / "cache"), use_cache=False, rulebook=None, quiet=True)
    finally:
        os.environ.pop("PGOLF_IN_PROCESS", None)
    assert code == 0
    doc = json.loads(out.read_text())
    assert sorted(r["folder"] for r in doc["records"]) == sorted([BASE, MERGED])
    rows = {r["run"]: r for r in doc["readme"]}
    assert (rows["Merged"]["status"], rows["Merged"]["folder"]) == ("supported", MERGED)
    assert rows["Base"]["status"] == "mismatch"
