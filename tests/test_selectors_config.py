"""--select/--ignore/--extend-select in every form, the [tool.pgolf] configuration, `pgolf config`,
--statistics/--quiet/--show-info, and usage errors: exit 2, one line, no traceback, printed once."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from auditor import config, selectors
from tests.ci_helpers import clean_record, git, make_pr_repo
from tests.helpers import write_folder

PGOLF = [sys.executable, "-P", "-m", "auditor"]
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "records"
NGRAM_FOLDER = EXAMPLES / "track_10min_16mb" / "2026-11-02_IllegalNgramTwoPass"


def _run(args, cwd, **env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR")}
    return subprocess.run(PGOLF + args, cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**base, "NO_COLOR": "1", "PGOLF_IN_PROCESS": "1", **env})


def _rules(proc) -> set[str]:
    return {f["rule"] for rec in json.loads(proc.stdout)["records"] for f in rec["findings"]}


# --- selectors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("selector, expected", [
    ("NGRAM-TARGET-IN-KEY", {"NGRAM-TARGET-IN-KEY"}),  # an id
    ("ngram-target-in-key", {"NGRAM-TARGET-IN-KEY"}),  # any case
    ("PG101", {"NGRAM-TARGET-IN-KEY"}),  # a code
    ("pg101", {"NGRAM-TARGET-IN-KEY"}),
    ("PG10", {"NGRAM-TARGET-IN-KEY", "EVAL-NORMALIZED-DIST", "EVAL-SINGLE-PASS", "EVAL-SCORE-BEFORE-UPDATE",
              "TTT-SCORE-FIRST", "TTT-PREQUANT", "TTT-MULTI-EPOCH", "SLOT-SCORED-REGION", "EVAL-CAUSAL"}),  # a code prefix
    ("NGRAM-", {"NGRAM-TARGET-IN-KEY", "NGRAM-HASHED-CACHE"}),  # an id prefix
    ("ngram", {"NGRAM-TARGET-IN-KEY", "NGRAM-HASHED-CACHE"}),  # a family
    ("time", {"TIME-TRAIN-600", "TIME-EVAL-600"}),
])
def test_each_selector_form(selector, expected):
    assert selectors.resolve([selector]) == expected


def test_select_ignore_extend_and_all():
    every = set(selectors.resolve(["ALL"]))
    assert len(every) == len(selectors.catalog()) >= 20
    assert selectors.resolve(None) is None  # nothing given: every rule, no filtering
    assert selectors.resolve(["PG1,NGRAM-"]) == selectors.resolve(["PG1"])  # comma-separated
    assert selectors.resolve(None, ["stats"]) == every - {"STATS-SEEDS", "STATS-SIGNIFICANCE"}
    assert selectors.resolve(["ngram"], ["PG111"]) == {"NGRAM-TARGET-IN-KEY"}
    assert selectors.resolve(["ngram"], None, ["TIME-TRAIN-600"]) == {"NGRAM-TARGET-IN-KEY", "NGRAM-HASHED-CACHE", "TIME-TRAIN-600"}


@pytest.mark.parametrize("selector, near", [("BOGUS", None), ("PG1O1", "PG101"), ("NGRAM-TARGET-IN-KY", "NGRAM-TARGET-IN-KEY"),
                                             ("PG0", None), ("N", None)])
def test_unknown_selector_names_the_closest(selector, near):
    with pytest.raises(selectors.SelectorError) as e:
        selectors.resolve(None, [selector])
    msg = str(e.value)
    assert msg.startswith(f"--ignore {selector!r} names no rule") and "\n" not in msg
    if near:
        assert near in msg.split("did you mean", 1)[1]


def test_rule_alias_and_selection_by_code_on_the_real_example(tmp_path):
    """The issue's false pass: `--rule PG101` printed PASS. Every form now finds the finding."""
    for sel in (["--rule", "PG101"], ["--select", "pg101"], ["--select", "PG1"], ["--select", "ngram"], ["--rule", "NGRAM-TARGET-IN-KEY"]):
        proc = _run(["audit", str(NGRAM_FOLDER), "-f", "json", *sel], tmp_path)
        assert proc.returncode == 1, (sel, proc.stderr)
        assert "NGRAM-TARGET-IN-KEY" in _rules(proc)
    only = _run(["audit", str(NGRAM_FOLDER), "-f", "json", "--select", "PG101"], tmp_path)
    assert _rules(only) == {"NGRAM-TARGET-IN-KEY"}
    rest = _run(["audit", str(NGRAM_FOLDER), "-f", "json", "--ignore", "PG1,report"], tmp_path)
    assert rest.returncode == 0 and not any(r.startswith(("NGRAM", "EVAL", "REPORT")) for r in _rules(rest))


