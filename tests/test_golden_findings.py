"""What each rule says on its own VALID/INVALID cases, pinned word for word: severity, file, line,
message and evidence. A finding's text is what a reviewer reads; a change to it must be deliberate.

After a deliberate change:  PGOLF_UPDATE_GOLDEN=1 python3 -m pytest tests/test_golden_findings.py
then read the diff of tests/golden/rule_cases.json before committing it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import rules
from tests.helpers import audit_one, write_folder

GOLDEN = Path(__file__).parent / "golden" / "rule_cases.json"
UPDATE = os.environ.get("PGOLF_UPDATE_GOLDEN") == "1"


def _cases():
    for rule_id, cls in rules.load_all().items():
        for kind, cases in (("VALID", cls.VALID), ("INVALID", cls.INVALID)):
            for i, case in enumerate(cases):
                yield f"{rule_id}-{kind}-{i}", rule_id, case


def _said(tmp_path: Path, rule_id: str, case) -> list[list]:
    folder = write_folder(tmp_path, case.file_map(), track=case.track)
    rec = audit_one(folder, only_rules={rule_id}, **case.options)
    here = str(folder)

    def clean(text: str) -> str:
        return text.replace(here, "<folder>").replace(str(tmp_path), "<tmp>")

    out = [[f.rule, f.code, f.severity.value, f.file, f.line, clean(f.message), [clean(e) for e in f.evidence]]
           for f in rec.findings]
    return sorted(out, key=lambda x: json.dumps(x))


def test_rule_cases_say_what_the_golden_file_says(tmp_path):
    said = {}
    for n, (key, rule_id, case) in enumerate(_cases()):
        said[key] = _said(tmp_path / str(n), rule_id, case)
    if UPDATE:
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(said, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
        pytest.skip("golden file rewritten")
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert sorted(said) == sorted(golden), "rule cases added or removed: regenerate the golden file"
    changed = [k for k in said if said[k] != golden[k]]
    detail = "\n".join(f"{k}:\n  now  {said[k]}\n  was  {golden[k]}" for k in changed[:5])
    assert not changed, f"{len(changed)} case(s) now say something else (PGOLF_UPDATE_GOLDEN=1 if deliberate):\n{detail}"
