"""GitHub Actions workflow commands: one annotation per finding (tooling.md §3.2).

``::error file=PATH,line=N,title=TITLE::MESSAGE``; warnings and info become ``::warning`` and
``::notice``. Escaping follows the runner toolkit (actions/toolkit ``core/src/command.ts``): data
escapes ``%``, CR and LF; properties also ``:`` and ``,``. GitHub shows only 10 annotations of each
kind per step, so the worst come first; the step summary (``--format markdown``) carries the rest.
"""
from __future__ import annotations

from typing import Any

from auditor.model import Finding, RecordResult, Report, Severity
from auditor.report import common as C

COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}
SHOWN_PER_KIND = 10
MAX_EVIDENCE = 5
MAX_MESSAGE_CHARS = 4000


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(kind: str, message: str, **props: Any) -> str:
    """One workflow command line; properties with a None value are left out."""
    items = [f"{k}={escape_property(str(v))}" for k, v in props.items() if v is not None and v != ""]
    head = f"::{kind}" + (" " + ",".join(items) if items else "")
    return f"{head}::{escape_data(message)}"


def _message(rec: RecordResult, f: Finding, info: C.RuleInfo) -> str:
    lines = [f.message.strip() or info.title or f.rule]
    if not f.file:
        lines[0] = f"{rec.path.rstrip('/').rsplit('/', 1)[-1]}: {lines[0]}"  # a folder-level finding: say which folder
    elif not C.inside_folder(f.file):
        lines[0] = f"{C.location(f)}: {lines[0]}"  # outside the folder: the annotation's file cannot say it
    for ev in f.evidence[:MAX_EVIDENCE]:
        lines.append(f"  | {ev.rstrip()}")
    if len(f.evidence) > MAX_EVIDENCE:
        lines.append(f"  | … {len(f.evidence) - MAX_EVIDENCE} more lines")
    if f.path:
        lines.append("path: " + " → ".join(f.path))
    if f.reachability:
        lines.append(f"reachability: {f.reachability}")
    fix = f.fix or info.fix
    if fix:
        lines.append(f"fix: {fix}")
    ruling = f.ruling or info.ruling
    if ruling:
        lines.append(f"ruling: {ruling}")
    if f.waived is not None:
        lines.append(f"waived: {f.waived}")
    text = "\n".join(lines)
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


def annotation(report: Report, rec: RecordResult, f: Finding) -> str:
    info = C.rule_info(f)
    file, line = C.anchor_file(rec, f)
    path = C.repo_path(report, rec, file)
    code = f" ({f.code})" if f.code else ""
    if f.waived is not None:
        return command("notice", _message(rec, f, info), file=path or None, line=line, title=f"pgolf {f.rule}{code} [waived]")
    return command(COMMAND[f.severity], _message(rec, f, info), file=path or None, line=line, title=f"pgolf {f.rule}{code}")


def render(report: Report, **_: Any) -> str:
    live: list[tuple[int, str]] = []
    waived: list[str] = []
    for rec in C.records_by_verdict(report):
        for f in C.ordered_findings(rec):
            if f.waived is not None:
                waived.append(annotation(report, rec, f))
            else:
                live.append((-f.severity.rank, annotation(report, rec, f)))
        for p in rec.errors:
            live.append((-Severity.WARNING.rank, command("warning", f"unreadable: {p.message}", file=C.repo_path(report, rec, p.file) if C.inside_folder(p.file) else None,
                                                        title=f"pgolf: cannot read {C.one_line(p.file, 200)}")))
    for p in report.errors:
        live.append((-Severity.WARNING.rank, command("warning", C.one_line(p.line(), 2000), title="pgolf: cannot audit")))
    live.sort(key=lambda t: t[0])  # stable: worst severity first, folder order kept within one
    out = [text for _, text in live] + waived
    vc = C.verdict_counts(report)
    verdict = C.overall_verdict(report)
    label = C.VERDICT_LABEL.get(verdict, verdict) if verdict else "nothing readable"
    review = f"{vc['needs-review']} {'needs' if vc['needs-review'] == 1 else 'need'} review"
    total = (f"pgolf: {C.plural(len(report.records), 'record folder')}: {vc['fail']} fail, {review}, "
             f"{vc['pass']} pass; verdict: {label}")
    kinds = {k: sum(1 for t in out if t.startswith(f"::{k}")) for k in ("error", "warning", "notice")}
    if any(n > SHOWN_PER_KIND for n in kinds.values()):
        total += f" (GitHub shows {SHOWN_PER_KIND} annotations of each kind per step; the step summary lists all)"
    out.append(total)
    return C.printable("\n".join(out) + "\n")

