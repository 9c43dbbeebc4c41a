"""`pgolf audit` options reach the audit: --waivers, --rulebook, --against, --select, --format,
--output and --fail-on each change what ``run_audit`` returns or writes (in process, real folders)."""
from __future__ import annotations

import json

import pytest

from auditor.cli_audit import run_audit
from rules.time_logs import baseline_log, three_seeds
from tests.helpers import write_folder

@pytest.fixture(autouse=True)
def _in_process(monkeypatch):
    monkeypatch.setenv("PGOLF_IN_PROCESS", "1")  # the same audit without a worker process per folder: fast enough to mutate


OVER = {"train_gpt.py": "print(1)\n", **three_seeds(model=16_100_000, code=10)}


def _run(paths, tmp_path, *, fmt="json", fail_on="error", against=(), rulebook="2026-04-28", only_rules=(), waivers=None,
         selected=None, show_info=False, changed=None, name="out.txt", statistics=False):
    out = tmp_path / name
    code = run_audit(paths=[str(p) for p in paths], fmt=fmt, output=str(out), fail_on=fail_on, changed=changed, against=list(against),
                     rulebook=rulebook, only_rules=list(only_rules), jobs=1, waivers=waivers, quiet=True, selected=selected,
                     show_info=show_info, statistics=statistics)
    return code, out.read_text(encoding="utf-8") if out.exists() else ""


def test_the_waiver_file_is_passed_through_and_waives(tmp_path):
    folder = write_folder(tmp_path / "tree", OVER)
    code, text = _run([folder], tmp_path, only_rules=["artifact-16mb"])
    assert code == 1
    assert [f["waived"] for f in json.loads(text)["records"][0]["findings"]] == [None]
    wf = tmp_path / "tree" / "reviewed.toml"
    wf.write_text('[[waiver]]\nfolder = "records/*/*"\nrule = "ARTIFACT-16MB"\nreason = "measured by hand"\nwho = "bob"\n', encoding="utf-8")
    code, text = _run([folder], tmp_path, only_rules=["artifact-16mb"], waivers=wf, name="w.json")
    assert code == 0
    [f] = json.loads(text)["records"][0]["findings"]
    assert f["rule"] == "ARTIFACT-16MB" and f["waived"].startswith("waived by bob (")


def test_only_rules_are_matched_case_blind(tmp_path):
    folder = write_folder(tmp_path / "tree", OVER)
    code, text = _run([folder], tmp_path, only_rules=["artifact-16mb"])
    assert {f["rule"] for f in json.loads(text)["records"][0]["findings"]} == {"ARTIFACT-16MB"}


def test_rulebook_and_against_are_passed_through(tmp_path):
    from tests.test_stats import PR1493, PR1514

    prev = write_folder(tmp_path, {f"train_seed{s}.log": baseline_log(s, b, l) for s, (b, l) in PR1493.items()}, name="2026-04-01_Prev")
    new = write_folder(tmp_path, {f"train_seed{s}.log": baseline_log(s, b, l) for s, (b, l) in PR1514.items()}, name="2026-04-02_New")
    kw = dict(only_rules=["STATS-SIGNIFICANCE"], against=[str(prev)])
    _code, text = _run([new], tmp_path, **kw, name="practice.json")
    practice = json.loads(text)["records"][0]
    _code, text = _run([new], tmp_path, **kw, rulebook="2026-03-18", name="readme.json")
    readme = json.loads(text)["records"][0]
    sev = lambda rec: [f["severity"] for f in rec["findings"] if f["rule"] == "STATS-SIGNIFICANCE"]  # noqa: E731
    assert sev(practice) == ["info"] and sev(readme) == ["error"]
    assert practice["stats"]["against"].endswith("2026-04-01_Prev")
    _code, text = _run([new], tmp_path, only_rules=["STATS-SIGNIFICANCE"], name="alone.json")
    assert (json.loads(text)["records"][0]["stats"] or {}).get("against") in (None, "")


def test_select_and_fail_on_decide_the_exit_code(tmp_path):
    folder = write_folder(tmp_path / "tree", OVER)
    assert _run([folder], tmp_path, only_rules=["ARTIFACT-16MB"], selected={"TIME-TRAIN-600"})[0] == 0
    assert _run([folder], tmp_path, only_rules=["ARTIFACT-16MB"], fail_on="never")[0] == 0
    assert _run([folder], tmp_path, only_rules=["ARTIFACT-16MB"], fail_on="warning")[0] == 1


def test_nothing_to_audit_is_exit_2_and_an_unwritable_output_is_exit_2(tmp_path):
    (tmp_path / "empty").mkdir()
    assert _run([tmp_path / "empty"], tmp_path)[0] == 2
    folder = write_folder(tmp_path / "tree", OVER)
    code = run_audit(paths=[str(folder)], fmt="json", output=str(tmp_path / "no" / "such" / "dir.json"), fail_on="error", changed=None,
                     against=[], rulebook="2026-04-28", only_rules=["ARTIFACT-16MB"], jobs=1, waivers=None, quiet=True)
    assert code == 2


