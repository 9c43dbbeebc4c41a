"""`pgolf audit` never imports or executes what it audits, and writes nothing but its report."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from auditor.pipeline import audit_paths
from auditor.safety import ImportGuard, SubmissionCodeBlocked
from tests.hardening_fixtures import (assert_no_traceback, canary_code, canary_record, json_report, run_pgolf,
                                      snapshot)


@pytest.fixture()
def hostile(tmp_path: Path):
    canaries = tmp_path / "canaries"
    canaries.mkdir()
    tree = tmp_path / "checkout"
    folder = canary_record(tree, canaries)
    return tree, folder, canaries


def test_canary_files_would_fire_if_run(hostile, tmp_path):
    """The fixture is live: running one of its files does write a canary (so the tests below can fail)."""
    tree, folder, canaries = hostile
    exec(compile((folder / "helper.py").read_text(), str(folder / "helper.py"), "exec"), {})
    assert (canaries / "helper").exists()


@pytest.mark.parametrize("where, how, jobs", [
    ("folder", "script", "2"),  # cwd inside the record folder: conftest.py, sitecustomize.py, rules/ right there
    ("tree", "script", "1"),
    ("folder", "module", "1"),  # python -P -m auditor
])
def test_audit_never_executes_the_record(hostile, where, how, jobs):
    tree, folder, canaries = hostile
    cwd = folder if where == "folder" else tree
    before = snapshot(tree)
    proc = run_pgolf(["audit", ".", "--jobs", jobs, "--format", "json", "--fail-on", "never"], cwd, module=how == "module")
    assert_no_traceback(proc)
    report = json_report(proc)
    assert [r["path"] for r in report["records"]] == (["."] if where == "folder" else ["records/track_10min_16mb/2026-01-01_Canary"])
    assert sorted(os.listdir(canaries)) == [], "submission code was executed"
    assert snapshot(tree) == before, "the audit changed the audited tree"


def test_python_m_auditor_from_inside_a_checkout_does_not_import_its_rules_package(tmp_path):
    """Without -P, ``python -m auditor`` puts the working directory first on sys.path; the runner
    drops it before importing ``rules`` lazily, so a checkout's own ``rules/`` package never runs."""
    canaries = tmp_path / "canaries"
    canaries.mkdir()
    folder = canary_record(tmp_path / "checkout", canaries)
    for shadow in ("typer.py", "rich", "json.py", "multiprocessing"):  # imported before our code runs: needs -P
        target = folder / shadow
        if target.is_dir():
            for p in sorted(target.rglob("*"), reverse=True):
                p.unlink()
            target.rmdir()
        else:
            target.unlink()
    import subprocess

    from tests.hardening_fixtures import clean_env

    proc = subprocess.run([sys.executable, "-m", "auditor", "audit", ".", "--jobs", "2", "-f", "json", "--fail-on", "never"],
                          cwd=folder, capture_output=True, text=True, timeout=240, env=clean_env())
    assert_no_traceback(proc)
    json_report(proc)
    assert sorted(os.listdir(canaries)) == []


def test_in_process_audit_under_the_import_guard(hostile, tmp_path):
    tree, folder, canaries = hostile
    before = snapshot(tree)
    with ImportGuard([tree]) as guard:
        report = audit_paths([str(tree)])
    guard.assert_clean()
    assert guard.writes == []
    assert len(report.records) == 1 and report.records[0].path.endswith("2026-01-01_Canary")
    assert os.listdir(canaries) == []
    assert snapshot(tree) == before


def test_import_guard_catches_an_import_from_the_tree(hostile):
    tree, folder, canaries = hostile
    sys.path.insert(0, str(folder))
    try:
        with ImportGuard([tree]) as guard:
            with pytest.raises(SubmissionCodeBlocked):
                import helper  # noqa: F401
        assert any("helper" in v for v in guard.violations)
        assert not (canaries / "helper").exists()
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("helper", None)


def test_import_guard_catches_exec_and_writes_in_the_tree(hostile):
    tree, folder, canaries = hostile
    code = compile(canary_code(canaries, "direct"), str(folder / "helper.py"), "exec")
    with ImportGuard([tree]) as guard:
        with pytest.raises(SubmissionCodeBlocked):
            exec(code, {})
        with pytest.raises(PermissionError):
            open(folder / "new.txt", "w")
    assert len(guard.violations) == 2
    assert not (canaries / "direct").exists() and not (folder / "new.txt").exists()


def test_audit_writes_only_the_output_file(hostile, tmp_path):
    tree, folder, canaries = hostile
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    before_tree, before_cwd = snapshot(tree), snapshot(tmp_path / "canaries")
    proc = run_pgolf(["audit", str(tree), "--jobs", "2", "-f", "sarif", "-o", str(out_dir / "r.sarif"), "--fail-on", "never"], folder)
    assert_no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert sorted(os.listdir(out_dir)) == ["r.sarif"]
    assert snapshot(tree) == before_tree and snapshot(tmp_path / "canaries") == before_cwd
