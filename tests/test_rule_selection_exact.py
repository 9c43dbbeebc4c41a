"""Rule selectors pinned on a small catalog of our own: ids, codes, code prefixes, id prefixes at a
word boundary, families, ALL, case and comma handling; --ignore wins over --select/--extend-select;
an unknown selector is a usage error naming the closest matches; selection and hiding info findings
keep every other finding and the verdict honest."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from auditor.model import Finding, RecordResult, Severity
from auditor.policy import verdict
from auditor.selectors import RuleName, SelectorError, apply, closest, match, resolve, split, without_info

NAMES = [RuleName("NGRAM-TARGET-IN-KEY", "PG101", "ngram"), RuleName("NGRAM-CACHE", "PG102", "ngram"),
         RuleName("TIME-TRAIN-600", "PG401", "time"), RuleName("TIMEX-OTHER", "PG41", "misc"),
         RuleName("ARTIFACT-16MB", "PG301", "artifact"), RuleName("N", "PG999", "x")]
ALL = {n.id for n in NAMES}


def test_split_takes_commas_and_repeats_and_drops_blanks():
    assert split(["PG1, NGRAM-", " ttt ", ",,", ""]) == ["PG1", "NGRAM-", "ttt"]
    assert split(None) == [] and split([]) == []


@pytest.mark.parametrize("selector,expected", [
    ("ngram-target-in-key", {"NGRAM-TARGET-IN-KEY"}), (" pg401 ", {"TIME-TRAIN-600"}), ("all", ALL),
    ("NGRAM", {"NGRAM-TARGET-IN-KEY", "NGRAM-CACHE"}),  # the family wins over the id prefix (same set here)
    ("misc", {"TIMEX-OTHER"}), ("PG1", {"NGRAM-TARGET-IN-KEY", "NGRAM-CACHE"}), ("PG4", {"TIME-TRAIN-600", "TIMEX-OTHER"}),
    ("PG41", {"TIMEX-OTHER"}),  # an exact code beats the prefix PG41x
    ("TIME-", {"TIME-TRAIN-600"}), ("TIME", {"TIME-TRAIN-600"}),  # a word boundary: not TIMEX-OTHER
    ("NGRAM-TARGET", {"NGRAM-TARGET-IN-KEY"}), ("N", {"N"}), ("PGX", set()), ("", set()), ("   ", set()),
    ("ARTIFACT-16MB-", {"ARTIFACT-16MB"}), ("TI", set()), ("PG", set()),
])
def test_each_selector_form(selector, expected):
    assert match(selector, NAMES) == expected


def test_a_single_letter_is_no_prefix():
    names = NAMES + [RuleName("NX-ONE", "PG998", "y")]
    assert match("N", names) == {"N"}
    assert match("NX", names) == {"NX-ONE"}


def test_nothing_selected_or_ignored_is_every_rule():
    assert resolve(names=NAMES) is None
    assert resolve([], [" "], [","], names=NAMES) is None


def test_select_then_extend_then_ignore():
    assert resolve(["PG1"], names=NAMES) == {"NGRAM-TARGET-IN-KEY", "NGRAM-CACHE"}
    assert resolve(["PG1"], ["NGRAM-CACHE"], ["time"], names=NAMES) == {"NGRAM-TARGET-IN-KEY", "TIME-TRAIN-600"}
    assert resolve(ignore=["ngram,PG301"], names=NAMES) == {"TIME-TRAIN-600", "TIMEX-OTHER", "N"}
    assert resolve(extend_select=["PG301"], names=NAMES) == ALL
    assert resolve(["PG301"], ["PG301"], names=NAMES) == set()


def test_an_unknown_selector_names_the_option_and_the_closest_rules():
    with pytest.raises(SelectorError) as e:
        resolve(["NGRAM-TARGET-IN-KYE"], names=NAMES)
    assert str(e.value) == "--select 'NGRAM-TARGET-IN-KYE' names no rule; did you mean NGRAM-TARGET-IN-KEY, NGRAM-CACHE?"
    with pytest.raises(SelectorError) as e:
        resolve(ignore=["zzzzzzzz"], names=NAMES)
    assert str(e.value) == "--ignore 'zzzzzzzz' names no rule; `pgolf rules` lists them"
    with pytest.raises(SelectorError) as e:
        resolve(extend_select=["qqqq"], names=NAMES, option_names={"extend-select": "extend-select ="})
    assert str(e.value).startswith("extend-select = 'qqqq' names no rule")


def test_closest_keeps_the_spelling_and_at_most_n():
    assert closest("pg10", NAMES) == ["PG102", "PG101", "PG41"]  # three, best first, as the catalog spells them
    assert closest("ngrm", NAMES) == ["ngram", "NGRAM-CACHE"]
    assert closest("PG10", NAMES, n=1) == ["PG102"]


def _f(rule: str, sev: Severity, waived: str | None = None) -> Finding:
    return Finding(rule=rule, code="PG1", severity=sev, file="a.py", line=1, message="m", ruling="r", fix="f", waived=waived)


def test_selection_keeps_the_selected_findings_and_recomputes_the_verdict():
    rec = RecordResult(path="x", findings=[_f("NGRAM-CACHE", Severity.ERROR), _f("time-train-600", Severity.WARNING)])
    rec.verdict = verdict(rec)
    before = rec.verdict
    report = SimpleNamespace(records=[rec])
    assert apply(report, None) is report and rec.verdict == before and len(rec.findings) == 2
    apply(report, {"TIME-TRAIN-600"})
    assert [f.rule for f in rec.findings] == ["time-train-600"]
    assert rec.verdict == verdict(RecordResult(path="x", findings=[_f("TIME-TRAIN-600", Severity.WARNING)])) != before


def test_hiding_info_keeps_waived_info_and_the_original_report():
    rec = RecordResult(path="x", findings=[_f("A", Severity.INFO), _f("B", Severity.INFO, waived="w"), _f("C", Severity.WARNING)])
    report = SimpleNamespace(records=[rec], other=1)
    view = without_info(report)
    assert [f.rule for f in view.records[0].findings] == ["B", "C"]
    assert [f.rule for f in rec.findings] == ["A", "B", "C"] and view.other == 1 and view.records[0].path == "x"


def test_an_unknown_extend_select_names_its_option():
    with pytest.raises(SelectorError) as e:
        resolve(extend_select=["qqqq"], names=NAMES)
    assert str(e.value).startswith("--extend-select 'qqqq' names no rule")


def test_the_catalog_is_every_registered_rule_with_its_code_and_family():
    import rules
    from auditor.selectors import catalog

    cat = catalog()
    assert {n.id for n in cat} == set(rules.load_all())
    art = next(n for n in cat if n.id == "ARTIFACT-16MB")
    assert (art.code, art.family) == ("PG301", "artifact")
    assert resolve(["PG301"]) == {"ARTIFACT-16MB"}  # without names: the real catalog