def test_a_text_report_written_to_a_file_has_no_colour_codes(tmp_path):
    folder = write_folder(tmp_path / "tree", OVER)
    code, text = _run([folder], tmp_path, fmt="text", only_rules=["ARTIFACT-16MB"])
    assert code == 1 and "ARTIFACT-16MB" in text and "\x1b[" not in text


def test_github_output_hides_info_unless_asked(tmp_path):
    folder = write_folder(tmp_path / "tree", {"train_gpt.py": "print(1)\n", **three_seeds(train_ms=600_400)})
    _c, hidden = _run([folder], tmp_path, fmt="github", only_rules=["TIME-TRAIN-600"], name="h.txt")
    _c, shown = _run([folder], tmp_path, fmt="github", only_rules=["TIME-TRAIN-600"], show_info=True, name="s.txt")
    assert "TIME-TRAIN-600" not in hidden and shown.count("TIME-TRAIN-600") >= 3


def _git(cwd, *args):
    import subprocess

    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True, capture_output=True)


def test_changed_audits_only_folders_changed_since_the_ref(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    old = write_folder(repo, OVER, name="2026-01-01_Old")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "base")
    monkeypatch.chdir(repo)
    code, text = _run([repo / "records"], tmp_path, fmt="text", changed="HEAD", only_rules=["ARTIFACT-16MB"], name="none.txt")
    assert (code, text) == (0, "no record folder changed since HEAD; nothing to audit\n")
    code, text = _run([repo / "records"], tmp_path, fmt="json", changed="HEAD", only_rules=["ARTIFACT-16MB"], name="none.json")
    assert code == 0 and json.loads(text)["records"] == []
    write_folder(repo, OVER, name="2026-01-02_New")
    code, text = _run([repo / "records"], tmp_path, changed="HEAD", only_rules=["ARTIFACT-16MB"], name="new.json")
    assert code == 1 and [r["path"].rsplit("/", 1)[-1] for r in json.loads(text)["records"]] == ["2026-01-02_New"]
    assert old.is_dir()


def test_a_ref_git_does_not_know_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    repo = tmp_path / "repo"
    write_folder(repo, OVER)
    _git(repo, "init", "-q")
    monkeypatch.chdir(repo)
    code, _text = _run([repo / "records"], tmp_path, changed="no-such-ref", only_rules=["ARTIFACT-16MB"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("pgolf: ")


def test_no_waiver_file_given_reads_none_and_github_hides_info_by_default(tmp_path):
    folder = write_folder(tmp_path / "tree", {"train_gpt.py": "print(1)\n", **three_seeds(train_ms=600_400)})
    code, text = _run([folder], tmp_path, only_rules=["TIME-TRAIN-600"])
    rec = json.loads(text)["records"][0]
    assert code == 0 and rec["errors"] == [] and json.loads(text).get("errors", []) == []
    out = tmp_path / "gh.txt"
    run_audit(paths=[str(folder)], fmt="github", output=str(out), fail_on="error", changed=None, against=[], rulebook="2026-04-28",
              only_rules=["TIME-TRAIN-600"], jobs=1, waivers=None, quiet=True)
    assert "TIME-TRAIN-600" not in out.read_text(encoding="utf-8")


def test_the_timings_file_is_written_when_asked(tmp_path, monkeypatch):
    folder = write_folder(tmp_path / "tree", OVER)
    monkeypatch.setenv("PGOLF_TIMINGS_FILE", str(tmp_path / "t.json"))
    _run([folder], tmp_path, only_rules=["ARTIFACT-16MB"])
    assert json.loads((tmp_path / "t.json").read_text(encoding="utf-8"))


def test_statistics_markdown_and_stdout_are_wired(tmp_path, capsys):
    folder = write_folder(tmp_path / "tree", {"train_gpt.py": "print(1)\n", **three_seeds(train_ms=600_400)})
    _c, stats = _run([folder], tmp_path, fmt="text", only_rules=["TIME-TRAIN-600"], name="stats.txt", statistics=True)
    _c, plain = _run([folder], tmp_path, fmt="text", only_rules=["TIME-TRAIN-600"], name="plain.txt")
    assert stats and stats != plain
    _c, md = _run([folder], tmp_path, fmt="markdown", only_rules=["TIME-TRAIN-600"], name="md.txt")
    _c, md_info = _run([folder], tmp_path, fmt="markdown", only_rules=["TIME-TRAIN-600"], name="mdi.txt", show_info=True)
    assert "one-step overshoot" not in md and "one-step overshoot" in md_info
    capsys.readouterr()
    code = run_audit(paths=[str(folder)], fmt="json", output=None, fail_on="error", changed=None, against=[], rulebook="2026-04-28",
                     only_rules=["TIME-TRAIN-600"], jobs=1, waivers=None, quiet=True)
    out = capsys.readouterr()
    assert code == 0 and json.loads(out.out)["records"][0]["verdict"] and out.err == ""
