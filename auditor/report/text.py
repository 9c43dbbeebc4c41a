"""Terminal report (rich): per folder a summary table, then its findings with the evidence.

Rendered into a string (``Console(file=StringIO())``) so the CLI decides where it goes. Colour is
on when stdout is a terminal, or with FORCE_COLOR; never with NO_COLOR. Text from submissions is
always wrapped in ``rich.text.Text``, never parsed as markup: a log line holding ``[red]`` is data.
"""
from __future__ import annotations

import io
import os
import shutil
import sys
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.padding import Padding
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from auditor.model import VERDICT_FAIL, VERDICT_PASS, VERDICT_REVIEW, Finding, RecordResult, Report, Severity
from auditor.report import common as C

MAX_EVIDENCE_LINES = 12  # per finding; the JSON report has them all
MAX_LINE_CHARS = 240
MAX_SEED_COLUMNS = 6

VERDICT_STYLE = {VERDICT_FAIL: "bold white on red", VERDICT_REVIEW: "bold black on yellow", VERDICT_PASS: "bold black on green"}
SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "bold yellow", Severity.INFO: "cyan"}
SEVERITY_MARK = {Severity.ERROR: "✖", Severity.WARNING: "▲", Severity.INFO: "•"}


def _console(color: bool | None, width: int | None) -> Console:
    tty = sys.stdout.isatty()
    if color is None:  # the conventions rich itself follows: NO_COLOR wins, FORCE_COLOR forces
        color = (tty or bool(os.environ.get("FORCE_COLOR"))) and not os.environ.get("NO_COLOR")
    if width is None:
        cols = os.environ.get("COLUMNS", "")
        width = int(cols) if cols.isdigit() else (shutil.get_terminal_size((110, 24)).columns if tty else 132)
    return Console(file=io.StringIO(), force_terminal=color, no_color=not color, color_system="standard" if color else None,
                   width=max(60, width), highlight=False, emoji=False, soft_wrap=False, legacy_windows=False)


def _verdict_badge(verdict: str) -> Text:
    return Text(f" {C.VERDICT_LABEL.get(verdict, verdict).upper()} ", style=VERDICT_STYLE.get(verdict, "bold"))


def _known(row: C.Row) -> bool:
    return any(v not in ("—", "") for v in [row.claimed, row.measured, *row.per_seed])


def _summary_table(rec: RecordResult, width: int) -> Table:
    rows = [r for r in C.summary_rows(rec) if r.name == "val_bpb" or _known(r)]
    seeds = rec.measured.seeds
    cols = [max([len(r.name) for r in rows]), max([len("claimed")] + [len(r.claimed) for r in rows]),
            max([len("measured")] + [len(r.measured) for r in rows])]
    seed_cols = [max([len(f"seed {C.fmt_seed(s.seed)}")] + [len(r.per_seed[i]) for r in rows if i < len(r.per_seed) and r.name != "seeds"])
                 for i, s in enumerate(seeds)]
    # Per-seed columns only when they fit: a squeezed table would cut numbers short.
    show_seeds = 2 <= len(seeds) <= MAX_SEED_COLUMNS and sum(cols) + sum(seed_cols) + 3 * (len(cols) + len(seeds)) + 2 <= width
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, padding=(0, 1), header_style="bold")
    t.add_column("", style="bold", no_wrap=True, min_width=cols[0])
    t.add_column("claimed", justify="right", no_wrap=True, min_width=cols[1])
    t.add_column("measured", justify="right", no_wrap=True, min_width=cols[2])
    if show_seeds:
        for s, w in zip(seeds, seed_cols):
            t.add_column(f"seed {C.fmt_seed(s.seed)}", justify="right", no_wrap=True, style="dim", min_width=w)
    for row in rows:
        if row.name == "seeds" and show_seeds:
            continue  # the column headers already name them
        style = "bold red" if row.bad else ""
        cells = [Text(row.name), Text(row.claimed), Text(row.measured, style=style)]
        if show_seeds:
            cells += [Text(v) for v in row.per_seed]
        t.add_row(*cells)
    return t


