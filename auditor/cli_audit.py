"""The body of ``pgolf audit`` (the command line parses options in ``auditor.cli`` and calls
``run_audit``): discovery, the isolated runner, progress on a terminal, rendering, writing, exit code.
"""
from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from auditor.context import AuditOptions
from auditor.discover import changed_folders, discover
from auditor.limits import HUMAN_FORMATS, clean_line
from auditor.runner import AuditRun, run_isolated, scrub_sys_path

ENV_TIMINGS_FILE = "PGOLF_TIMINGS_FILE"  # write per-file timings of the run to this JSON file


def run_audit(*, paths, fmt, output, fail_on, changed, against, rulebook, only_rules, jobs, waivers, quiet,
              folder_timeout: float | None = None, selected: set[str] | None = None, statistics: bool = False,
              show_info: bool = False, probe: str | None = None) -> int:
    options = AuditOptions(against=against, rulebook=rulebook, only_rules=set(r.upper() for r in only_rules) or None,
                           waivers_file=str(waivers) if waivers else None)
    scrub_sys_path([])
    try:
        if changed:
            disc, _ = changed_folders(paths, changed)
        else:
            disc = discover(paths)
    except Exception as exc:  # discovery must not end in a traceback either
        _stderr_line(f"pgolf: discovery failed: {type(exc).__name__}: {exc}")
        return 2
    want_timings = bool(os.environ.get(ENV_TIMINGS_FILE))
    with progress_bar(len(disc.folders), quiet) as progress:
        run = run_isolated(disc, options, jobs=jobs, timeout_s=folder_timeout, human=fmt in HUMAN_FORMATS,
                           progress=progress, timings=want_timings)
    report = run.report
    if probe:  # the dynamic probes after the static rules (auditor.reproduce.audit_probes)
        from auditor.reproduce.audit_probes import add_probes

        add_probes(report, all_folders=probe == "all")
    from auditor import selectors

    # --select/--ignore: applied to findings by rule id (a rule may report under a sibling id)
    selectors.apply(report, selected)
    if want_timings:
        _write_timings(Path(os.environ[ENV_TIMINGS_FILE]), run)
    from auditor.report import render

    try:
        # a file written from a terminal must not carry colour codes
        if changed and not report.records and not report.errors and fmt == "text":
            text = f"no record folder changed since {changed}; nothing to audit\n"
        else:
            view = dict(elapsed=run.seconds, quiet=quiet)
            shown = report if show_info or fmt not in ("github", "markdown") else selectors.without_info(report)
            if statistics:
                from auditor.report import statistics as stats_view

                text = stats_view.render(report, fmt, **view)
            else:
                text = render(shown, fmt, color=False, **view) if (output and fmt == "text") else render(shown, fmt, **view)
    except Exception as exc:  # a renderer bug: say so in one line; the JSON report is the fallback
        _stderr_line(f"pgolf: the {fmt} renderer failed ({type(exc).__name__}: {exc}); writing JSON instead")
        text = render(report, "json")
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates from odd file names
    if output:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            _stderr_line(f"pgolf: cannot write {output}: {exc.strerror or exc}")
            return 2
    else:
        _write_stdout(text)
    if output or fmt != "text":  # the text report on stdout already shows them; once is enough
        for p in report.errors:
            _stderr_line(f"pgolf: {p.line()}")
    for path in run.failed:
        _stderr_line(f"pgolf: {path}: not fully audited (see its errors in the report)")
    if not report.records:
        # a branch that touches no record folder has nothing to audit: that is not an error
        return 0 if changed and not report.errors else 2
    return run.exit_code(fail_on)


# --- progress -------------------------------------------------------------------------------------

@contextmanager
def progress_bar(total: int, quiet: bool):
    """A rich progress bar on stderr when many folders are audited and stderr is a terminal."""
    if quiet or total < 2 or not _isatty(sys.stderr):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("auditing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("{task.description}"), console=Console(stderr=True), transient=True)
    task = bar.add_task("", total=total)

    def update(done: int, n: int, label: str) -> None:
        bar.update(task, completed=done, description=clean_line(label.rsplit("/", 1)[-1])[:60])

    with bar:
        yield update


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False



# --- writing ----------------------------------------------------------------------------------------

def _stderr_line(line: str) -> None:
    try:
        sys.stderr.write(clean_line(line) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _write_stdout(text: str) -> None:
    """Write the report as UTF-8 whatever the locale; a closed pipe (``| head``) is not an error."""
    try:
        buf = getattr(sys.stdout, "buffer", None)
        if buf is not None:
            sys.stdout.flush()
            buf.write(text.encode("utf-8", "backslashreplace"))
            buf.flush()
        else:
            sys.stdout.write(text)
            sys.stdout.flush()
    except BrokenPipeError:
        try:  # keep the interpreter from complaining when it flushes stdout at exit
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
    except (OSError, ValueError):
        pass


def timings_json(run: AuditRun) -> dict[str, Any]:
    return {
        "folders": len(run.report.records),
        "failed": list(run.failed),
        "seconds": round(run.seconds, 3),
        "jobs": run.jobs,
        "timings": [asdict(t) for t in run.timings],
    }


def _write_timings(path: Path, run: AuditRun) -> None:
    try:
        path.write_text(json.dumps(timings_json(run), ensure_ascii=True), encoding="utf-8")
    except OSError as exc:
        _stderr_line(f"pgolf: cannot write {path}: {exc.strerror or exc}")
