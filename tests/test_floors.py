"""One-way floors (issue 11): every entry point audits through the isolated runner with the same
limits; measurement does not depend on which rules run; a finding's code is its rule's."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.ci_helpers import clean_record
from tests.helpers import write_folder

REPO = Path(__file__).resolve().parents[1]
MEMORY_MB = 3000  # not the default (4096): shows the entry point took the environment's limit


# ---- worker targets (importable by reference: the runner starts them in fresh processes) ----------

def hanging_code_reader(conn, options, memory_mb, caps, cwd=None, env=None, runner_pid=None):
    """The real worker, with a code reader that never returns on folders named ``*hang``."""
    import auditor.evidence as ev
    from auditor.worker import serve

    real = ev.read_code

    def read_code(path, *args, **kw):
        if Path(path).name.endswith("hang"):
            time.sleep(3600)
        return real(path, *args, **kw)

    ev.read_code = read_code
    serve(conn, options, memory_mb, caps, cwd, env, runner_pid)


def limit_reporting_worker(conn, options, memory_mb, caps, cwd=None, env=None, runner_pid=None):
    """The real worker's limits and audit; each record also says the address-space cap it ran under."""
    import resource

    from auditor.model import Problem
    from auditor.worker import adopt, audit_one, harden_process

    adopt(cwd, env, runner_pid)
    harden_process(memory_mb)
    while (task := conn.recv()) is not None:
        index, folder, want = task
        rec, err, timings = audit_one(folder, options, want)
        rec.errors.append(Problem("limits", f"RLIMIT_AS={resource.getrlimit(resource.RLIMIT_AS)[0]}"))
        conn.send((index, rec, err, timings))


# ---- the GitHub Action and the pre-commit hook use the isolated runner ----------------------------

def _two_folders(tmp_path: Path) -> Path:
    write_folder(tmp_path, clean_record(), name="2026-01-01_Ok")
    write_folder(tmp_path, clean_record(), name="2026-01-02_Xhang")
    return tmp_path / "records"


def _action_env(monkeypatch, tmp_path: Path, records: Path) -> Path:
    out = tmp_path / "out"
    for k, v in {"GITHUB_WORKSPACE": str(tmp_path), "PGOLF_PATHS": str(records), "PGOLF_OUTPUT_DIR": str(out),
                 "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"), "GITHUB_OUTPUT": str(tmp_path / "outputs.txt"),
                 "PGOLF_FOLDER_TIMEOUT": "10", "PGOLF_WORKER_MEMORY_MB": str(MEMORY_MB)}.items():
        monkeypatch.setenv(k, v)
    for k in ("PGOLF_BASE", "PGOLF_FAIL_ON", "PGOLF_RULEBOOK", "PGOLF_WAIVERS", "PGOLF_DEFER_EXIT", "GITHUB_EVENT_PATH",
              "PGOLF_IN_PROCESS"):
        monkeypatch.delenv(k, raising=False)
    return out


def test_action_cuts_off_a_folder_that_hangs_the_code_reader(tmp_path, monkeypatch, capsys):
    from auditor import ci_action

    records = _two_folders(tmp_path)
    out = _action_env(monkeypatch, tmp_path, records)
    t0 = time.monotonic()
    code = ci_action.main(worker_target=hanging_code_reader)
    assert time.monotonic() - t0 < 60
    assert code == 1  # a folder that could not be audited never passes
    report = json.loads((out / "pgolf-report.json").read_text())
    recs = {Path(r["path"]).name: r for r in report["records"]}
    assert recs["2026-01-01_Ok"]["verdict"] == "pass"
    hung = recs["2026-01-02_Xhang"]
    assert hung["verdict"] == "needs-review"
    assert hung["errors"][-1]["message"].startswith("audit stopped after 10 s (the per-folder time limit)")


def test_action_and_pre_commit_workers_run_under_the_memory_limit(tmp_path, monkeypatch, capsys):
    from auditor import ci_action, precommit

    write_folder(tmp_path, clean_record(), name="2026-01-01_Ok")
    out = _action_env(monkeypatch, tmp_path, tmp_path / "records")
    assert ci_action.main(worker_target=limit_reporting_worker) == 0
    rec = json.loads((out / "pgolf-report.json").read_text())["records"][0]
    assert rec["errors"][-1]["message"] == f"RLIMIT_AS={MEMORY_MB * 1024 * 1024}"

    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    code = precommit.main(["--format", "json", "records/track_10min_16mb/2026-01-01_Ok/train_gpt.py"],
                          worker_target=limit_reporting_worker)
    rec = json.loads(capsys.readouterr().out)["records"][0]
    assert code == 0, (rec["verdict"], [(f["rule"], f["severity"], f["message"][:100]) for f in rec["findings"]], rec["errors"])
    assert rec["errors"][-1]["message"] == f"RLIMIT_AS={MEMORY_MB * 1024 * 1024}"