def _stats(rec: RecordResult) -> Text | None:
    """The significance tests on their own lines: long labels would squeeze the table's numbers."""
    # Without --against every folder would repeat "not computed"; the terminal view stays quiet.
    lines = [line for line in C.stats_lines(rec) if line[1] != C.NOT_COMPUTED]
    if not lines:
        return None
    out = Text()
    for i, (label, value, ok) in enumerate(lines):
        out.append("  " + label + ": ", style="dim")
        out.append(value + ("" if ok is None else (" ✓" if ok else " ✗")), style="" if ok is None else ("green" if ok else "bold red"))
        if i < len(lines) - 1:
            out.append("\n")
    return out


def _finding(f: Finding) -> Group:
    waived = f.waived is not None
    sev_style = "dim strike" if waived else SEVERITY_STYLE[f.severity]
    info = C.rule_info(f)
    head = Text("  ")
    head.append(f"{SEVERITY_MARK[f.severity]} {f.severity.value:<7}", style=sev_style)
    head.append(" ")
    head.append(f.rule, style="dim bold" if waived else "bold")
    if f.code:
        head.append(f" {f.code}", style="dim")
    head.append("  ")
    head.append(C.location(f), style="magenta" if not waived else "dim")
    if waived:
        head.append("  waived", style="bold green")
    parts: list[Any] = [head]
    msg = Text(f.message, style="dim" if waived else "")
    parts.append(Padding(msg, (0, 0, 0, 4), expand=False))
    if waived:
        parts.append(Padding(Text(f"waived: {f.waived}", style="green"), (0, 0, 0, 4), expand=False))
    ev = list(f.evidence)
    if ev:
        shown = ev[:MAX_EVIDENCE_LINES]
        block = Text()
        for i, line in enumerate(shown):
            line = line.replace("\t", "    ").rstrip("\r\n")
            if len(line) > MAX_LINE_CHARS:
                line = line[: MAX_LINE_CHARS - 1] + "…"
            block.append("│ ", style="dim")
            block.append(line, style="dim" if waived else "bold yellow")
            if i < len(shown) - 1:
                block.append("\n")
        if len(ev) > len(shown):
            block.append(f"\n│ … {len(ev) - len(shown):,} more lines (pgolf audit --format json has them all)", style="dim italic")
        block.no_wrap = True
        block.overflow = "ellipsis"
        parts.append(Padding(block, (0, 0, 0, 4), expand=False))
    details = []
    if f.path:
        details.append(("path", " → ".join(f.path)))
    if f.reachability:
        details.append(("reachability", f.reachability))
    if f.note:
        details.append(("note", f.note))
    if f.severity is not Severity.INFO or waived:  # an info finding says what was tolerated; nothing to fix
        fix = f.fix or info.fix
        if fix:
            details.append(("fix", fix))
        ruling = f.ruling or info.ruling
        if ruling:
            details.append(("why", ruling))
    for key, value in details:
        line = Text()
        line.append(f"{key}: ", style="dim")
        line.append(value, style="blue underline" if key == "why" else "")
        parts.append(Padding(line, (0, 0, 0, 4), expand=False))
    return Group(*parts)


def _record(console: Console, rec: RecordResult) -> None:
    title = Text()
    title.append_text(_verdict_badge(rec.verdict))
    title.append(" ")
    title.append(rec.path or ".", style="bold")
    console.print(Rule(title, align="left", style="dim"))
    meta = Text("  ")
    meta.append(f"track {rec.track or '?'}", style="dim")
    meta.append(f" · {C.record_phrase(rec)}", style="dim")
    console.print(meta)
    console.print(Padding(_summary_table(rec, console.width - 2), (0, 0, 0, 2), expand=False))
    stats = _stats(rec)
    if stats is not None:
        console.print(stats)
    spark = C.sparkline([s.val_bpb for s in rec.measured.seeds])
    if spark:
        console.print(Text(f"  per-seed val_bpb {spark}", style="dim"))
    for f in C.ordered_findings(rec):
        console.print(_finding(f))
    for p in rec.errors:
        line = Text("  ")
        line.append("unreadable ", style="bold magenta")
        line.append(C.one_line(p.line(), 400))
        console.print(line)
    console.print()


