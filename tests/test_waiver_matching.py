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


def _load(tmp_path, data: bytes):
    tmp_path.mkdir(parents=True, exist_ok=True)
    p = tmp_path / "w.toml"
    p.write_bytes(data)
    got, problems = waivers.load_waivers(p)
    return got, [pr.message for pr in problems]


def test_a_waiver_file_that_cannot_be_read_is_one_problem_and_waives_nothing(tmp_path):
    assert _load(tmp_path / "a", b"[[waiver]\n")[1][0].startswith("invalid TOML: ")
    assert _load(tmp_path / "b", b'waiver = "x"\n') == ([], ["expected [[waiver]] tables"])
    assert _load(tmp_path / "c", b"waiver = [1]\n") == ([], ["expected [[waiver]] tables"])
    got, problems = _load(tmp_path / "d", b"\xff\xfe\x00[[waiver]]\n")
    assert got == [] and problems[0].startswith("cannot read waiver file (")
    got, problems = _load(tmp_path / "e", b"#" * (waivers.MAX_WAIVER_BYTES + 1))
    assert got == [] and problems == ["cannot read waiver file (1,048,577 bytes, over the 1,048,576-byte cap)"]


def test_a_byte_order_mark_and_odd_types_are_tolerated(tmp_path):
    got, problems = _load(tmp_path / "a", '\ufeff[[waiver]]\nfolder = " x/ "\nrule = " pg101 "\nreason = 5\nwho = ["a"]\nfile = 3\n'.encode())
    assert problems == [] and [(w.folder, w.rule, w.reason, w.who, w.file) for w in got] == [("x/", "PG101", "", "", None)]
    got, _p = _load(tmp_path / "b", b'[[waiver]]\nfolder = "x"\nrule = "R"\nreason = " why "\nwho = " me "\nfile = "a.py"\n')
    assert [(w.reason, w.who, w.file, w.base) for w in got] == [("why", "me", "a.py", (tmp_path / "b").absolute())]


def test_a_symlinked_waiver_file_is_never_followed(tmp_path, monkeypatch):
    real = tmp_path / "real.toml"
    real.write_text('[[waiver]]\nfolder = "*"\nrule = "*"\nreason = "r"\nwho = "w"\n', encoding="utf-8")
    (tmp_path / "link.toml").symlink_to(real)
    path, problem = waivers.find_waiver_file(AuditOptions(waivers_file=str(tmp_path / "link.toml")))
    assert path is None and problem.message == "waiver file is a symlink; not followed (pass the file itself)"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "pgolf-waivers.toml").symlink_to(real)
    monkeypatch.chdir(cwd)
    path, problem = waivers.find_waiver_file(AuditOptions())
    assert path is None and (problem.file, problem.message) == ("pgolf-waivers.toml", "waiver file is a symlink; not followed")
    path, problem = waivers.find_waiver_file(AuditOptions(waivers_file=str(real)))
    assert (path, problem) == (real, None)


def test_suppressions_cover_the_finding_line_and_the_line_below_only_with_a_reason(tmp_path):
    code = ("# pgolf: allow PG101 -- above\nx = 1\ny = 2  # pgolf: allow NGRAM-TARGET-IN-KEY\nz = 3  # pgolf: allow -- no rule\n"
            "w = 4  # pgolf: allow * -- all\n")
    folder = write_folder(tmp_path, {"train_gpt.py": code})
    ev = read_evidence(discover([folder]).folders[0])
    fs = [_f(line=2), _f(line=3), _f(line=4), _f(line=5, rule="OTHER", code="PG9"), _f(line=1), _f(line=None),
          _f(line=2, rule=waivers.RULE_ID, code="PG901"), _f(line=6)]
    rec = RecordResult(path=str(folder), findings=fs)
    waivers.apply(rec, ev, AuditOptions())
    # `*` is for the reviewer's file; an entrant's comment must name the rule
    assert [f.waived for f in rec.findings] == ["suppressed at train_gpt.py:1: above", None, None, None,
                                                "suppressed at train_gpt.py:1: above", None, None, None]
