"""`run_audit`, the body of `pgolf audit`, pinned option by option where the mutation run (benchmarks/mutation.py
cli_audit) showed a bug would pass: --changed limited to the paths given, --timeout and --jobs reaching the
runner, the timings file, --probe/--probe-all, --quiet and the elapsed time in the text report, --statistics in
each format, colour only on a terminal, report problems on stderr exactly once, the exact one-line messages and
exit 2 when discovery, rendering or writing fails."""
from __future__ import annotations

import io
import json
import re
import subprocess
import sys

import pytest

from auditor import cli_audit
from auditor.cli_audit import run_audit
from rules.time_logs import three_seeds
from tests.helpers import write_folder


@pytest.fixture(autouse=True)
def _in_process(monkeypatch):
    monkeypatch.setenv("PGOLF_IN_PROCESS", "1")  # fast enough to mutate; the tests that need workers unset it
    monkeypatch.delenv("PGOLF_FOLDER_TIMEOUT", raising=False)
    monkeypatch.delenv("PGOLF_TIMINGS_FILE", raising=False)
    for k in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("TERM", "xterm")  # rich draws nothing live on a "dumb" terminal (some CI runners)


OVER = {"train_gpt.py": "print(1)\n", **three_seeds(model=16_100_000, code=10)}  # ARTIFACT-16MB: an error
OVERSHOOT = {"train_gpt.py": "print(1)\n", **three_seeds(train_ms=600_400)}  # TIME-TRAIN-600: info only


def _audit(paths, *, out=None, fmt="json", only=("ARTIFACT-16MB",), quiet=True, **kw):
    kw.setdefault("fail_on", "error")
    return run_audit(paths=[str(p) for p in paths], fmt=fmt, output=str(out) if out else None, changed=kw.pop("changed", None),
                     against=[], rulebook="2026-04-28", only_rules=list(only), jobs=kw.pop("jobs", 1), waivers=None, quiet=quiet, **kw)


class _Terminal(io.TextIOWrapper):
    """A stream that says it is a terminal (stdout or stderr of a person at a shell)."""

    def __init__(self):
        super().__init__(io.BytesIO(), encoding="utf-8", write_through=True)

    def isatty(self):
        return True

    def text(self) -> str:
        self.flush()
        return self.buffer.getvalue().decode("utf-8")


def _git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True, capture_output=True)


def test_changed_audits_only_changed_folders_under_the_paths_given(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    write_folder(repo, OVER, name="2026-01-01_Old")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "base")
    write_folder(repo, OVER, name="2026-01-02_New")
    write_folder(repo, OVER, track="track_non_record_16mb", name="2026-01-03_Other")
    monkeypatch.chdir(repo)
    code = _audit([repo / "records" / "track_non_record_16mb"], out=tmp_path / "r.json", changed="HEAD")
    doc = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert code == 1 and [r["path"].rsplit("/", 1)[-1] for r in doc["records"]] == ["2026-01-03_Other"]


def test_a_discovery_failure_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    """Fault injection: discovery has no known crash, so one is planted; the guard must still hold."""
    def broken(paths):
        raise RuntimeError("planted")

    monkeypatch.setattr(cli_audit, "discover", broken)
    assert _audit([tmp_path], out=tmp_path / "r.json") == 2
    assert capsys.readouterr().err == "pgolf: discovery failed: RuntimeError: planted\n"
    assert not (tmp_path / "r.json").exists()


def test_quiet_is_passed_to_the_progress_bar_and_the_text_report(tmp_path, monkeypatch):
    tree = tmp_path / "tree"
    for i in range(2):
        write_folder(tree, OVER, name=f"2026-01-0{i + 1}_R{i}")
    err = _Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    assert _audit([tree], out=tmp_path / "q.txt", fmt="text", quiet=True) == 1
    assert err.text() == ""  # no progress bar under --quiet, even on a terminal
    assert _audit([tree], out=tmp_path / "loud.txt", fmt="text", quiet=False) == 1
    drawn = err.text()
    assert "auditing" in drawn and "2/2" in drawn  # the bar, advanced by the runner to the last folder
    quiet, loud = (tmp_path / "q.txt").read_text(encoding="utf-8"), (tmp_path / "loud.txt").read_text(encoding="utf-8")
    record_header = re.compile(r"^ FAIL  \S+2026-01-01_R0 ─", re.M)  # each folder's own section
    assert record_header.search(loud) and not record_header.search(quiet)  # --quiet: the summary table only
    for text in (quiet, loud):
        assert re.search(r"^2 folders in \d+\.\d s", text, re.M), text