# --- usage errors -------------------------------------------------------------------------------

def _assert_usage_error(proc, *needles):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("pgolf: "), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stdout == ""  # printed once, on stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.mark.parametrize("args, needles", [
    (["--select", "BOGUS"], ["--select 'BOGUS' names no rule"]),
    (["--rule", "PG1O1"], ["did you mean", "PG101"]),
    (["--ignore", "ngrm"], ["--ignore 'ngrm'", "ngram"]),
    (["--waivers", "/nonexistent/w.toml"], ["--waivers /nonexistent/w.toml: no such file"]),
    (["--against", "/nonexistent"], ["--against /nonexistent: no such record folder"]),
    (["--jobs", "0"], ["--jobs must be at least 1, not 0"]),
    (["--jobs", "-3"], ["--jobs must be at least 1, not -3"]),
    (["--timeout", "0"], ["--timeout must be a positive number"]),
    (["--format", "yaml"], ["--format", "'yaml' is not one of"]),
    (["--fail-on", "sometimes"], ["--fail-on"]),
    (["--rulebook", "2025-01-01"], ["--rulebook"]),
    (["--no-such-option"], ["No such option"]),
])
def test_usage_errors_are_one_line_exit_2(tmp_path, args, needles):
    write_folder(tmp_path, clean_record())
    _assert_usage_error(_run(["audit", "records", *args], tmp_path), *needles)


def test_missing_path_and_unknown_git_ref_are_one_line(tmp_path):
    _assert_usage_error(_run(["audit", "no/such/folder"], tmp_path), "no/such/folder: no such file or folder")
    t = make_pr_repo(tmp_path)
    proc = _run(["audit", "--changed", "no-such-ref"], t["repo"])
    _assert_usage_error(proc, "--changed no-such-ref: no branch, tag or commit of that name")
    assert "usage: git" not in proc.stderr.lower()
    _assert_usage_error(_run(["audit", "--changed", "main"], tmp_path), "needs a git checkout")
    _assert_usage_error(_run(["rule", "PG1O1"], tmp_path), "no rule 'PG1O1'", "PG101")


# --- configuration ------------------------------------------------------------------------------

def _repo_with_record(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    files = clean_record()
    del files["submission.json"]  # SUBMISSION-FILES (error)
    write_folder(repo, files)
    return repo


def test_pyproject_table_sets_defaults_and_the_command_line_wins(tmp_path):
    repo = _repo_with_record(tmp_path)
    (repo / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.pgolf]\nformat = "json"\nfail-on = "never"\n'
                                         'ignore = ["PG501"]\njobs = 2\n', encoding="utf-8")
    sub = repo / "records"  # settings come from the repository root, wherever pgolf runs inside it
    proc = _run(["audit", "."], sub)
    assert proc.returncode == 0, proc.stderr
    assert "SUBMISSION-FILES" not in _rules(proc)  # ignored by the file; output is JSON by the file
    proc = _run(["audit", ".", "--select", "PG501", "--fail-on", "error"], sub)
    assert proc.returncode == 1 and _rules(proc) == {"SUBMISSION-FILES"}  # the command line wins
    shown = _run(["config"], sub)
    assert shown.returncode == 0
    assert "[tool.pgolf]" in shown.stdout
    lines = {line.split()[0]: line for line in shown.stdout.splitlines()[1:]}
    assert lines["format"].split()[1] == "json" and "pyproject.toml [tool.pgolf]" in lines["format"]
    assert lines["rulebook"].endswith("(default)")
    assert lines["jobs"].split()[1] == "2"
    data = json.loads(_run(["config", "-f", "json"], sub).stdout)
    assert data["settings"]["ignore"] == {"value": ["PG501"], "source": f"{repo / 'pyproject.toml'} [tool.pgolf]"}


