"""Every rule's VALID and INVALID cases are tests (Fixit style): a VALID folder yields no finding
of the rule at warning or above; an INVALID folder yields one at the expected severity."""
from __future__ import annotations

import pytest

import rules
from tests.helpers import audit_one, write_folder

CASES = [
    pytest.param(rule_id, kind, i, case, id=f"{rule_id}-{kind}-{i}")
    for rule_id, cls in rules.load_all().items()
    for kind, cases in (("VALID", cls.VALID), ("INVALID", cls.INVALID))
    for i, case in enumerate(cases)
]


def test_every_rule_has_cases():
    for rule_id, cls in rules.load_all().items():
        assert cls.VALID and cls.INVALID, f"{rule_id} needs VALID and INVALID cases"
        assert cls.__doc__ and cls.ruling.startswith("http"), f"{rule_id} needs a docstring and a ruling link"
        assert cls.fix, f"{rule_id} needs a fix"


@pytest.mark.parametrize("rule_id,kind,i,case", CASES)
def test_rule_case(tmp_path, rule_id, kind, i, case):
    folder = write_folder(tmp_path, case.file_map(), track=case.track)
    rec = audit_one(folder, only_rules={rule_id}, **case.options)
    mine = [f for f in rec.findings if f.rule == rule_id]
    if kind == "VALID":
        loud = [f for f in mine if f.severity.rank >= case.expect.rank]
        assert not loud, f"{case.note}: unexpected {[(f.severity.value, f.file, f.line, f.message) for f in loud]}"
    else:
        hits = [f for f in mine if f.severity.rank >= case.expect.rank]
        assert hits, f"{case.note}: expected {case.expect.value} from {rule_id}, got {[(f.severity.value, f.message) for f in mine]}; errors={rec.errors}"
        if case.line is not None:
            assert any(f.line == case.line and (case.file is None or f.file == case.file) for f in hits), \
                f"expected line {case.line}, got {[(f.file, f.line) for f in hits]}"
        for f in hits:
            assert f.ruling and f.fix and f.message, "every finding says why (ruling) and how to fix"
