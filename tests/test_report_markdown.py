"""`--format markdown`: the PR comment. Why it fails on the first screen, under GitHub's limit."""
from __future__ import annotations

import re

from auditor.model import Report
from auditor.report import common, markdown, render
from auditor.context import AuditOptions
from auditor.discover import discover
from auditor.pipeline import build_report
from tests.helpers import write_folder
from tests.report_cases import clean_files, odd_report, pipeline_report, write_tree

FIRST_SCREEN = 25  # lines a reviewer sees without scrolling


def _balanced(md: str) -> None:
    """Every fence and every <details> outside code closes, so truncation never swallows the rest."""
    fence = None
    opened = closed = 0
    for line in md.split("\n"):
        m = re.match(r"^\s*(`{3,})", line)
        if fence is None:
            if m:
                fence = m.group(1)
                continue
            opened += line.count("<details>")
            closed += line.count("</details>")
        elif m and line.strip() == fence:
            fence = None
    assert fence is None, "unclosed code fence"
    assert opened == closed


def test_single_failing_folder_says_why_first(tmp_path):
    folders = write_tree(tmp_path)
    rep = pipeline_report(tmp_path, [folders["fail"]])
    md = render(rep, "markdown")
    lines = md.split("\n")
    assert lines[0].startswith("## ❌ pgolf: **fail**") and "2026-01-03_No#Code" in lines[0]
    screen = "\n".join(lines[:FIRST_SCREEN])
    assert "**Why it fails**" in screen
    assert "**SUBMISSION-FILES** `(folder)`: missing train\\_gpt.py" in screen
    assert "| val_bpb | — | 1.2244 |" in screen  # the claim is unreadable, the logs are not
    assert "### Findings" in md and "[ruling](https://" in md
    assert "`submission.json`: " in md  # the truncated JSON listed as unreadable
    _balanced(md)


def test_clean_folder_table_has_claims_measures_seeds_and_pvalue_row(tmp_path):
    folders = write_tree(tmp_path)
    md = render(pipeline_report(tmp_path, [folders["pass"]]), "markdown")
    assert md.startswith("## ✅ pgolf: **pass**")
    assert "|  | claimed | measured | seed 1 | seed 2 | seed 3 |" in md
    assert "| val_bpb | 1.2244 | 1.2244 | 1.2243 | 1.2245 | 1.2244 |" in md
    assert "| bytes total | 15,863,489 |" in md
    assert "| train time | — | max 599.5 s | 599.5 s |" in md
    assert "| p-values (README ≥0.005 nats p&lt;0.01, practice p&lt;0.25) |  | not computed (no previous record: --against) |" in md
    assert "Per-seed val_bpb `▁█▅`" in md
    assert "Why it fails" not in md


def test_pvalues_under_both_rulebooks_from_the_pipeline(tmp_path):
    folders = write_tree(tmp_path)
    prev = write_folder(tmp_path / "prev", clean_files((1.2400, 1.2420, 1.2380)), name="2025-12-01_Prev")
    disc = discover([folders["pass"]], cwd=tmp_path)
    rep = build_report(disc, AuditOptions(only_rules={"SUBMISSION-FILES"}, against=[str(prev)]), root=tmp_path)
    st = rep.records[0].stats
    assert st.p_readme is not None and st.p_practice is not None
    md = render(rep, "markdown")
    readme = f"| p, README rule (≥0.005 nats, p&lt;0.01) |  | {common.fmt_p(st.p_readme)} {'✅' if st.p_readme < 0.01 else '❌'} |"
    practice = f"| p, practice since 2026-04-28 (p&lt;0.25) |  | {common.fmt_p(st.p_practice)} ✅ |"
    assert readme in md and practice in md
    assert "| Δ val\\_bpb vs 2025-12-01\\_Prev |  | +0.0156 |" in md
    text = render(rep, "text", color=False)
    assert f"p, practice since 2026-04-28 (p<0.25): {common.fmt_p(st.p_practice)} ✓" in text


def test_batch_summary_sorted_by_verdict(tmp_path):
    write_tree(tmp_path)
    md = render(pipeline_report(tmp_path), "markdown")
    assert md.startswith("## ❌ pgolf: **fail** — 3 record folders")
    rows = [line for line in md.split("\n") if line.startswith("| ") and "`records/" in line]
    assert [r.split("|")[1].strip() for r in rows[:3]] == ["❌ fail", "⚠️ needs review", "✅ pass"]
    assert "2026-01-02_One Seed" in rows[1]
    _balanced(md)


def test_odd_content_is_escaped_and_folded():
    md = render(odd_report(), "markdown")
    _balanced(md)
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert "@cocohearts" not in md  # no pings from a PR comment
    assert "\\[red\\]markup" in md
    assert "<details><summary>evidence: 20,000 lines</summary>" in md
    assert "… 19,940 more lines" in md
    assert "\udcff" not in md
    # evidence is verbatim inside a fence longer than any backtick run in it
    assert "  ````text\n      key = (ctx * P) ^ (tgt * Q)  # ünïcödé ✓ 字\n  ```\n" in md
    # both rulebooks' p-values, with their thresholds
    assert "p, README rule (≥0.005 nats, p&lt;0.01) |  | 0.004 ✅" in md
    assert "p, practice since 2026-04-28 (p&lt;0.25) |  | 0.180 ✅" in md
    # waived is shown as waived, and after the live findings
    assert md.index("~~error~~ waived") > md.index("UNKNOWN-RULE")
    assert "waived: reviewed by the maintainers" in md
    # folder-level bytes over the cap are marked in the table
    assert "**16,054,963 (logged)** ⛔" in md


def test_many_folders_truncate_under_github_limit():
    rep = odd_report(n_extra_folders=600)
    md = render(rep, "markdown")
    assert len(md) <= markdown.GITHUB_COMMENT_LIMIT
    assert "Truncated to stay under GitHub's 65,536-character comment limit" in md
    _balanced(md)
    # the reasons and the top of the summary survive truncation
    head = md.split("\n")[:FIRST_SCREEN]
    assert head[0].startswith("## ❌ pgolf: **fail** — 601 record folders")
    assert any("NGRAM-TARGET-IN-KEY" in line for line in head)


def test_truncation_respects_a_small_budget():
    for limit in (3_000, 8_000, 20_000):
        md = render(odd_report(n_extra_folders=20), "markdown", max_chars=limit)
        assert len(md) <= limit, limit
        assert "Truncated" in md
        _balanced(md)


def test_nothing_readable():
    md = render(Report(errors=[]), "markdown")
    assert md.startswith("## ❌ pgolf: nothing readable")


def test_sparkline_and_escapes():
    assert common.sparkline([3.0, 1.0, 2.0]) == "█▁▅"
    assert common.sparkline([1.0]) == ""
    assert common.sparkline([1.0, 1.0]) == "▄▄"
    assert markdown.code("a`b") == "``a`b``"
    assert markdown.code("`x`") == "`` `x` ``"
    assert markdown.cell_code("a|b") == "`a\\|b`"
    assert markdown.link("javascript:alert(1)") == "javascript:alert(1)"  # only http(s) becomes a link
    # Rules quote code in backticks: those become code spans, the rest is escaped.
    assert markdown.inline("use `k = a|b <i>` here, @x_y") == "use `k = a|b <i>` here, @\u2060x\\_y"
    assert markdown.inline("odd ` tick <b>") == "odd \\` tick &lt;b&gt;"
    assert markdown.inline("```\nfence") == "\\`\\`\\` fence"
