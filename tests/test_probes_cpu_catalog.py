"""Catalog codes and `pgolf rule` pages for the dynamic checks' findings (PROBE-*, REPRODUCE-*, SANDBOX-*)."""
from __future__ import annotations

import re

from typer.testing import CliRunner

import rules
from auditor.cli import app
from auditor.model import Severity
from auditor.reproduce.catalog import ENTRIES, entry
from auditor.reproduce.probe_outcome import probe_finding


def test_codes_are_unique_and_clash_with_no_static_rule_or_waiver_code():
    codes = [e.code for e in ENTRIES.values()]
    assert len(codes) == len(set(codes))
    static = {r.code for r in rules.registry().values()} | {"PG901"}
    assert not static & set(codes)
    assert all(re.fullmatch(r"PG1[012]\d\d", c) for c in codes)


def test_every_dynamic_finding_id_pgolf_raises_has_an_entry():
    import pathlib

    src = "\n".join(p.read_text() for p in (pathlib.Path(__file__).resolve().parents[1] / "auditor").rglob("*.py"))
    raised = set(re.findall(r"\"((?:PROBE|REPRODUCE|SANDBOX)-[A-Z0-9-]+)\"", src))
    assert raised and raised <= set(ENTRIES), sorted(raised - set(ENTRIES))


def test_probe_findings_carry_their_code_and_title():
    f = probe_finding("PROBE-SUFFIX-FLIP", Severity.ERROR, "train_gpt.py", 648, "m", [], "fix")
    assert (f.code, f.family) == ("PG1001", "probe") and f.title == entry("PROBE-SUFFIX-FLIP").title


def test_pgolf_rule_pages_by_id_and_code():
    r = CliRunner().invoke(app, ["rule", "PROBE-NOT-RUN"])
    assert r.exit_code == 0 and r.output.startswith("PROBE-NOT-RUN (PG1004): A dynamic probe could not run")
    r = CliRunner().invoke(app, ["rule", "PG1201"])
    assert r.exit_code == 0 and r.output.startswith("SANDBOX-DENIED (PG1201)")
    assert CliRunner().invoke(app, ["rule", "PROBE-NOPE"]).exit_code == 2


def test_audit_probe_runs_the_probes_after_the_static_rules(tmp_path):
    """`pgolf audit --probe` on a folder the static rules send to review or fail: the two-pass CUDA-shaped
    fixture is probed in the sandbox and the flip fails it; `--probe-all` probes a folder whatever its
    verdict (here one with no accumulation statement: PROBE-NOT-RUN with the reason)."""
    import json

    from tests.test_probes_cpu import _record

    env = {"PGOLF_IN_PROCESS": "1", "NO_COLOR": "1"}
    folder = _record(tmp_path, "two_pass")
    r = CliRunner().invoke(app, ["audit", str(folder), "--probe", "-f", "json"], env=env)
    rec = json.loads(r.stdout)["records"][0]
    flip = [f for f in rec["findings"] if f["rule"] == "PROBE-SUFFIX-FLIP"]
    assert flip and flip[0]["severity"] == "error" and flip[0]["code"] == "PG1001", [f["message"] for f in rec["findings"]][:5]
    assert rec["verdict"] == "fail" and r.exit_code == 1
    plain = tmp_path / "plain" / "records" / "track_10min_16mb" / "2026-11-02_Plain"
    plain.mkdir(parents=True)
    (plain / "train_gpt.py").write_text("print('val_bpb: 1.0')\n", encoding="utf-8")
    r = CliRunner().invoke(app, ["audit", str(plain), "--probe-all", "-f", "json"], env=env)
    rec = json.loads(r.stdout)["records"][0]
    (nr,) = [f for f in rec["findings"] if f["rule"] == "PROBE-NOT-RUN"]
    assert "no per-token or per-batch accumulation statement" in nr["message"]


def test_probe_command_accumulator_and_work_dir(tmp_path):
    """`pgolf probe --accumulator REGEX --work-dir DIR`: the named accumulator is instrumented and the
    instrumented copy stays in the work folder."""
    from pathlib import Path

    from auditor.reproduce.sandbox import bwrap_works

    scorers = Path(__file__).parent / "fixtures" / "reproduce" / "scorers.py"
    extra = [] if bwrap_works()[0] else ["--no-sandbox"]
    r = CliRunner().invoke(app, ["probe", str(scorers), "--function", "score_tokens", "--accumulator", r"nll", "--work-dir",
                                 str(tmp_path / "w"), "-f", "json"] + extra)
    assert r.exit_code == 0, r.output
    assert list((tmp_path / "w").rglob("instrumented_scorers.py"))
