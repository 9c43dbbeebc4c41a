"""Rule selection the way ruff and flake8 users expect it: ``--select``, ``--ignore`` and
``--extend-select`` take rule ids (``NGRAM-TARGET-IN-KEY``), codes (``PG101``), code prefixes
(``PG1``), id prefixes (``NGRAM-``) and families (``ngram``), case-insensitively, comma-separated or
repeated; ``ALL`` is every rule. A selector that names nothing is a usage error with the closest
matches: a mistyped selector must never turn into a silent "no findings".

Selection is applied to findings by their rule id, after the waivers and before the verdict: a rule
may report under a sibling id (an eval-integrity rule raising REPORT-CONSISTENCY), so running only
the selected rule classes would lose findings.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable, Mapping


class SelectorError(ValueError):
    """An unknown selector; the message is the one line the CLI prints."""


@dataclass(frozen=True)
class RuleName:
    id: str
    code: str
    family: str


def catalog() -> list[RuleName]:
    from auditor.pipeline import load_rules  # the one rule loader

    return [RuleName(rid, cls.code.upper(), cls.family.lower()) for rid, cls in load_rules().items()]


def split(values: Iterable[str] | None) -> list[str]:
    """``["PG1,NGRAM-", "ttt"]`` → ``["PG1", "NGRAM-", "ttt"]`` (blank items dropped)."""
    out: list[str] = []
    for v in values or []:
        out += [s.strip() for s in str(v).split(",") if s.strip()]
    return out


def match(selector: str, names: list[RuleName]) -> set[str]:
    """The rule ids one selector names; empty when it names none."""
    s = selector.strip().upper()
    if not s:
        return set()
    if s == "ALL":
        return {n.id for n in names}
    exact = {n.id for n in names if s in (n.id, n.code)}
    if exact:
        return exact
    family = {n.id for n in names if s == n.family.upper()}
    if family:
        return family
    if s.startswith("PG") and s[2:].isdigit():  # a code prefix: PG1 → PG1xx
        return {n.id for n in names if n.code.startswith(s)}
    # an id prefix at a word boundary: NGRAM- or NGRAM → NGRAM-*, TIME → TIME-*; not a bare "N"
    stem = s.rstrip("-")
    if len(stem) >= 2:
        return {n.id for n in names if n.id == stem or n.id.startswith(stem + "-")}
    return set()


def closest(selector: str, names: list[RuleName], n: int = 3) -> list[str]:
    words = sorted({x for nm in names for x in (nm.id, nm.code, nm.family)})
    upper = {w.upper(): w for w in words}
    hits = difflib.get_close_matches(selector.strip().upper(), list(upper), n=n, cutoff=0.5)
    return [upper[h] for h in hits]


def resolve(select: Iterable[str] | None = None, ignore: Iterable[str] | None = None,
            extend_select: Iterable[str] | None = None, *, names: list[RuleName] | None = None,
            option_names: Mapping[str, str] | None = None) -> set[str] | None:
    """The selected rule ids, or None for "every rule" (nothing selected or ignored).

    Raises SelectorError for a selector that names no rule. ``option_names`` maps "select",
    "ignore" and "extend-select" to how the caller spells the option in its message."""
    sel, ign, ext = split(select), split(ignore), split(extend_select)
    if not (sel or ign or ext):
        return None
    names = names if names is not None else catalog()
    spell = {"select": "--select", "ignore": "--ignore", "extend-select": "--extend-select", **(option_names or {})}

    def ids(kind: str, items: list[str]) -> set[str]:
        out: set[str] = set()
        for item in items:
            got = match(item, names)
            if not got:
                near = closest(item, names)
                hint = f"; did you mean {', '.join(near)}?" if near else "; `pgolf rules` lists them"
                raise SelectorError(f"{spell[kind]} {item!r} names no rule{hint}")
            out |= got
        return out

    chosen = ids("select", sel) if sel else {n.id for n in names}
    chosen |= ids("extend-select", ext)
    chosen -= ids("ignore", ign)
    return chosen


def apply(report, selected: set[str] | None):
    """Keep only the findings of the selected rules and recompute each folder's verdict."""
    if selected is None:
        return report
    from auditor.policy import verdict

    for rec in report.records:
        kept = [f for f in rec.findings if f.rule.upper() in selected]
        if len(kept) != len(rec.findings):
            rec.findings = kept
            rec.verdict = verdict(rec)
    return report


def without_info(report):
    """A view of the report without live info findings (``github`` and ``markdown`` output hide them
    unless ``--show-info``: "what was tolerated" is noise in a CI log). Verdicts do not change: an
    info finding never decides one."""
    import copy

    from auditor.model import Severity

    view = copy.copy(report)
    view.records = []
    for rec in report.records:
        r = copy.copy(rec)
        r.findings = [f for f in rec.findings if f.severity is not Severity.INFO or f.waived is not None]
        view.records.append(r)
    return view