def _pgolf(args, env_add=None, drop=("PGOLF_IN_PROCESS", "PGOLF_FOLDER_TIMEOUT")):
    import os

    env = {k: v for k, v in os.environ.items() if k not in drop}
    return subprocess.run([sys.executable, "-m", "auditor", *args], capture_output=True, text=True, timeout=300, env={**env, **(env_add or {})})


# The two tests below run `pgolf audit` in a fresh process and also call run_audit in this one: mutmut runs a test
# against a mutant only when the test called the mutated function in process (its coverage is recorded there).

def test_the_folder_time_limit_reaches_the_workers_and_a_cut_folder_is_named_on_stderr(tmp_path, capsys):
    """Through `pgolf audit --timeout` in a fresh process: worker processes need a parent that owns its
    forkserver (the mutation tool forks the test process, which would break them in process)."""
    folder = write_folder(tmp_path / "tree", OVER)
    assert _audit([folder], out=tmp_path / "whole.json") == 1 and capsys.readouterr().err == ""  # no limit hit: audited, fails
    assert json.loads((tmp_path / "whole.json").read_text(encoding="utf-8"))["records"][0]["verdict"] == "fail"
    proc = _pgolf(["audit", str(folder), "-f", "json", "-o", str(tmp_path / "r.json"), "--rule", "ARTIFACT-16MB", "--timeout", "0.001", "-q"])
    rec = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["records"][0]
    assert proc.returncode == 1, proc.stderr  # a folder that could not be audited never passes
    assert rec["verdict"] == "needs-review" and rec["errors"][-1]["message"].startswith("audit stopped after 0.001 s")
    assert proc.stderr == f"pgolf: {rec['path']}: not fully audited (see its errors in the report)\n"


