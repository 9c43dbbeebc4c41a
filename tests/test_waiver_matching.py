"""The reviewer's waiver file (pgolf-waivers.toml) pinned: which findings an entry waives (`rule` by id,
by code or `*`; `file =` narrows it to one file; `folder` is a path or glob relative to the waiver
file's directory), that an entry without a reason and a reviewer waives nothing, where the file is
looked up (--waivers, else the working directory, never the record), and what a waived finding says."""
from __future__ import annotations

import textwrap

from auditor import waivers
from auditor.context import AuditOptions
from auditor.discover import discover
from auditor.evidence import read_evidence
from auditor.model import Finding, RecordResult, Severity
from tests.helpers import write_folder

FILES = {"train_gpt.py": "a = 1\nb = 2\nc = 3\n", "helper.py": "x = 1\ny = 2\n"}


def _f(rule="NGRAM-TARGET-IN-KEY", code="PG101", file="train_gpt.py", line=2) -> Finding:
    return Finding(rule=rule, code=code, severity=Severity.ERROR, file=file, line=line, message="m", ruling="r", fix="f")


def _waive(tmp_path, toml: str, findings: list[Finding], *, given: bool = True):
    folder = write_folder(tmp_path / "tree", FILES)
    wf = tmp_path / "tree" / "pgolf-waivers.toml"
    wf.write_text(textwrap.dedent(toml), encoding="utf-8")
    ev = read_evidence(discover([folder]).folders[0])
    rec = RecordResult(path=str(folder), findings=findings)
    options = AuditOptions(waivers_file=str(wf) if given else None)
    waivers.apply(rec, ev, options)
    return rec


ENTRY = """\
    [[waiver]]
    folder = "records/track_10min_16mb/2026-01-01_Test"
    rule = "{rule}"
    reason = "reviewed: the key is the previous token"
    who = "alice"
    {extra}
"""


def test_a_waiver_names_the_rule_by_id_code_or_star_case_blind(tmp_path):
    for i, rule in enumerate(("NGRAM-TARGET-IN-KEY", "ngram-target-in-key", "PG101", "pg101", "*")):
        rec = _waive(tmp_path / str(i), ENTRY.format(rule=rule, extra=""), [_f(), _f(rule="OTHER", code="PG999")])
        waived = [f.rule for f in rec.findings if f.waived]
        assert waived == (["NGRAM-TARGET-IN-KEY", "OTHER"] if rule == "*" else ["NGRAM-TARGET-IN-KEY"]), rule
        assert rec.errors == []


def test_a_waived_finding_says_who_where_and_why(tmp_path):
    rec = _waive(tmp_path, "# reviewer's file\n\n" + ENTRY.format(rule="PG101", extra=""), [_f()])
    shown = waivers._shown(tmp_path / "tree" / "pgolf-waivers.toml")
    assert rec.findings[0].waived == f"waived by alice ({shown}:3): reviewed: the key is the previous token"


def test_file_narrows_a_waiver_to_one_file(tmp_path):
    rec = _waive(tmp_path, ENTRY.format(rule="*", extra='file = "helper.py"'),
                 [_f(file="train_gpt.py"), _f(file="helper.py"), _f(file="", line=None)])
    assert [bool(f.waived) for f in rec.findings] == [False, True, False]


def test_a_waiver_without_a_reason_or_a_reviewer_waives_nothing(tmp_path):
    for i, (reason, who) in enumerate((("", "alice"), ("why", ""), ("   ", "alice"))):
        toml = f'[[waiver]]\nfolder = "records/*/2026-*"\nrule = "*"\nreason = "{reason}"\nwho = "{who}"\n'
        rec = _waive(tmp_path / str(i), toml, [_f()])
        assert not rec.findings[0].waived, (reason, who)


def test_the_folder_is_a_glob_relative_to_the_waiver_file(tmp_path):
    for i, (pattern, hit) in enumerate((("records/*/2026-*", True), ("records/track_10min_16mb/2026-01-01_Test/", True),
                                        ("records/*/2025-*", False), ("2026-01-01_Test", False),
                                        ("./records/../records/track_10min_16mb/2026-01-01_Test", True))):
        toml = f'[[waiver]]\nfolder = "{pattern}"\nrule = "*"\nreason = "r"\nwho = "w"\n'
        rec = _waive(tmp_path / str(i), toml, [_f()])
        assert bool(rec.findings[0].waived) is hit, pattern


def test_the_waiver_file_is_looked_up_in_the_working_directory(tmp_path, monkeypatch):
    toml = ENTRY.format(rule="*", extra="")
    (tmp_path / "tree").mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(tmp_path / "tree")
    rec = _waive(tmp_path, toml, [_f()], given=False)
    assert rec.findings[0].waived.startswith("waived by alice (pgolf-waivers.toml:1): ")
    monkeypatch.chdir(tmp_path)  # no file here: nothing waived, no problem
    rec = _waive(tmp_path / "other", toml, [_f()], given=False)
    assert not rec.findings[0].waived and rec.errors == []


def test_a_waiver_file_inside_the_record_is_never_read(tmp_path, monkeypatch):
    folder = write_folder(tmp_path, FILES)
    (folder / "pgolf-waivers.toml").write_text('[[waiver]]\nfolder = "."\nrule = "*"\nreason = "r"\nwho = "w"\n', encoding="utf-8")
    monkeypatch.chdir(folder)
    path, problem = waivers.find_waiver_file(AuditOptions(), folder)
    assert (path, problem) == (None, None)
    path, problem = waivers.find_waiver_file(AuditOptions(waivers_file=str(folder / "pgolf-waivers.toml")), folder)
    assert path is None and problem.message.startswith("waiver file lies inside the audited record folder")
    path, problem = waivers.find_waiver_file(AuditOptions(waivers_file=str(tmp_path / "nope.toml")), folder)
    assert path is None and problem.message == "waiver file not found"


def test_an_entry_without_folder_or_rule_is_a_problem_at_its_line(tmp_path):
    toml = '[[waiver]]\nfolder = "records/*/*"\nrule = "*"\nreason = "r"\nwho = "w"\n\n[[waiver]]\nrule = "*"\n\n[[waiver]]\nfolder = " "\nrule = "X"\n'
    (tmp_path / "w.toml").write_text(toml, encoding="utf-8")
    got, problems = waivers.load_waivers(tmp_path / "w.toml")
    assert [(w.line, w.folder, w.rule, w.reason, w.who, w.file) for w in got] == [(1, "records/*/*", "*", "r", "w", None)]
    assert [p.message for p in problems] == ["waiver needs a folder and a rule; entry ignored"] * 2
    assert [p.file.rsplit(":", 1)[1] for p in problems] == ["7", "10"]


def test_a_suppression_needs_a_reason_and_covers_its_line_and_the_next(tmp_path):
    sups = waivers.parse_suppressions("t.py", "a = 1  # pgolf: allow NGRAM-TARGET-IN-KEY, pg102 -- why\n# pgolf: allow X\nno\n")
    assert [(s.line, s.rules, s.reason) for s in sups] == [(1, {"NGRAM-TARGET-IN-KEY", "PG102"}, "why"), (2, {"X"}, "")]