def _batch_summary(console: Console, report: Report) -> None:
    tops = {rec.path: next((f.rule for f in C.ordered_findings(rec) if f.waived is None and f.severity is not Severity.INFO), "")
            for rec in report.records}
    top_w = min(28, max(len(v) for v in tops.values()) if tops else 0)
    fixed = 14 + 3 + 4 + 4 + 8 + 8 + min(top_w, 12) + 2 * 8  # every column but the folder, with padding; "top finding" may shrink
    t = Table(title="Summary (worst first)", title_justify="left", title_style="bold", box=box.SIMPLE_HEAD, pad_edge=False,
              header_style="bold")
    t.add_column("verdict", no_wrap=True, min_width=14)
    names = [rec.path.rstrip("/").rsplit("/", 1)[-1] or rec.path for rec in report.records]
    # the folder name is what a reviewer scans for: keep it whole (up to 56 chars), squeeze "top finding" instead
    name_w = min(max([len(n) for n in names] + [6]), 56, max(16, console.width - fixed - 2))
    t.add_column("folder", no_wrap=True, overflow="ellipsis", min_width=name_w, max_width=max(16, console.width - fixed - 2))
    t.add_column("err", justify="right", no_wrap=True, min_width=3)
    t.add_column("warn", justify="right", no_wrap=True, min_width=4)
    t.add_column("info", justify="right", no_wrap=True, min_width=4)
    t.add_column("claimed", justify="right", no_wrap=True, min_width=7)
    t.add_column("measured", justify="right", no_wrap=True, min_width=8)
    t.add_column("top finding", overflow="ellipsis", no_wrap=True, min_width=min(top_w, 12))
    for rec in C.records_by_verdict(report):
        c = C.counts(rec)
        t.add_row(_verdict_badge(rec.verdict), Text(rec.path.rstrip("/").rsplit("/", 1)[-1] or rec.path), str(c["error"] or ""),
                  str(c["warning"] or ""), str(c["info"] or ""), C.fmt_bpb(rec.claims.val_bpb), C.fmt_bpb(rec.measured.val_bpb),
                  Text(tops[rec.path]))
    console.print(t)


def _totals(report: Report) -> Text:
    vc = C.verdict_counts(report)
    out = Text()
    out.append(f"{C.plural(len(report.records), 'folder')}: ", style="bold")
    out.append(f"{vc[VERDICT_FAIL]} fail", style="bold red" if vc[VERDICT_FAIL] else "")
    out.append(", ")
    out.append(f"{vc[VERDICT_REVIEW]} needs review", style="bold yellow" if vc[VERDICT_REVIEW] else "")
    out.append(", ")
    out.append(f"{vc[VERDICT_PASS]} pass", style="bold green" if vc[VERDICT_PASS] else "")
    return out


def render(report: Report, *, color: bool | None = None, width: int | None = None, **_: Any) -> str:
    console = _console(color, width)
    for rec in report.records:
        _record(console, rec)
    if len(report.records) > 1:
        _batch_summary(console, report)
    for p in report.errors:
        line = Text()
        line.append("unreadable ", style="bold magenta")
        line.append(C.one_line(p.line(), 400))
        console.print(line)
    if report.records:
        console.print(_totals(report))
    else:
        console.print(Text("nothing readable: no record folder could be audited", style="bold red"))
    out = console.file.getvalue()
    if not console.is_terminal:  # rich pads table cells to the width; plain text needs no trailing blanks
        out = "\n".join(line.rstrip() for line in out.split("\n"))
    return C.printable(out)
