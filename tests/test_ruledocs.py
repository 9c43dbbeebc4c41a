"""`pgolf rule ID`, `pgolf rules`, and the generated docs/rules.md."""
from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

import rules
from auditor import ruledocs
from auditor.cli import app

REPO = Path(__file__).resolve().parents[1]
RULES_MD = REPO / "docs" / "rules.md"


def test_docs_rules_md_is_in_sync():
    expected = ruledocs.list_rules("markdown")
    current = RULES_MD.read_text(encoding="utf-8") if RULES_MD.exists() else ""
    assert current == expected, "docs/rules.md is stale: run `pgolf rules --format markdown > docs/rules.md`"


def test_every_rule_page_has_all_sections():
    for rid, r in rules.load_all().items():
        page = ruledocs.rule_doc(rid)
        assert page.startswith(f"{rid} ({r.code}): {r.title}")
        for head in ("What it checks:", "Why it breaks the rules:", "Legal example:", "Illegal example:", "How to fix:"):
            assert head in page, (rid, head)
        assert r.ruling in page
        md = ruledocs.rule_doc(rid, fmt="markdown")
        assert md.startswith(f"# {rid} ({r.code})") and "## Illegal example" in md


def test_rule_codes_are_unique():
    # `pgolf rule PG601` must name one rule
    by_code: dict[str, list[str]] = {}
    for rid, r in rules.load_all().items():
        by_code.setdefault(r.code, []).append(rid)
    assert {c: ids for c, ids in by_code.items() if len(ids) > 1} == {}
    for rid, r in rules.load_all().items():
        assert rules.get(r.code) is r


def test_examples_come_from_the_rule_cases():
    r = rules.get("WAIVER-REASON")
    page = ruledocs.rule_doc("waiver-reason")  # ids are case-insensitive
    legal, illegal = page.split("Legal example:")[1].split("Illegal example:")
    valid_line = r.VALID[0].file_map()["train_gpt.py"].split("\n")[1]
    invalid_line = r.INVALID[0].file_map()["train_gpt.py"].split("\n")[1]
    assert valid_line in legal and valid_line not in illegal
    assert invalid_line in illegal.split("How to fix:")[0]
    assert "-- reads the val shard only" in legal


def test_multi_file_case_shows_its_file_list():
    page = ruledocs.rule_doc("PG501")
    illegal = page.split("Illegal example:")[1]
    assert "files: README.md, train_gpt.py, train_seed1.log" in illegal  # submission.json is the missing one


def test_cli_rule_and_rules():
    runner = CliRunner()
    res = runner.invoke(app, ["rule", "PG901"])
    assert res.exit_code == 0 and "How to fix:" in res.output
    res = runner.invoke(app, ["rule", "NO-SUCH-RULE"])
    assert res.exit_code == 2
    res = runner.invoke(app, ["rules"])
    assert res.exit_code == 0
    listed = [line.split()[1] for line in res.output.strip().split("\n")]
    assert listed == list(rules.load_all())
    res = runner.invoke(app, ["rules", "--format", "markdown"])
    assert res.exit_code == 0 and res.output == ruledocs.list_rules("markdown")


def test_markdown_table_links_resolve_to_headings():
    md = ruledocs.list_rules("markdown")
    for rid, r in rules.load_all().items():
        anchor = ruledocs._anchor(rid, r.code)
        assert f"](#{anchor})" in md
        assert f"\n## {rid} ({r.code})\n" in md