def test_pgolf_toml_wins_over_pyproject_and_bad_settings_are_usage_errors(tmp_path):
    repo = _repo_with_record(tmp_path)
    (repo / "pyproject.toml").write_text('[tool.pgolf]\nformat = "github"\n', encoding="utf-8")
    (repo / "pgolf.toml").write_text('format = "json"\nrulebook = "2026-03-18"\n', encoding="utf-8")
    cfg = config.load(repo)
    assert cfg.get("format") == "json" and cfg.file == repo / "pgolf.toml"
    (repo / "pgolf.toml").write_text('fail_on = "sometimes"\n', encoding="utf-8")
    _assert_usage_error(_run(["audit", "."], repo), "pgolf.toml", "fail-on must be one of")
    (repo / "pgolf.toml").write_text('selct = ["PG1"]\n', encoding="utf-8")
    _assert_usage_error(_run(["audit", "."], repo), "unknown setting 'selct'", "did you mean 'select'")
    (repo / "pgolf.toml").write_text('select = ["NOPE"]\n', encoding="utf-8")
    _assert_usage_error(_run(["audit", "."], repo), "select in", "pgolf.toml", "'NOPE' names no rule")
    (repo / "pgolf.toml").write_text('jobs = 0\n', encoding="utf-8")
    _assert_usage_error(_run(["config"], repo), "jobs must be a whole number of at least 1")
    (repo / "pgolf.toml").write_text('waivers = "missing.toml"\n', encoding="utf-8")
    _assert_usage_error(_run(["audit", "."], repo), "waivers in", "missing.toml: no such file")
    (repo / "pgolf.toml").write_text('format = \n', encoding="utf-8")
    _assert_usage_error(_run(["audit", "."], repo), "pgolf.toml: not valid TOML")


def test_configuration_is_never_taken_from_a_record_folder(tmp_path):
    folder = write_folder(tmp_path, clean_record())
    (folder / "pgolf.toml").write_text('fail-on = "never"\nignore = ["ALL"]\n', encoding="utf-8")
    (folder / "pyproject.toml").write_text('[tool.pgolf]\nfail-on = "never"\n', encoding="utf-8")
    cfg = config.load(folder)
    assert cfg.file is None and cfg.source("fail-on") == "default"
    proc = _run(["config"], folder)
    assert proc.stdout.startswith("configuration file: none")


# --- statistics, quiet, show-info -----------------------------------------------------------------

def test_statistics_quiet_and_info_hidden_from_ci_output(tmp_path):
    stats = _run(["audit", str(EXAMPLES), "--statistics"], tmp_path)
    assert stats.returncode == 1
    lines = stats.stdout.strip().split("\n")
    assert any(line.split()[1:3] == ["PG101", "NGRAM-TARGET-IN-KEY"] for line in lines[:-1])
    counts = [int(line.split()[0]) for line in lines[:-1]]
    assert counts == sorted(counts, reverse=True)
    assert lines[-1].startswith("19 folders in ") and lines[-1].endswith(" pass")
    quiet = _run(["audit", str(EXAMPLES), "-q"], tmp_path)
    assert "Summary (worst first)" in quiet.stdout and "│ " not in quiet.stdout  # no per-finding evidence
    github = _run(["audit", str(EXAMPLES), "-f", "github"], tmp_path).stdout
    shown = _run(["audit", str(EXAMPLES), "-f", "github", "--show-info"], tmp_path).stdout
    assert "::notice" not in github and "::notice" in shown
    assert github.count("::error") == shown.count("::error") and github.count("::warning") == shown.count("::warning")
    clean = str(EXAMPLES / "track_10min_16mb" / "2026-11-01_ParserDemo_Clean")
    md = _run(["audit", clean, "-f", "markdown"], tmp_path).stdout
    md_info = _run(["audit", clean, "-f", "markdown", "--show-info"], tmp_path).stdout
    assert "no previous record given" not in md and "no previous record given" in md_info


def test_a_pyproject_without_the_table_is_not_a_configuration(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"  # settings would go in [tool.pgolf]\n', encoding="utf-8")
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    cfg = config.load(sub)
    assert cfg.root == tmp_path and cfg.file is None
    (tmp_path / "pyproject.toml").write_text('[tool.pgolf]\njobs = 3\n', encoding="utf-8")
    cfg = config.load(sub)
    assert cfg.file == tmp_path / "pyproject.toml" and cfg.get("jobs") == 3 and cfg.source("jobs").endswith("[tool.pgolf]")
