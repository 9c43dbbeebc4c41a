"""Waivers and suppressions, one rule per test, each one a bug the mutation run (benchmarks/mutation.py
waivers) showed the suite would let through: which findings are skipped and which are not, the order of the
entrant's suppression and the reviewer's waiver, the runner's notes and the base-revision copy reaching
every folder, the file named in each problem, and the odd shapes of a waiver file."""
from __future__ import annotations

from pathlib import Path

from auditor import waivers
from auditor.context import AuditOptions
from auditor.discover import discover
from auditor.evidence import read_evidence
from auditor.model import Finding, Problem, RecordResult, Severity
from auditor.policy import verdict
from tests.helpers import write_folder

CODE = "a = 1\nb = 2  # pgolf: allow PG101, WAIVER-REASON -- the key is the previous token\nc = 3\nd = 4\n"
WAIVE_ALL = '[[waiver]]\nfolder = "{folder}"\nrule = "*"\nreason = "reviewed"\nwho = "alice"\n'


def _f(line=2, rule="NGRAM-TARGET-IN-KEY", code="PG101", file="train_gpt.py", waived=None) -> Finding:
    return Finding(rule=rule, code=code, severity=Severity.ERROR, file=file, line=line, message="m", ruling="r", fix="f",
                   waived=waived)


def _ev(folder: Path):
    return read_evidence(discover([folder]).folders[0])


def _apply(folder: Path, findings: list[Finding], options: AuditOptions | None = None) -> RecordResult:
    rec = RecordResult(path=str(folder), findings=findings)
    waivers.apply(rec, _ev(folder), options or AuditOptions())
    return rec


# ---- suppressions --------------------------------------------------------------------------------

def test_a_line_that_only_mentions_pgolf_does_not_end_the_scan_for_suppressions():
    text = "# pgolf: see docs/ci.md\nx = 1  # pgolf: allow PG101 -- why\n"
    assert [(s.line, s.rules, s.reason) for s in waivers.parse_suppressions("t.py", text)] == [(2, {"PG101"}, "why")]


def test_findings_the_suppression_step_skips_do_not_stop_it_and_are_left_as_they_are(tmp_path):
    """Skipped: a finding already waived (its first reason stays), one with a file but no line (no error raised),
    and WAIVER-REASON itself (an entrant cannot silence the rule that judges suppressions); the findings after
    them are still matched."""
    folder = write_folder(tmp_path, {"train_gpt.py": CODE})
    rec = _apply(folder, [_f(waived="kept"), _f(line=None), _f(rule=waivers.RULE_ID, code=waivers.RULE_CODE), _f(line=3)])
    assert [f.waived for f in rec.findings] == ["kept", None, None,
                                                "suppressed at train_gpt.py:2: the key is the previous token"]
    assert rec.errors == []


def test_a_suppression_in_a_text_file_a_finding_points_at_is_read(tmp_path):
    folder = write_folder(tmp_path, {"train_gpt.py": "x = 1\n",
                                     "run.sh": "torchrun train_gpt.py  # pgolf: allow PG101 -- the shell line is the README's\n"})
    rec = _apply(folder, [_f(file="run.sh", line=1), _f(file="run.sh", line=3)])
    assert [f.waived for f in rec.findings] == ["suppressed at run.sh:1: the shell line is the README's", None]


# ---- the reviewer's waiver file ------------------------------------------------------------------

def test_a_reviewers_waiver_also_covers_what_the_entrant_suppressed_and_the_record_passes(tmp_path):
    """policy.verdict: needs-review only for an error that *only* the entrant's suppression silences."""
    folder = write_folder(tmp_path, {"train_gpt.py": CODE})
    wf = tmp_path / "w.toml"
    wf.write_text(WAIVE_ALL.format(folder=folder), encoding="utf-8")
    alone = _apply(folder, [_f()])
    assert alone.findings[0].waived.startswith(waivers.SUPPRESSED_PREFIX) and verdict(alone) == "needs-review"
    both = _apply(folder, [_f()], AuditOptions(waivers_file=str(wf)))
    assert both.findings[0].waived == f"waived by alice ({waivers._shown(wf)}:1): reviewed"
    assert verdict(both) == "pass"