def test_the_report_file_is_utf8_whatever_the_locale(tmp_path):
    """The summary table's "—" (no claimed figure) must reach the file as UTF-8 under an ASCII locale too."""
    folder = write_folder(tmp_path / "tree", OVER)
    assert _audit([folder], out=tmp_path / "here.txt", fmt="text") == 1
    proc = _pgolf(["audit", str(folder), "-f", "text", "-o", str(tmp_path / "c.txt"), "--rule", "ARTIFACT-16MB", "-q"],
                  {"LC_ALL": "C", "LANG": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0", "PGOLF_IN_PROCESS": "1"})
    assert proc.returncode == 1, proc.stderr
    for name in ("here.txt", "c.txt"):
        assert re.search(r"2026-01-01_Test +1 +— +1\.2245", (tmp_path / name).read_bytes().decode("utf-8")), name


def test_jobs_and_per_file_timings_reach_the_timings_file(tmp_path, monkeypatch):
    tree = tmp_path / "tree"
    for i in range(2):
        write_folder(tree, OVER, name=f"2026-01-0{i + 1}_R{i}")
    monkeypatch.setenv("PGOLF_TIMINGS_FILE", str(tmp_path / "t.json"))
    _audit([tree], out=tmp_path / "r.json", jobs=2)
    t = json.loads((tmp_path / "t.json").read_text(encoding="utf-8"))
    assert t["jobs"] == 2 and t["folders"] == 2 and t["failed"] == []
    assert t["timings"], "per-file timings are collected when the timings file is asked for"


def test_probe_runs_on_flagged_folders_and_probe_all_on_every_folder(tmp_path):
    """`print(1)` has no loss accumulation to instrument: the probe says PROBE-NOT-RUN without running anything."""
    passing, failing = write_folder(tmp_path / "a", OVERSHOOT), write_folder(tmp_path / "b", OVER)
    only = ("ARTIFACT-16MB", "TIME-TRAIN-600")

    def probed(probe):
        _audit([passing, failing], out=tmp_path / f"{probe}.json", only=only, probe=probe, fail_on="never")
        doc = json.loads((tmp_path / f"{probe}.json").read_text(encoding="utf-8"))
        return [any(f["rule"].startswith("PROBE") for f in r["findings"]) for r in doc["records"]]

    assert probed(None) == [False, False]
    assert probed("flagged") == [False, True]
    assert probed("all") == [True, True]


def test_statistics_in_text_and_json(tmp_path, capsys):
    folder = write_folder(tmp_path / "tree", OVER)
    assert _audit([folder], out=tmp_path / "s.json", statistics=True) == 1
    doc = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert doc["folders"] == 1 and [r["rule"] for r in doc["statistics"]] == ["ARTIFACT-16MB"]
    _audit([folder], out=tmp_path / "s.txt", fmt="text", statistics=True)
    lines = (tmp_path / "s.txt").read_text(encoding="utf-8").splitlines()
    assert re.fullmatch(r"\d+  PG\d+ +ARTIFACT-16MB  .*1 folder", lines[0]), lines
    assert re.fullmatch(r"1 folder in \d+\.\d s.*", lines[-1]), lines
    assert capsys.readouterr().err == ""


def test_colour_on_a_terminal_only_never_in_a_file(tmp_path, monkeypatch):
    folder = write_folder(tmp_path / "tree", OVER)
    term = _Terminal()
    monkeypatch.setattr(sys, "stdout", term)
    assert _audit([folder], out=tmp_path / "r.txt", fmt="text") == 1
    written = (tmp_path / "r.txt").read_text(encoding="utf-8")
    assert "\x1b[" not in written and re.search(r"^1 folder in \d+\.\d s", written, re.M)
    assert term.text() == ""
    assert _audit([folder], fmt="text") == 1
    shown = term.text()
    assert "\x1b[" in shown and re.search(r"1 folder in \d+\.\d s", shown)


def test_a_renderer_failure_falls_back_to_json_with_one_line(tmp_path, monkeypatch, capsys):
    """Fault injection: no renderer is known to fail, so the statistics renderer is made to."""
    from auditor.report import statistics

    def broken(report, fmt="text", **_):
        raise ValueError("planted")

    monkeypatch.setattr(statistics, "render", broken)
    assert _audit([write_folder(tmp_path / "tree", OVER)], out=tmp_path / "r.txt", fmt="text", statistics=True) == 1
    assert capsys.readouterr().err == "pgolf: the text renderer failed (ValueError: planted); writing JSON instead\n"
    doc = json.loads((tmp_path / "r.txt").read_text(encoding="utf-8"))
    assert [f["rule"] for f in doc["records"][0]["findings"]] == ["ARTIFACT-16MB"]


def test_human_formats_escape_control_characters_and_json_keeps_them(tmp_path):
    name = "2026-01-01_esc\x1b[31mred"
    folder = write_folder(tmp_path / "tree", OVER, name=name)
    _audit([folder], out=tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["records"][0]["path"].endswith(name)
    _audit([folder], out=tmp_path / "r.txt", fmt="text", quiet=False)
    text = (tmp_path / "r.txt").read_text(encoding="utf-8")
    assert "\x1b" not in text and "esc\\x1b[31mred" in text


def test_an_unwritable_output_is_one_line_naming_it_and_exit_2(tmp_path, capsys):
    out = tmp_path / "no" / "such" / "dir.json"
    assert _audit([write_folder(tmp_path / "tree", OVER)], out=out) == 2
    assert capsys.readouterr().err == f"pgolf: cannot write {out}: No such file or directory\n"


def test_problems_of_the_report_go_to_stderr_once(tmp_path, capsys):
    """A path that cannot be read is a report problem: on stderr when the report goes to a file or is not text;
    a text report on stdout already shows it."""
    folder = write_folder(tmp_path / "tree", OVER)
    missing = tmp_path / "missing"
    line = f"pgolf: {missing}: no such file or folder\n"
    assert _audit([folder, missing]) == 1
    assert capsys.readouterr().err == line
    assert _audit([folder, missing], out=tmp_path / "r.txt", fmt="text") == 1
    assert capsys.readouterr().err == line
    assert _audit([folder, missing], fmt="text") == 1
    got = capsys.readouterr()
    assert got.err == "" and str(missing) in got.out