def test_pre_commit_cuts_off_a_folder_that_hangs_the_code_reader(tmp_path, monkeypatch, capsys):
    from auditor import precommit

    _two_folders(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PGOLF_FOLDER_TIMEOUT", "10")
    monkeypatch.delenv("PGOLF_IN_PROCESS", raising=False)
    t0 = time.monotonic()
    code = precommit.main(["--format", "json", "records/track_10min_16mb/2026-01-01_Ok/submission.json",
                           "records/track_10min_16mb/2026-01-02_Xhang/train_gpt.py"], worker_target=hanging_code_reader)
    assert time.monotonic() - t0 < 60
    captured = capsys.readouterr()
    recs = {Path(r["path"]).name: r for r in json.loads(captured.out)["records"]}
    assert code == 1
    assert recs["2026-01-01_Ok"]["verdict"] == "pass"
    assert recs["2026-01-02_Xhang"]["errors"][-1]["message"].startswith("audit stopped after 10 s")
    assert "2026-01-02_Xhang: not fully audited" in captured.err


# ---- measurement happens before the rules, whatever rules run ---------------------------------------

SUBSETS = [{"NGRAM-TARGET-IN-KEY"}, {"ARTIFACT-16MB", "TIME-TRAIN-600"}, {"REPORT-CONSISTENCY", "STATS-SEEDS", "EVAL-SINGLE-PASS"}]


def _example_folders():
    from auditor.discover import discover

    return discover([str(REPO / "examples" / "records")]).folders


def test_the_measured_block_does_not_depend_on_the_rules_that_run():
    from auditor.context import AuditOptions
    from auditor.pipeline import audit_folder

    folders = _example_folders()
    assert len(folders) >= 15
    for folder in folders:
        full = audit_folder(folder, AuditOptions()).measured.to_json()
        for only in SUBSETS:
            assert audit_folder(folder, AuditOptions(only_rules=only)).measured.to_json() == full, (folder.display, only)


def test_a_stub_and_its_sidecar_are_measured_without_the_artifact_rules():
    """The issue's case: ``--rule NGRAM-TARGET-IN-KEY`` alone used to report the logged total."""
    from auditor.context import AuditOptions
    from auditor.discover import discover
    from auditor.pipeline import audit_folder

    folder = discover([str(REPO / "examples/records/track_10min_16mb/2026-11-03_Artifact_StubSidecarOverCap")]).folders[0]
    m = audit_folder(folder, AuditOptions(only_rules={"NGRAM-TARGET-IN-KEY"})).measured
    assert (m.bytes_total, m.bytes_source) == (16_167_873, "measured")
    assert m.bytes_code == sum(f["bytes"] for f in m.extra["bytes"]["code_files"]) and len(m.extra["bytes"]["code_files"]) == 2


# ---- a finding carries the code, title and family of the id it is reported under --------------------

def _assert_catalog(findings, where):
    from auditor.pipeline import rule_catalog

    catalog = rule_catalog()
    for f in findings:
        info = catalog[f.rule]
        assert (f.code, f.title, f.family) == (info.code, info.title, info.family), (where, f.rule, f.code, f.message[:80])


def test_every_example_finding_has_its_rules_code():
    from auditor.context import AuditOptions
    from auditor.pipeline import audit_folder

    n = 0
    for folder in _example_folders():
        findings = audit_folder(folder, AuditOptions()).findings
        _assert_catalog(findings, folder.display)
        n += len(findings)
    assert n >= 40


def _cases():
    from auditor.pipeline import load_rules

    return [pytest.param(rid, kind, i, case, id=f"{rid}-{kind}-{i}") for rid, cls in load_rules().items()
            for kind, cases in (("VALID", cls.VALID), ("INVALID", cls.INVALID)) for i, case in enumerate(cases)]


@pytest.mark.parametrize("rule_id,kind,i,case", _cases())
def test_every_case_finding_has_its_rules_code(tmp_path, rule_id, kind, i, case):
    from tests.helpers import audit_one

    folder = write_folder(tmp_path, case.file_map(), track=case.track)
    from auditor.pipeline import load_rules

    # the rule and every rule that may report under its id
    only = {rule_id} | {rid for rid, cls in load_rules().items() if rule_id in cls.reports_under}
    rec = audit_one(folder, only_rules=only, **case.options)
    assert not [p for p in rec.errors if "could not finish" in p.message], rec.errors
    _assert_catalog(rec.findings, f"{rule_id} {kind} {i}")


def test_a_sibling_finding_gets_the_siblings_code_and_the_sibling_selects_it(tmp_path):
    """EVAL-SINGLE-PASS reports a logged rescoring pass the code lacks under REPORT-CONSISTENCY: with
    code PG701 (not its own PG103), and ``--rule REPORT-CONSISTENCY`` shows it as a full run does."""
    from auditor.context import AuditOptions
    from auditor.discover import discover
    from auditor.pipeline import audit_folder

    folder = write_folder(tmp_path, {**clean_record(), "train_seed1.log": "ngram_pass2: rescoring first 50 chunks with full cache...\n"})
    rf = discover([str(folder)]).folders[0]
    full = [f for f in audit_folder(rf, AuditOptions()).findings if f.rule == "REPORT-CONSISTENCY"]
    sibling = [f for f in full if "rescoring pass" in f.message]
    assert sibling and all((f.code, f.family) == ("PG701", "report") for f in sibling)
    only = audit_folder(rf, AuditOptions(only_rules={"REPORT-CONSISTENCY"})).findings
    assert [(f.rule, f.code, f.message) for f in only] == [(f.rule, f.code, f.message) for f in full]
    # the rule that made it, selected alone, still shows it
    esp = audit_folder(rf, AuditOptions(only_rules={"EVAL-SINGLE-PASS"})).findings
    assert any(f.rule == "REPORT-CONSISTENCY" and f.code == "PG701" for f in esp)


# ---- structure: one-way imports, rules never read the disk -------------------------------------------

def _module_graph() -> dict[str, set[str]]:
    """Every import (module level or inside a function) between modules of ``auditor`` and ``rules``,
    read with ``ast`` (nothing is imported); ``from pkg.mod import name`` is an edge to ``pkg.mod``."""
    import ast

    mods: dict[str, Path] = {}
    for pkg in ("auditor", "rules"):
        for p in (REPO / pkg).rglob("*.py"):
            parts = list(p.relative_to(REPO).with_suffix("").parts)
            mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p

    def resolve(name: str | None) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for m, p in mods.items():
        out: set[str | None] = set()
        for n in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(n, ast.Import):
                out.update(resolve(a.name) for a in n.names)
            elif isinstance(n, ast.ImportFrom):
                base = n.module or ""
                if n.level:
                    pkg = m.split(".") if p.name == "__init__.py" else m.split(".")[:-1]
                    base = ".".join(pkg[: len(pkg) - n.level + 1] + ([n.module] if n.module else []))
                out.update(resolve(f"{base}.{a.name}") if f"{base}.{a.name}" in mods else resolve(base) for a in n.names)
        graph[m] = {x for x in out if x and x != m}
    return graph


def test_no_import_circle_and_only_the_pipeline_loads_rules():
    import graphlib

    graph = _module_graph()
    assert {"auditor.runner", "auditor.worker", "auditor.reproduce.probes", "rules.base"} <= set(graph)
    try:
        list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import circle: {' -> '.join(exc.args[1])}")
    back = sorted((m, r) for m, deps in graph.items() if m.startswith("auditor") for r in deps if r.split(".")[0] == "rules")
    assert back == [("auditor.pipeline", "rules")], back
    renderers = [m for m in graph if m.startswith("auditor.report")]
    assert renderers and not any(r.startswith("rules") for m in renderers for r in graph[m])


_DISK_CALLS = {"open", "read_text", "read_bytes", "read_file", "check_readable", "stat", "lstat", "exists", "is_file",
               "is_dir", "iterdir", "glob", "rglob", "listdir", "scandir", "safe_walk"}


def test_no_rule_module_opens_a_file():
    """Rules judge evidence: no call that reads the disk, no import of the file layer. (Test programs
    inside VALID/INVALID cases are strings and do not count.)"""
    import ast

    bad = []
    for p in sorted((REPO / "rules").rglob("*.py")):
        for n in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            where = f"{p.relative_to(REPO)}:{getattr(n, 'lineno', 0)}"
            if isinstance(n, ast.Call):
                f = n.func
                name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
                owner = ast.unparse(f.value) if isinstance(f, ast.Attribute) else ""
                if (name in _DISK_CALLS and owner != "re") or (name == "walk" and owner == "os"):
                    bad.append(f"{where}: {ast.unparse(f)}()")
            elif isinstance(n, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in n.names] if isinstance(n, ast.Import) else [f"{n.module}.{a.name}" for a in n.names]
                if any(x.startswith(("auditor.fs", "os.", "pathlib", "shutil", "glob", "io.")) or x in ("os", "io", "glob") for x in names):
                    bad.append(f"{where}: imports {', '.join(names)}")
    assert not bad, bad


def test_every_rule_declares_the_sibling_ids_it_reports_under():
    """A literal ``rule_id="X"`` / ``rule="X"`` in a rule module must be in its ``reports_under``, or
    ``--rule X`` would not run the rule that files findings under X."""
    import ast

    from auditor.pipeline import load_rules

    by_module: dict[str, set[str]] = {}
    for rid, cls in load_rules().items():
        by_module.setdefault(cls.__module__, set()).update({rid, *cls.reports_under})
    missing = []
    for mod, allowed in by_module.items():
        path = REPO / (mod.replace(".", "/") + ".py")
        for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(n, ast.keyword) and n.arg in ("rule", "rule_id") and isinstance(n.value, ast.Constant) \
                    and isinstance(n.value.value, str) and n.value.value not in allowed:
                missing.append(f"{mod}:{n.value.lineno}: {n.value.value}")
    assert not missing, missing
    assert any(cls.reports_under for cls in load_rules().values())
