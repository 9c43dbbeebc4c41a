"""examples/README.md is the contract for the bundled examples: every folder under
examples/records is listed there, and `pgolf audit` gives each the verdict and the rules the
table promises."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from auditor.context import AuditOptions
from auditor.discover import discover
from auditor.pipeline import audit_folder

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ROW = re.compile(r"^\| `(?P<name>[^`]+)` \|[^|]*\| (?P<verdict>pass|fail|needs-review) \| (?P<rules>[^|]*)\|$")


def _table() -> dict[str, tuple[str, set[str]]]:
    out = {}
    for line in (EXAMPLES / "README.md").read_text(encoding="utf-8").splitlines():
        m = ROW.match(line.strip())
        if m:
            out[m["name"]] = (m["verdict"], set(re.findall(r"[A-Z]+(?:-[A-Z0-9]+)+", m["rules"])))
    return out


def test_every_example_folder_is_in_the_table():
    folders = {p.name for p in (EXAMPLES / "records").glob("*/*") if p.is_dir()}
    assert folders and folders == set(_table())


@pytest.mark.parametrize("name", sorted(_table()))
def test_example_gets_the_promised_verdict(name):
    verdict, rules = _table()[name]
    folder = next((EXAMPLES / "records").glob(f"*/{name}"))
    disc = discover([folder])
    rec = audit_folder(disc.folders[0], AuditOptions())
    why = [(f.severity.value, f.rule, f.message[:120]) for f in rec.findings]
    assert rec.verdict == verdict, why
    loud = {f.rule for f in rec.findings if f.severity.rank >= 2 and not f.waived}
    assert rules <= loud, why