def test_the_waiver_step_skips_waiver_reason_and_reviewed_findings_but_goes_on(tmp_path):
    folder = write_folder(tmp_path, {"train_gpt.py": "x = 1\n", "helper.py": "y = 1\n"})
    wf = tmp_path / "w.toml"
    wf.write_text('[[waiver]]\nfolder = "{0}"\nrule = "*"\nreason = ""\nwho = "bob"\n\n'
                  '[[waiver]]\nfolder = "{0}"\nrule = "*"\nreason = "reviewed"\nwho = "alice"\nfile = "helper.py"\n'.format(folder),
                  encoding="utf-8")
    found = [_f(rule=waivers.RULE_ID, code=waivers.RULE_CODE, file="helper.py"), _f(file="helper.py", waived="by carol"),
             _f(file="train_gpt.py"), _f(file="helper.py")]
    rec = _apply(folder, found, AuditOptions(waivers_file=str(wf)))
    # the first entry (no reason) waives nothing and does not stop the second; `file =` skips train_gpt.py and goes on
    assert [f.waived for f in rec.findings] == [None, "by carol", None, f"waived by alice ({waivers._shown(wf)}:7): reviewed"]


def test_a_waiver_folder_may_be_absolute_or_end_in_any_letter(tmp_path):
    for i, name in enumerate(("2026-01-01_RunX", "2026-01-01_Run/")):
        folder = write_folder(tmp_path / str(i), {"train_gpt.py": "x = 1\n"}, name=name.rstrip("/"))
        for pattern in (f"records/track_10min_16mb/{name}", str(folder)):
            wf = tmp_path / str(i) / "w.toml"
            wf.write_text(WAIVE_ALL.format(folder=pattern), encoding="utf-8")
            rec = _apply(folder, [_f(line=1)], AuditOptions(waivers_file=str(wf)))
            assert rec.findings[0].waived, pattern


def test_problems_with_the_given_waiver_file_name_it(tmp_path):
    real = tmp_path / "real.toml"
    real.write_text(WAIVE_ALL.format(folder="*"), encoding="utf-8")
    (tmp_path / "link.toml").symlink_to(real)
    _p, problem = waivers.find_waiver_file(AuditOptions(waivers_file=str(tmp_path / "link.toml")))
    assert problem == Problem(str(tmp_path / "link.toml"), "waiver file is a symlink; not followed (pass the file itself)")
    folder = write_folder(tmp_path, {"train_gpt.py": "x = 1\n"})
    inside = folder / "w.toml"
    inside.write_text(WAIVE_ALL.format(folder="."), encoding="utf-8")
    _p, problem = waivers.find_waiver_file(AuditOptions(waivers_file=str(inside)), folder)
    assert problem == Problem(str(inside), "waiver file lies inside the audited record folder; not read "
                                           "(waivers come from the reviewer, not from the record)")


def test_collect_refuses_a_given_waiver_file_inside_the_record_folder(tmp_path):
    folder = write_folder(tmp_path, {"train_gpt.py": "x = 1\n"})
    inside = folder / "w.toml"
    inside.write_text(WAIVE_ALL.format(folder="."), encoding="utf-8")
    c = waivers.collect(_ev(folder), AuditOptions(waivers_file=str(inside)))
    assert c.waivers == [] and [p.message.split(";")[0] for p in c.problems] == ["waiver file lies inside the audited record folder"]


def _load(p: Path, data: bytes, location=None):
    p.write_bytes(data)
    return waivers.load_waivers(p, location)


def test_an_empty_waiver_file_waives_nothing_and_is_no_problem(tmp_path):
    """What `--changed` hands the workers when the base revision has no waiver file (waivers._mark_none)."""
    assert _load(tmp_path / "a.toml", b"") == ([], [])
    assert _load(tmp_path / "b.toml", b"# no waivers yet\n") == ([], [])


