"""Markdown for a PR comment or the job summary: why it fails, on the first screen.

Order: the verdict line; the reasons (each live error or, for "needs review", each warning, one line
with its rule, file:line and message); a table per record folder (claimed vs measured, per-seed
columns, both rulebooks' p-values); then the findings grouped by rule with the evidence as code and
the ruling's link. Long evidence folds into ``<details>``. Everything from a submission is escaped
(a PR comment is rendered HTML and can @-mention people), and the whole body stays under GitHub's
65,536-character comment limit, with a note saying what was left out.
"""
from __future__ import annotations

import re
from itertools import groupby
from typing import Any

from auditor.model import VERDICT_FAIL, VERDICT_PASS, VERDICT_REVIEW, Finding, RecordResult, Report, Severity
from auditor.report import common as C

GITHUB_COMMENT_LIMIT = 65_536
MAX_REASONS = 8  # one-line reasons under the verdict
FOLD_LINES = 8  # evidence longer than this folds into <details>
FOLD_CHARS = 800
MAX_EVIDENCE_LINES = 60
MAX_EVIDENCE_CHARS = 6_000
MAX_SEED_COLUMNS = 6
MAX_SUMMARY_ROWS = 100  # a batch's summary table; the rest (passes, by the sort) are counted

ICON = {VERDICT_FAIL: "❌", VERDICT_REVIEW: "⚠️", VERDICT_PASS: "✅"}
SEV_ICON = {Severity.ERROR: "🔴", Severity.WARNING: "🟡", Severity.INFO: "🔵"}

# Characters that can start markup mid-line; '(' only matters after ']' and '#', '+', '-' only at a
# line start, which inline text never is (it always follows a bullet or a label).
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def esc(text: Any) -> str:
    """Inline Markdown from untrusted text: one line, no markup, no HTML, no @-mentions."""
    return _esc(C.one_line(str(text), 2_000))


def _esc(s: str) -> str:
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = _MD_SPECIAL.sub(r"\\\1", s)
    return s.replace("@", "@\u2060")  # a word joiner after @ keeps GitHub from pinging anyone


_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")


def inline(text: Any) -> str:
    """A message: `quoted code` becomes a code span (rules quote the submission's lines that
    way), everything else is escaped like ``esc``. Code spans are literal in GFM: no HTML, no
    mentions, no links inside them."""
    s = C.one_line(str(text), 2_000)
    out, pos = [], 0
    for m in _SPAN.finditer(s):
        out.append(_esc(s[pos:m.start()]))
        out.append(code(m.group(1)))
        pos = m.end()
    out.append(_esc(s[pos:]))
    return "".join(out)


