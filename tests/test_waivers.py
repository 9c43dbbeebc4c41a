"""Suppressions (`# pgolf: allow RULE -- reason`) and the reviewed waiver file (pgolf-waivers.toml)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from auditor import waivers
from auditor.context import AuditOptions
from auditor.discover import discover
from auditor.evidence import read_evidence
from auditor.model import Finding, RecordResult, Severity
from rules.waiver_reason import WaiverReason
from tests.helpers import audit_one, write_folder

CODE = textwrap.dedent("""\
    import os
    def lookup(table, prev, tgt):
        # pgolf: allow NGRAM-TARGET-IN-KEY -- tgt is the previous scored token here, not the target
        return table[(prev, tgt)]
    def other(table, tgt):
        return table[tgt]  # pgolf: allow PG101 -- the code form works too
    def bare(table, tgt):
        return table[tgt]  # pgolf: allow NGRAM-TARGET-IN-KEY
    def wrong_rule(table, tgt):
        return table[tgt]  # pgolf: allow SOME-OTHER-RULE -- not this one
    def far(table, tgt):
        # pgolf: allow NGRAM-TARGET-IN-KEY -- two lines above does not count

        return table[tgt]
""")

GOOD_FILES = {
    "README.md": "# test\n",
    "submission.json": '{"author": "a", "github_id": "a", "val_bpb": 1.2}\n',
    "train_gpt.py": CODE,
    "train_seed1.log": "seed:1\n",
    "train_seed2.log": "seed:2\n",
    "train_seed3.log": "seed:3\n",
}
CLEAN = {**GOOD_FILES, "train_gpt.py": "print('clean')\n"}
ONLY = {"SUBMISSION-FILES", waivers.RULE_ID}  # other rules' findings would blur the verdicts checked here


def _finding(line: int) -> Finding:
    return Finding(rule="NGRAM-TARGET-IN-KEY", code="PG101", severity=Severity.ERROR, file="train_gpt.py", line=line,
                   message="target in key", ruling="https://example.org/r", fix="don't")


def _apply(folder, findings, options=None):
    disc = discover([folder])
    ev = read_evidence(disc.folders[0])
    rec = RecordResult(path=disc.folders[0].display, findings=findings)
    collected = waivers.collect(ev, options or AuditOptions())
    rec.findings += WaiverReason().judge(collected)  # the rule judges what the waiver layer parsed
    waivers.apply(rec, ev, options or AuditOptions(), collected)
    return rec


def test_suppression_on_line_or_line_above(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = write_folder(tmp_path, GOOD_FILES)
    fs = {n: _finding(n) for n in (4, 6, 8, 10, 14)}
    rec = _apply(folder, list(fs.values()))
    assert fs[4].waived and "tgt is the previous scored token" in fs[4].waived  # comment on the line above
    assert "train_gpt.py:3" in fs[4].waived
    assert fs[6].waived and "code form" in fs[6].waived  # same line, rule given by its code
    assert fs[8].waived is None  # no reason: waives nothing
    assert fs[10].waived is None  # names another rule
    assert fs[14].waived is None  # two lines above
    reasonless = [f for f in rec.findings if f.rule == waivers.RULE_ID]
    assert [(f.file, f.line, f.severity) for f in reasonless] == [("train_gpt.py", 8, Severity.ERROR)]
    assert reasonless[0].evidence == ["return table[tgt]  # pgolf: allow NGRAM-TARGET-IN-KEY"]


def test_suppression_parser_edge_cases():
    s = waivers.parse_suppressions("x.py", "a = 1  #pgolf:allow A-B,PG7 --  why not\nb = 2  # pgolf: allow --reason only\nc  # pgolf: allowed\n")
    assert [(x.line, sorted(x.rules), x.reason) for x in s] == [(1, ["A-B", "PG7"], "why not"), (2, [], "reason only")]


def test_waiver_file_waives_and_keeps_showing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    files = {k: v for k, v in CLEAN.items() if k != "submission.json"}
    folder = write_folder(tmp_path, files, name="2026-01-02_NoJson")
    other = write_folder(tmp_path, files, name="2026-01-03_NoJsonEither")
    (tmp_path / "pgolf-waivers.toml").write_text(textwrap.dedent("""\
        # reviewed by the maintainers
        [[waiver]]
        folder = "records/track_10min_16mb/2026-01-02_NoJson"
        rule = "SUBMISSION-FILES"
        reason = "submission.json lives in the PR description (reviewed)"
        who = "maintainer-a"
    """), encoding="utf-8")
    rec = audit_one(folder, only_rules=ONLY)
    sub = [f for f in rec.findings if f.rule == "SUBMISSION-FILES"]
    assert sub and all(f.waived and "maintainer-a" in f.waived and "pgolf-waivers.toml:2" in f.waived for f in sub)
    assert rec.verdict == "pass"  # waived findings do not count
    rec2 = audit_one(other, only_rules=ONLY)  # a folder the waiver does not name keeps failing
    sub2 = [f.waived for f in rec2.findings if f.rule == "SUBMISSION-FILES"]
    assert sub2 and set(sub2) == {None}
    assert rec2.verdict == "fail"


def test_waiver_without_reason_or_who_is_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    files = {k: v for k, v in CLEAN.items() if k != "submission.json"}
    folder = write_folder(tmp_path, files, name="2026-01-02_NoJson")
    wf = tmp_path / "elsewhere" / "w.toml"
    wf.parent.mkdir()
    wf.write_text(textwrap.dedent("""\
        [[waiver]]
        folder = "../records/*/2026-01-02_*"
        rule = "PG501"
        who = "maintainer-a"

        [[waiver]]
        folder = "../records/track_10min_16mb/2026-01-02_NoJson"
        rule = "SUBMISSION-FILES"
        reason = "fine"
    """), encoding="utf-8")
    rec = audit_one(folder, waivers_file=str(wf), only_rules=ONLY)
    sub = [f.waived for f in rec.findings if f.rule == "SUBMISSION-FILES"]
    assert sub and set(sub) == {None}
    bad = sorted(f.message for f in rec.findings if f.rule == waivers.RULE_ID)
    assert bad == ["waiver elsewhere/w.toml:1 for PG501 has no reason; it waives nothing",
                   "waiver elsewhere/w.toml:6 for SUBMISSION-FILES has no who; it waives nothing"]
    assert rec.verdict == "fail"


def test_bad_waiver_files_are_one_line_problems(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = write_folder(tmp_path, GOOD_FILES)
    rec = audit_one(folder, waivers_file=str(tmp_path / "missing.toml"))
    assert [p.line() for p in rec.errors] == [f"{tmp_path / 'missing.toml'}: waiver file not found"]
    (tmp_path / "pgolf-waivers.toml").write_text("[[waiver]\nfolder = 1\n", encoding="utf-8")
    rec = audit_one(folder)
    assert len(rec.errors) == 1 and rec.errors[0].file == "pgolf-waivers.toml"
    assert rec.errors[0].message.startswith("invalid TOML")
    (tmp_path / "pgolf-waivers.toml").write_text("[[waiver]]\nrule = 'X'\nreason = 'r'\nwho = 'w'\n", encoding="utf-8")
    rec = audit_one(folder)
    assert [p.line() for p in rec.errors] == ["pgolf-waivers.toml:1: waiver needs a folder and a rule; entry ignored"]


def test_exit_code_ignores_waived_findings(tmp_path):
    files = {k: v for k, v in CLEAN.items() if k != "submission.json"}
    folder = write_folder(tmp_path, files, name="2026-01-02_NoJson")
    cmd = [sys.executable, "-m", "auditor", "audit", str(folder), "--format", "json", "--rule", "SUBMISSION-FILES"]
    before = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert before.returncode == 1, before.stderr
    (tmp_path / "pgolf-waivers.toml").write_text(
        '[[waiver]]\nfolder = "records/track_10min_16mb/2026-01-02_NoJson"\nrule = "SUBMISSION-FILES"\n'
        'reason = "reviewed"\nwho = "m"\n', encoding="utf-8")
    after = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert after.returncode == 0, after.stdout + after.stderr
    doc = json.loads(after.stdout)
    waived = [f for f in doc["records"][0]["findings"] if f["rule"] == "SUBMISSION-FILES"]
    assert waived and waived[0]["waived"].endswith("reviewed")


def test_self_suppressed_error_needs_review_but_reviewed_waiver_passes(tmp_path, monkeypatch):
    """An entrant's inline suppression silences an error but leaves the record for a reviewer;
    a waiver in the reviewed file (with who and why) lets it pass."""
    from auditor.policy import verdict

    monkeypatch.chdir(tmp_path)
    only_good = "\n".join(CODE.splitlines()[:4]) + "\n"  # the one suppression that gives a reason
    folder = write_folder(tmp_path, {**GOOD_FILES, "train_gpt.py": only_good})
    rec = _apply(folder, [_finding(4)])
    assert rec.findings[0].waived and rec.findings[0].waived.startswith(waivers.SUPPRESSED_PREFIX)
    assert verdict(rec) == "needs-review"

    (tmp_path / "pgolf-waivers.toml").write_text(textwrap.dedent("""\
        [[waiver]]
        folder = "records/track_10min_16mb/2026-01-01_Test"
        rule = "NGRAM-TARGET-IN-KEY"
        reason = "reviewed: the key holds the previous scored token"
        who = "reviewer"
    """))
    rec2 = _apply(folder, [_finding(2)])
    assert rec2.findings[0].waived and "waived by reviewer" in rec2.findings[0].waived
    assert verdict(rec2) == "pass"