def test_problems_reading_a_waiver_file_name_it(tmp_path):
    for data, message in ((b"\xff\xfe\x00", "cannot read waiver file ("), (b'waiver = "x"\n', "expected [[waiver]] tables"),
                          (b"[[waiver]\n", "invalid TOML: ")):
        p = tmp_path / "w.toml"
        p.unlink(missing_ok=True)
        got, problems = _load(p, data)
        assert got == [] and [(q.file, q.message[:len(message)]) for q in problems] == [(waivers._shown(p), message)]


def test_entries_written_as_an_inline_array_are_read_and_placed_at_line_1(tmp_path):
    got, problems = _load(tmp_path / "w.toml", b'# reviewed\nwaiver = [{folder = "a", rule = "R", reason = "r", who = "w"},\n'
                                               b'          {folder = "b", rule = "S", reason = "r", who = "w"}]\n')
    assert problems == [] and [(w.folder, w.line) for w in got] == [("a", 1), ("b", 1)]


def test_an_entry_with_a_blank_missing_or_non_text_rule_is_a_problem(tmp_path):
    got, problems = _load(tmp_path / "w.toml", b'[[waiver]]\nfolder = "x"\nrule = "  "\n\n[[waiver]]\nfolder = "x"\n\n'
                                               b'[[waiver]]\nfolder = "x"\nrule = 5\n')
    assert got == [] and [p.line() for p in problems] == [f"{waivers._shown(tmp_path / 'w.toml')}:{n}: waiver needs a folder and a "
                                                          "rule; entry ignored" for n in (1, 5, 8)]


def test_a_base_revision_copy_is_shown_and_resolved_where_the_file_lives_in_the_checkout(tmp_path):
    """With --changed the workers read a private copy of the base revision's file; its entries and problems are
    named as the checkout's file at the base, and folder globs are relative to the checkout, not the copy."""
    checkout, private = tmp_path / "checkout", tmp_path / "private"
    private.mkdir()
    folder = write_folder(checkout, {"train_gpt.py": "x = 1\n"})
    copy = private / "pgolf-waivers.toml"
    copy.write_text(WAIVE_ALL.format(folder="records/*/2026-*"), encoding="utf-8")
    location = (str(checkout), "pgolf-waivers.toml@main")
    got, problems = waivers.load_waivers(copy, location)
    assert problems == [] and [(w.source, w.base) for w in got] == [("pgolf-waivers.toml@main", checkout)]
    bad = private / "bad.toml"
    assert _load(bad, b"[[waiver]\n", location)[1][0].file == "pgolf-waivers.toml@main"
    # collect passes the location on only for the file the runner settled on (options.waivers_file)
    c = waivers.collect(_ev(folder), AuditOptions(waivers_file=str(copy), extra={waivers.LOCATION_KEY: list(location)}))
    assert [(w.source, w.line) for w in c.waivers] == [("pgolf-waivers.toml@main", 1)]
    assert waivers.collect(_ev(folder), AuditOptions(waivers_file=str(copy))).waivers == []  # relative to the copy: no match


def test_the_runners_notes_on_waiver_files_it_did_not_read_reach_every_folder(tmp_path):
    folder = write_folder(tmp_path, {"train_gpt.py": "x = 1\n"})
    notes = [("pgolf-waivers.toml", "is not in the base revision main"), ["w.toml", "is a symlink"], ("a", "b", "c"), "xy", None]
    c = waivers.collect(_ev(folder), AuditOptions(extra={waivers.NOTES_KEY: notes}))
    assert c.ignored == [("pgolf-waivers.toml", "is not in the base revision main", False), ("w.toml", "is a symlink", False)]


def test_without_tomllib_python_3_10_says_so_once_and_waives_nothing(tmp_path, monkeypatch):
    """pyproject allows Python 3.10, which has no tomllib: the waiver file is then one problem naming it."""
    import sys

    monkeypatch.setitem(sys.modules, "tomllib", None)  # `import tomllib` raises ImportError, as on 3.10
    p = tmp_path / "w.toml"
    assert _load(p, WAIVE_ALL.format(folder="*").encode()) == ([], [Problem(waivers._shown(p), "waiver files need Python 3.11 or "
                                                                                              "newer (tomllib)")])
