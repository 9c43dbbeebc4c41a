"""`--format text`: the terminal view (rich, rendered to a string)."""
from __future__ import annotations

import re

from auditor.model import Report
from auditor.report import render
from tests.report_cases import odd_report, pipeline_report, write_tree

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_pipeline_text_tables_findings_and_summary(tmp_path):
    write_tree(tmp_path)
    out = render(pipeline_report(tmp_path), "text", color=False, width=120)
    assert not ANSI.search(out)
    assert all(line == line.rstrip() for line in out.split("\n"))  # no padding to the terminal width
    # One table per folder: claimed vs measured, per-seed columns when there are several seeds.
    clean = out[out.index("2026-01-01_Clean"):]
    assert re.search(r"val_bpb\s+1\.2244\s+1\.2244\s+1\.2243\s+1\.2245\s+1\.2244", clean)
    assert re.search(r"bytes total\s+15,863,489\s+[\d,]+ \((logged|measured)\)", clean)  # numbers are never cut short
    assert re.search(r"train time\s+—\s+max 599\.5 s", clean)
    # The failing folder: severity, rule, location, message, evidence, fix and ruling.
    fail = out[out.index(" FAIL  records/track_10min_16mb/2026-01-03_No#Code"):]
    assert re.search(r"✖ error\s+SUBMISSION-FILES PG501\s+\(folder\)\n\s+missing train_gpt.py\n\s+│ files: ", fail)
    assert "fix: Add the missing file" in fail and "why: https://github.com/openai/parameter-golf" in fail
    assert re.search(r"unreadable submission\.json: .+", fail)  # one line
    # The batch summary comes last, worst first.
    summary = out[out.index("Summary (worst first)"):]
    order = [summary.index(name) for name in ("2026-01-03_No#Code", "2026-01-02_One Seed", "2026-01-01_Clean")]
    assert order == sorted(order)
    assert out.rstrip().endswith("3 folders: 1 fail, 1 needs review, 1 pass")


def test_odd_content_prints_verbatim_without_markup():
    out = render(odd_report(2), "text", color=False, width=100)
    assert "[red]markup[/] <script>alert(1)</script>" in out  # data, not rich markup
    assert "│     key = (ctx * P) ^ (tgt * Q)  # ünïcödé ✓ 字" in out
    assert "│ … 19,988 more lines" in out
    assert "line one\n    line two" in out  # a newline in a message stays a line break, indented
    assert re.search(r"✖ error\s+STATS-SEEDS\s+submission\.json:3\s+waived", out)
    assert "waived: reviewed by the maintainers" in out
    assert out.index("UNKNOWN-RULE") < out.index("STATS-SEEDS")  # live findings before waived ones
    assert "p, README rule (≥0.005 nats, p<0.01): 0.004 ✓" in out
    assert "p, practice since 2026-04-28 (p<0.25): 0.180 ✓" in out
    assert re.search(r"bytes total\s+15,924,715\s+16,054,963 \(logged\)", out)  # numbers are never cut short
    assert "unreadable records/loose.txt: file loose in records/" in out
    out.encode("utf-8")


def test_colour_only_when_asked(monkeypatch):
    assert ANSI.search(render(odd_report(), "text", color=True, width=100))
    assert not ANSI.search(render(odd_report(), "text", color=False, width=100))
    # Without a terminal (pytest captures stdout) the default is plain; FORCE_COLOR forces, NO_COLOR wins.
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert not ANSI.search(render(odd_report(), "text"))
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert ANSI.search(render(odd_report(), "text"))
    monkeypatch.setenv("NO_COLOR", "1")
    assert not ANSI.search(render(odd_report(), "text"))


def test_nothing_readable():
    assert "nothing readable" in render(Report(), "text", color=False)
