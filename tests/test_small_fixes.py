"""The smaller items of issue 14: a package that is found but does not import, the process count
named in a reproduce mismatch, no repeated path steps or evidence lines, `--help` without "<bool>",
`pgolf rules -f json`, pinned workflow actions, and the LICENSE in the package."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PGOLF = [sys.executable, "-P", "-m", "auditor"]


def test_a_found_package_that_does_not_import_is_missing(tmp_path, monkeypatch):
    from auditor.reproduce.imports import ImportNeed, ScriptNeeds, missing_modules

    site = tmp_path / "site"
    (site / "flash_attn").mkdir(parents=True)
    (site / "flash_attn" / "__init__.py").write_text("raise ImportError('libcudart.so.12: cannot open shared object file')\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", str(site))
    needs = ScriptNeeds(modules=[ImportNeed("flash_attn", 3), ImportNeed("json", 1)])
    (miss,) = missing_modules(needs)
    assert miss.module == "flash_attn" and miss.error.startswith("ImportError: libcudart.so.12")


def test_path_steps_and_evidence_lines_are_not_repeated():
    proc = subprocess.run(PGOLF + ["audit", str(ROOT / "examples/records/track_10min_16mb/2026-11-02_IllegalNgramTwoPass"),
                                   "-f", "json"], capture_output=True, text=True, timeout=300)
    findings = [f for r in json.loads(proc.stdout)["records"] for f in r["findings"]]
    assert findings
    for f in findings:
        assert len(f["evidence"]) == len(set(f["evidence"])), f
        assert all(a != b for a, b in zip(f["path"], f["path"][1:])), f["path"]


def test_help_has_no_bool_type_and_rules_has_json():
    out = subprocess.run(PGOLF + ["audit", "--help"], capture_output=True, text=True, timeout=60).stdout
    assert "--select" in out and "--show-info" in out and "<bool>" not in out
    rules = json.loads(subprocess.run(PGOLF + ["rules", "-f", "json"], capture_output=True, text=True, timeout=60).stdout)
    assert {"id": "NGRAM-TARGET-IN-KEY", "code": "PG101"}.items() <= next(r for r in rules if r["code"] == "PG101").items()


def test_example_workflows_pin_third_party_actions_by_commit():
    uses = []
    for wf in sorted((ROOT / "examples" / "github").glob("*.yml")):
        uses += re.findall(r"^\s*(?:-\s*)?uses:\s*(\S+)", wf.read_text(encoding="utf-8"), re.M)
    third_party = [u for u in uses if u.startswith("actions/")]
    assert third_party and all(re.fullmatch(r"actions/[\w-]+@[0-9a-f]{40}", u) for u in third_party), third_party
    assert any(u.startswith("actions/cache@") for u in third_party)  # pip downloads are cached


def test_license_ships():
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    from importlib.metadata import PackageNotFoundError, files

    try:
        shipped = [str(p) for p in files("pgolf") or []]
    except PackageNotFoundError:  # pragma: no cover - pgolf not installed
        pytest.skip("pgolf is not installed")
    if any(p.endswith("direct_url.json") for p in shipped) and not any("LICENSE" in p for p in shipped):
        pytest.skip("an editable install made before the LICENSE existed; a fresh wheel carries it")
    assert any(p.endswith("LICENSE") for p in shipped)


def test_a_reproduce_mismatch_names_a_different_process_count():
    from types import SimpleNamespace

    from auditor.model import LogFile, RunLog
    from auditor.reproduce.verdict import _process_count_note

    logs = [LogFile("train_seed1.log", runs=[RunLog(0, 1, 9, seed=1, world_size=8)], seed_from_name=1)]
    plan = SimpleNamespace(evidence=SimpleNamespace(logs=logs), nproc=2)
    note = _process_count_note(plan, 1)
    assert "the record's logs show 8 processes (world_size:8) and this run used 2" in note and "--nproc 8" in note
    assert _process_count_note(SimpleNamespace(evidence=SimpleNamespace(logs=logs), nproc=8), 1) == ""


def test_train_progress_reads_the_log_tokens_per_second_and_eta_against_the_cap(tmp_path):
    from auditor.reproduce.progress import TrainProgress

    log = tmp_path / "train_seed7.log"
    log.write_text("step:100/10000 train_loss:4.2500 train_time:50000ms step_avg:500.00ms\n")
    p = TrainProgress(3, 524288, 600.0)  # not a terminal: no live line, the status is still computed
    p.start_seed(2, 7, log)
    status = p.status()
    # 100 steps × 524,288 tokens in 50 s; 9,900 steps left at 0.5 s would be 4,950 s, but the cap leaves 550 s
    assert status == "seed 2/3 (7)  step 100/10000  train loss 4.2500  1,048,576 tokens/s  train 50.0/600 s cap  ETA 9.2 min"
    with log.open("a") as fh:
        fh.write("step:200/10000 val_loss:4.1000 val_bpb:2.4000 train_time:100000ms step_avg:500.00ms\n")
    assert "step 200/10000  val loss 4.1000  1,048,576 tokens/s  train 100.0/600 s cap  ETA 8.3 min" in p.status()
    p.end_seed()
    assert p.status() == ""


def test_reproduce_progress_clock_moves_between_log_lines(monkeypatch):
    from auditor.reproduce import progress as P

    now = [1000.0]
    monkeypatch.setattr(P.time, "monotonic", lambda: now[0])
    p = P.Progress(2, quiet=True)
    p.start_seed(1, 1337)
    assert p.status() == "seed 1/2 (1337)  starting (0 s)"
    now[0] += 42
    assert p.status() == "seed 1/2 (1337)  starting (42 s)"  # re-computed at each refresh, not frozen at the start
    p.line("step:10/100 train_loss:5.0000 train_time:20000ms step_avg:2000.00ms")
    assert "step 10/100  train_time 20.0/600 s  train_loss 5.0000" in p.status()
    assert P._Status(p.status).__rich__().plain == p.status()
