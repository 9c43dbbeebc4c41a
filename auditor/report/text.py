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
    if title.cell_len + 6 <= console.width:
        console.print(Rule(title, align="left", style="dim"))
    else:  # rich would cut a long path short inside the rule; print it whole, wrapped, under one
        console.print(Rule(style="dim"))
        title.overflow = "fold"
        console.print(title)
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


TRACK_SHORT = {"track_10min_16mb": "10min", "track_non_record_16mb": "non-record", "non_record": "non-record"}
BADGE_SHORT = {VERDICT_FAIL: "FAIL", VERDICT_REVIEW: "REVIEW", VERDICT_PASS: "PASS"}


def _short_badge(verdict: str) -> Text:
    return Text(f" {BADGE_SHORT.get(verdict, verdict.upper())} ", style=VERDICT_STYLE.get(verdict, "bold"))


def _track(rec: RecordResult) -> str:
    t = rec.track or "?"
    return TRACK_SHORT.get(t, t[6:] if t.startswith("track_") else t)


def _folder_name(rec: RecordResult) -> str:
    return rec.path.rstrip("/").rsplit("/", 1)[-1] or rec.path


def counts_width(report: Report) -> int:
    return max([len("e/w/i")] + [len("{error}/{warning}/{info}".format(**C.counts(r))) for r in report.records])


def _wrap_name(name: str, width: int) -> str:
    """Break a long folder name after "_" or "-" so each line fits (rich would break mid-word);
    a piece longer than the column is left for rich to fold."""
    if len(name) <= width:
        return name
    import re

    lines, cur = [], ""
    for piece in re.findall(r"[^_\-]*[_\-]|[^_\-]+$", name):
        if cur and len(cur) + len(piece) > width:
            lines.append(cur)
            cur = ""
        cur += piece
    lines.append(cur)
    return "\n".join(lines)


def _summary_layout(report: Report, width: int) -> dict[str, Any]:
    """Which columns fit at this width. The folder name and the top finding's rule id are never cut:
    the name wraps, the rule id keeps its width; numbers go first, then the separate counts."""
    tops = {id(rec): next((f.rule for f in C.ordered_findings(rec) if f.waived is None and f.severity is not Severity.INFO), "")
            for rec in report.records}
    top_w = max([len(v) for v in tops.values()] + [len("top finding")])
    track_w = max([len(_track(r)) for r in report.records] + [len("track")])
    counts_w = {"separate": 3 + 4 + 4, "combined": counts_width(report)}
    name_w = max([len(_folder_name(r)) for r in report.records] + [len("folder")])
    want_name = min(name_w, 40)  # below this a name wraps onto too many lines; then numbers give way

    def fixed(numbers: int, counts: str, track: bool = True) -> tuple[int, int]:
        cols = [8, top_w] + ([track_w] if track else []) + ([7, 8] if numbers == 2 else [8] if numbers == 1 else [])
        n = len(cols) + (3 if counts == "separate" else 1) + 1  # + the folder column
        return sum(cols) + counts_w[counts] + 3 * (n - 1), n  # a space each side of a column divider

    track = True
    for numbers, counts in ((2, "separate"), (2, "combined"), (1, "combined"), (0, "combined")):
        used, _ = fixed(numbers, counts)
        if width - used >= want_name:
            break
    used, _ = fixed(numbers, counts)
    if width - used < 16:  # a terminal under 80 columns: the track gives way before the folder name
        track = False
        used, _ = fixed(numbers, counts, track=False)
    return {"tops": tops, "numbers": numbers, "counts": counts, "folder_w": max(12, min(name_w, width - used)),
            "track_w": track_w, "top_w": top_w, "track": track}


def _batch_summary(console: Console, report: Report) -> None:
    lay = _summary_layout(report, console.width)
    t = Table(title="Summary (worst first)", title_justify="left", title_style="bold", box=box.SIMPLE_HEAD, pad_edge=False,
              show_edge=False, header_style="bold")
    t.add_column("verdict", no_wrap=True, width=8)
    if lay["track"]:
        t.add_column("track", no_wrap=True, width=lay["track_w"])
    t.add_column("folder", overflow="fold", width=lay["folder_w"])
    if lay["counts"] == "separate":
        t.add_column("err", justify="right", no_wrap=True, min_width=3)
        t.add_column("warn", justify="right", no_wrap=True, min_width=4)
        t.add_column("info", justify="right", no_wrap=True, min_width=4)
    else:
        t.add_column("e/w/i", justify="right", no_wrap=True, width=counts_width(report))
    if lay["numbers"] == 2:
        t.add_column("claimed", justify="right", no_wrap=True, min_width=7)
    if lay["numbers"] >= 1:
        t.add_column("measured", justify="right", no_wrap=True, min_width=8)
    t.add_column("top finding", no_wrap=True, width=lay["top_w"])
    for rec in C.records_by_verdict(report):
        c = C.counts(rec)
        cells: list[Any] = [_short_badge(rec.verdict)] + ([Text(_track(rec), style="dim")] if lay["track"] else []) \
            + [Text(_wrap_name(_folder_name(rec), lay["folder_w"]))]
        if lay["counts"] == "separate":
            cells += [str(c["error"] or ""), str(c["warning"] or ""), str(c["info"] or "")]
        else:
            cells.append(f"{c['error']}/{c['warning']}/{c['info']}")
        if lay["numbers"] == 2:
            cells.append(C.fmt_bpb(rec.claims.val_bpb))
        if lay["numbers"] >= 1:
            cells.append(C.fmt_bpb(rec.measured.val_bpb))
        cells.append(Text(lay["tops"][id(rec)]))
        t.add_row(*cells)
    console.print(t)


def _totals(report: Report, elapsed: float | None = None) -> Text:
    """The closing line: "60 folders in 13.1 s: 13 fail, 37 need review, 10 pass"."""
    vc = C.verdict_counts(report)
    out = Text()
    n = len(report.records)
    head = C.plural(n, "folder") + (f" in {elapsed:.1f} s" if elapsed is not None else "")
    out.append(f"{head}: ", style="bold")
    out.append(f"{vc[VERDICT_FAIL]} fail", style="bold red" if vc[VERDICT_FAIL] else "")
    out.append(", ")
    out.append(f"{vc[VERDICT_REVIEW]} {'needs' if vc[VERDICT_REVIEW] == 1 else 'need'} review",
               style="bold yellow" if vc[VERDICT_REVIEW] else "")
    out.append(", ")
    out.append(f"{vc[VERDICT_PASS]} pass", style="bold green" if vc[VERDICT_PASS] else "")
    return out


def render(report: Report, *, color: bool | None = None, width: int | None = None, elapsed: float | None = None,
           quiet: bool = False, **_: Any) -> str:
    """``quiet``: the summary table, the unreadable items and the closing line only (``--quiet``)."""
    console = _console(color, width)
    if not quiet:
        for rec in report.records:
            _record(console, rec)
    if len(report.records) > 1 or (quiet and report.records):
        _batch_summary(console, report)
    for p in report.errors:
        line = Text()
        line.append("unreadable ", style="bold magenta")
        line.append(C.one_line(p.line(), 400))
        console.print(line)
    if report.records:
        console.print(_totals(report, elapsed))
    else:
        console.print(Text("nothing readable: no record folder could be audited", style="bold red"))
    out = console.file.getvalue()
    if not console.is_terminal:  # rich pads table cells to the width; plain text needs no trailing blanks
        out = "\n".join(line.rstrip() for line in out.split("\n"))
    return C.printable(out)