def code(text: Any) -> str:
    """An inline code span that survives backticks in the text."""
    s = C.one_line(str(text), 500)
    run = max((len(m) for m in re.findall(r"`+", s)), default=0)
    fence = "`" * (run + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or not s else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def cell_code(text: Any) -> str:
    """A code span inside a table cell: GFM splits cells on '|' even inside code spans."""
    return code(text).replace("|", "\\|")


def code_block(lines: list[str]) -> str:
    body = "\n".join(line.rstrip("\r\n") for line in lines)
    run = max((len(m) for m in re.findall(r"`{3,}", body)), default=0)
    fence = "`" * max(3, run + 1)
    return f"{fence}text\n{body}\n{fence}"


def link(url: str, label: str = "ruling") -> str:
    if not url:
        return ""
    if re.match(r"^https?://[^\s<>()]+$", url):
        return f"[{label}]({url})"
    return esc(url)


# --------------------------------------------------------------------------- pieces

def _reasons(report: Report) -> list[str]:
    """One line per live error (or warning, when nothing errs): the answer to "why?"."""
    worst = Severity.ERROR if any(r.verdict == VERDICT_FAIL for r in report.records) else Severity.WARNING
    picked: list[tuple[RecordResult, Finding]] = []
    for rec in C.records_by_verdict(report):
        for f in C.ordered_findings(rec):
            if f.waived is None and f.severity.rank >= worst.rank:
                picked.append((rec, f))
    multi = len(report.records) > 1
    lines = []
    for rec, f in picked[:MAX_REASONS]:
        where = f"{rec.path}/{C.location(f)}" if multi and f.file else (rec.path if multi else C.location(f))
        lines.append(f"- {SEV_ICON[f.severity]} **{esc(f.rule)}** {code(where)}: {inline(f.message)}")
    if len(picked) > MAX_REASONS:
        lines.append(f"- … and {len(picked) - MAX_REASONS} more {worst.value}s below")
    unreadable = sum(len(r.errors) for r in report.records) + len(report.errors)
    if unreadable and not picked:
        lines.append(f"- {C.plural(unreadable, 'file')} could not be read (listed below)")
    return lines


def _head(report: Report) -> list[str]:
    verdict = C.overall_verdict(report)
    if verdict is None:
        out = ["## ❌ pgolf: nothing readable", "", "No record folder could be audited."]
        out += [f"- {esc(p.line())}" for p in report.errors]
        return ["\n".join(out)]
    vc = C.verdict_counts(report)
    label = C.VERDICT_LABEL[verdict]
    if len(report.records) == 1:
        rec = report.records[0]
        title = f"## {ICON[verdict]} pgolf: **{label}** — {code(rec.path)}"
        sub = f"{C.record_phrase(rec)} · track {esc(rec.track or '?')}"
    else:
        title = f"## {ICON[verdict]} pgolf: **{label}** — {C.plural(len(report.records), 'record folder')}"
        sub = f"{vc[VERDICT_FAIL]} fail · {vc[VERDICT_REVIEW]} need review · {vc[VERDICT_PASS]} pass"
    blocks = [f"{title}\n\n{sub}"]
    reasons = _reasons(report)
    if reasons:
        lead = {VERDICT_FAIL: "**Why it fails**", VERDICT_REVIEW: "**Why it needs review**"}.get(verdict, "**Notes**")
        blocks.append(lead + "\n\n" + "\n".join(reasons))
    return blocks


def _summary_table(report: Report) -> list[str]:
    """For several folders: one row each, worst first (rows are separate chunks so a long batch truncates cleanly)."""
    head = "| | folder | findings | claimed val_bpb | measured val_bpb |\n|---|---|---|--:|--:|"
    rows = []
    ordered = C.records_by_verdict(report)
    for rec in ordered[:MAX_SUMMARY_ROWS]:
        rows.append(f"| {ICON.get(rec.verdict, '')} {C.VERDICT_LABEL.get(rec.verdict, rec.verdict)} | {cell_code(rec.path)} | "
                    f"{esc(C.record_phrase(rec))} | {C.fmt_bpb(rec.claims.val_bpb)} | {C.fmt_bpb(rec.measured.val_bpb)} |")
    rest = ordered[MAX_SUMMARY_ROWS:]
    if rest:
        vc = {v: sum(1 for r in rest if r.verdict == v) for v in (VERDICT_FAIL, VERDICT_REVIEW, VERDICT_PASS)}
        rows.append(f"| … | {len(rest)} more folders | {vc[VERDICT_FAIL]} fail, {vc[VERDICT_REVIEW]} need review, {vc[VERDICT_PASS]} pass | | |")
    return [head] + rows


def _table(rec: RecordResult) -> str:
    seeds = rec.measured.seeds
    show_seeds = 1 <= len(seeds) <= MAX_SEED_COLUMNS
    cols = ["", "claimed", "measured"] + ([f"seed {esc(C.fmt_seed(s.seed))}" for s in seeds] if show_seeds else [])
    lines = ["| " + " | ".join(cols) + " |", "|---|" + "--:|" * (len(cols) - 1)]
    for row in C.summary_rows(rec):
        if row.name == "seeds" and show_seeds:
            continue
        if row.bad:
            measured = f"**{esc(row.measured)}** ⛔" if row.measured != "—" else "⛔ see findings"
        else:
            measured = esc(row.measured)
        cells = [row.name, esc(row.claimed), measured] + ([esc(v) for v in row.per_seed] if show_seeds else [])
        lines.append("| " + " | ".join(cells) + " |")
    for label, value, ok in C.stats_lines(rec):
        mark = "" if ok is None else (" ✅" if ok else " ❌")
        lines.append("| " + " | ".join([esc(label), "", esc(value) + mark] + ([""] * len(seeds) if show_seeds else [])) + " |")
    out = "\n".join(lines)
    spark = C.sparkline([s.val_bpb for s in seeds])
    if spark:
        out += f"\n\nPer-seed val_bpb {code(spark)} ({esc(', '.join(C.fmt_bpb(s.val_bpb) for s in seeds))})"
    return out


def _evidence(f: Finding) -> str:
    ev = [line.replace("\t", "    ") for line in f.evidence]
    if not ev:
        return ""
    shown, size = [], 0
    for line in ev[:MAX_EVIDENCE_LINES]:
        if size + len(line) > MAX_EVIDENCE_CHARS:
            break
        if len(line) > 1_000:
            line = line[:999] + "…"
        shown.append(line)
        size += len(line) + 1
    if len(shown) < len(ev):
        shown.append(f"… {len(ev) - len(shown):,} more lines (pgolf audit --format json has them all)")
    block = code_block(shown)
    if len(ev) > FOLD_LINES or size > FOLD_CHARS:
        return f"<details><summary>evidence: {len(ev):,} lines</summary>\n\n{block}\n\n</details>"
    return block


def _finding(f: Finding, group: C.RuleInfo) -> str:
    waived = f.waived is not None
    sev = f"~~{f.severity.value}~~ waived" if waived else f"**{f.severity.value}**"
    head = f"- {SEV_ICON[f.severity] if not waived else '⚪'} {sev} {code(C.location(f))}: {inline(f.message)}"
    extra = []
    if waived:
        extra.append(f"waived: {esc(f.waived)}")
    if f.path:
        extra.append("path: " + " → ".join(code(p) for p in f.path))
    if f.reachability:
        extra.append(f"reachability: {esc(f.reachability)}")
    if f.note:
        extra.append(f"note: {inline(f.note)}")
    if f.fix and f.fix != group.fix:
        extra.append(f"fix: {inline(f.fix)}")
    if f.ruling and f.ruling != group.ruling:
        extra.append(link(f.ruling))
    parts = [head]
    if extra:
        parts.append("  " + " · ".join(extra))
    ev = _evidence(f)
    if ev:
        parts.append("\n".join("  " + line if line else "" for line in ev.split("\n")))
    return "\n".join(parts)


def _rule_groups(rec: RecordResult, report: Report | None = None) -> list[str]:
    """Chunks: a header per rule, then one chunk per finding."""
    ordered = C.ordered_findings(rec)
    # Rules in the order of their worst live finding; waived-only rules last.
    first_pos: dict[str, int] = {}
    for i, f in enumerate(ordered):
        first_pos.setdefault(f.rule, i)
    chunks = []
    for rule, fs in groupby(sorted(ordered, key=lambda f: first_pos[f.rule]), key=lambda f: f.rule):
        fs = list(fs)
        info = C.rule_info(fs[0], report)
        live = [f for f in fs if f.waived is None]
        worst = max((f.severity for f in live), key=lambda s: s.rank) if live else None
        icon = SEV_ICON[worst] if worst else "⚪"
        title = f" — {esc(info.title)}" if info.title else ""
        codepart = f" ({esc(info.code or fs[0].code)})" if (info.code or fs[0].code) else ""
        head = f"#### {icon} {esc(rule)}{codepart}{title} · {C.plural(len(fs), 'finding')}"
        meta = []
        ruling = info.ruling or fs[0].ruling
        fix = info.fix or fs[0].fix
        if fix and worst is not None and worst is not Severity.INFO:
            meta.append(f"**Fix:** {inline(fix)}")
        if ruling:
            meta.append(f"**Why:** {link(ruling)}")
        chunks.append(head + ("\n\n" + " · ".join(meta) if meta else ""))
        group = C.RuleInfo(rule, info.code, info.title, ruling, fix, info.family, info.severity)
        for f in fs:
            chunks.append(_finding(f, group))
    return chunks


def _record(rec: RecordResult, multi: bool, report: Report | None = None) -> list[str]:
    head = []
    if multi:
        head.append(f"### {ICON.get(rec.verdict, '')} {C.VERDICT_LABEL.get(rec.verdict, rec.verdict)} · {code(rec.path)}\n\n"
                    f"{esc(C.record_phrase(rec))} · track {esc(rec.track or '?')}")
    chunks = head + [_table(rec)]
    if rec.findings:
        chunks.append("### Findings" if not multi else "**Findings**")
        chunks += _rule_groups(rec, report)
    if rec.errors:
        chunks.append("**Could not read**\n\n" + "\n".join(f"- {code(p.file or rec.path)}: {esc(p.message)}" for p in rec.errors))
    return chunks


# --------------------------------------------------------------------------- assembly

def _kind(chunk: str) -> str:
    if chunk.startswith("- "):
        return "finding"
    if chunk.startswith("### ") and not chunk.startswith("### Findings"):
        return "folder"
    if chunk.startswith(("#### ", "**Findings**", "### Findings")):
        return "heading"
    return "section"


def render(report: Report, *, max_chars: int = GITHUB_COMMENT_LIMIT, **_: Any) -> str:
    multi = len(report.records) > 1
    chunks: list[tuple[str, str]] = [("head", c) for c in _head(report)]  # (kind, text)
    if multi:
        chunks += [("row", c) for c in _summary_table(report)]
    for rec in C.records_by_verdict(report):
        chunks += [(_kind(c), c) for c in _record(rec, multi, report)]
    if report.errors and report.records:
        chunks.append(("section", "**Not audited**\n\n" + "\n".join(f"- {esc(p.line())}" for p in report.errors)))
    tool = report.tool or {}
    footer = f"<sub>pgolf {esc(tool.get('version', ''))} · static audit; nothing was executed</sub>"
    note_room = 400 + len(footer)
    kinds = [kind for kind, _ in chunks]
    out: list[str] = []
    size = 0
    omitted: list[tuple[str, str]] = []
    for i, (kind, text) in enumerate(chunks):
        sep = "\n" if kind == "row" and out and chunks[i - 1][0] == "row" else "\n\n"
        cost = len(sep) + len(text)
        if omitted or size + cost + note_room > max_chars:
            omitted.append((kind, text))
            continue
        out.append(sep + text if out else text)
        size += cost
    while out and omitted and kinds[len(out) - 1] in ("heading", "folder"):  # no heading left dangling above the note
        omitted.insert(0, chunks[len(out) - 1])
        out.pop()
    body = "".join(out)
    if omitted:
        n_findings = sum(1 for kind, _ in omitted if kind == "finding")
        n_rows = sum(1 for kind, _ in omitted if kind == "row")
        n_folders = sum(1 for kind, _ in omitted if kind == "folder")
        what = ", ".join(x for x in (C.plural(n_findings, "finding") if n_findings else "",
                                     f"the details of {C.plural(n_folders, 'folder')}" if n_folders else "",
                                     C.plural(n_rows, "summary row") if n_rows else "") if x) or "some sections"
        body += (f"\n\n> [!NOTE]\n> Truncated to stay under GitHub's {max_chars:,}-character comment limit: {what} left out. "
                 "`pgolf audit --format json` (the workflow's report artifact) has everything.")
    body += "\n\n" + footer + "\n"
    body = C.printable(body)
    if len(body) > max_chars:  # the head alone is over a (tiny) limit: cut at a line, still say so
        body = body[: max_chars - 80].rsplit("\n", 1)[0] + "\n\n> [!NOTE]\n> Truncated at the comment limit.\n"
    return body
