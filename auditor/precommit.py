"""The pre-commit hook's entry point: changed file names → their record folders → one audit.

pre-commit passes the staged files that match ``files: ^records/``; a rule needs the whole record
folder, so each file is mapped to the folder that holds it (the child of the nearest container
such as ``track_10min_16mb/`` or ``records/``), and every such folder is audited once.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from auditor.discover import _is_container  # the one definition of "records/, track_*/, ..."
from auditor.policy import DEFAULT_FAIL_ON, FAIL_ON


def record_folder_of(path: Path) -> Path | None:
    """The record folder holding ``path``: the directory just below the nearest container."""
    d = path.parent if not path.is_dir() else path
    below = None
    while True:
        if _is_container(d):
            return below
        if d.parent == d:
            return None
        below, d = d, d.parent


def folders_for(filenames: list[str]) -> list[Path]:
    seen: dict[Path, None] = {}
    for name in filenames:
        folder = record_folder_of(Path(name))
        if folder is not None and folder.is_dir():  # a deleted folder has nothing left to audit
            seen.setdefault(folder, None)
    return list(seen)


def main(argv: list[str] | None = None, **runner_kw) -> int:
    """``runner_kw`` goes to the isolated runner (tests replace the worker to provoke a hang)."""
    ap = argparse.ArgumentParser(prog="pgolf-pre-commit", description="Audit the record folders that hold the given files.")
    ap.add_argument("--fail-on", default=DEFAULT_FAIL_ON, choices=FAIL_ON)
    ap.add_argument("--format", default="text", choices=("text", "markdown", "json"))
    ap.add_argument("--waivers", default=None)
    ap.add_argument("filenames", nargs="*")
    args = ap.parse_args(argv)

    folders = folders_for(args.filenames)
    if not folders:
        return 0  # nothing under a record folder changed
    from auditor.context import AuditOptions
    from auditor.discover import discover
    from auditor.limits import HUMAN_FORMATS
    from auditor.report import render
    from auditor.runner import exit_code, run_isolated, scrub_sys_path

    scrub_sys_path([])
    # the same isolated workers, limits and caps as `pgolf audit`
    run = run_isolated(discover([str(f) for f in folders]), AuditOptions(waivers_file=args.waivers),
                       human=args.format in HUMAN_FORMATS, root=Path.cwd(), **runner_kw)
    report = run.report
    sys.stdout.write(render(report, args.format))
    for p in report.errors:
        print(f"pgolf: {p.line()}", file=sys.stderr)
    for path in run.failed:
        print(f"pgolf: {path}: not fully audited (see its errors in the report)", file=sys.stderr)
    if not report.records:
        return 2
    return exit_code(report, args.fail_on, run.failed)


if __name__ == "__main__":
    sys.exit(main())
