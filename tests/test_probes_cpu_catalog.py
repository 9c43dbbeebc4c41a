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

    src = "\n".join(p.read_text() for p in pathlib.Path("auditor").rglob("*.py"))
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
