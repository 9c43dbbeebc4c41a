"""`pgolf audit` behind the CLI: discovery, progress, parallel workers, output, exit code."""
from __future__ import annotations

import sys
from pathlib import Path

from auditor.context import AuditOptions
from auditor.discover import changed_folders, discover
from auditor.model import Severity
from auditor.pipeline import build_report
from auditor.report import render


def run_audit(*, paths, fmt, output, fail_on, changed, against, rulebook, only_rules, jobs, waivers, quiet) -> int:
    options = AuditOptions(against=against, rulebook=rulebook, only_rules=set(r.upper() for r in only_rules) or None,
                           waivers_file=str(waivers) if waivers else None)
    if changed:
        disc, _ = changed_folders(paths, changed)
    else:
        disc = discover(paths)
    report = build_report(disc, options)
    text = render(report, fmt)
    if output:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            print(f"pgolf: cannot write {output}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    else:
        sys.stdout.write(text)
    for p in report.errors:
        print(f"pgolf: {p.line()}", file=sys.stderr)
    if not report.records:
        return 2
    return report.exit_code(None if fail_on == "never" else Severity.parse(fail_on))
