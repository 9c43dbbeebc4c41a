"""The bundled parser/report-consistency examples: reproducible from their generator, and each gets
the verdict examples/README.md promises."""
from __future__ import annotations


import pytest

from auditor.context import AuditOptions
from auditor.discover import discover
from auditor.pipeline import audit_folder
from tests.make_parser_examples import EXPECTED, ROOT, folders


def test_committed_examples_equal_the_generator():
    for name, files in folders().items():
        for rel, text in files.items():
            assert (ROOT / name / rel).read_text(encoding="utf-8") == text, f"{name}/{rel} is stale: run python -m tests.make_parser_examples"
        on_disk = {p.relative_to(ROOT / name).as_posix() for p in (ROOT / name).rglob("*") if p.is_file()}
        assert on_disk == set(files), name


def test_readme_lists_every_example():
    readme = (ROOT.parents[1] / "README.md").read_text(encoding="utf-8")
    for name, (verdict, _) in EXPECTED.items():
        row = next((line for line in readme.splitlines() if f"`{name}`" in line), "")
        assert row and f"| {verdict} |" in row, name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_verdict(name):
    verdict, rules = EXPECTED[name]
    disc = discover([ROOT / name])
    assert len(disc.folders) == 1
    rec = audit_folder(disc.folders[0], AuditOptions())
    loud = {f.rule for f in rec.findings if f.severity.rank >= 2}
    assert rec.verdict == verdict, [(f.severity.value, f.rule, f.message) for f in rec.findings]
    assert loud == rules, [(f.severity.value, f.rule, f.message) for f in rec.findings]
    for f in rec.findings:
        if f.rule in ("REPORT-CONSISTENCY", "SUBMISSION-FILES") and f.file == "submission.json" and "val_bpb" in f.message:
            assert f.line is not None and f.evidence and f.evidence[0].startswith("submission.json:")


def test_auditing_examples_records_finds_each_example_folder():
    found = {f.path.name for f in discover([ROOT.parent]).folders}
    assert set(EXPECTED) <= found, sorted(found)
