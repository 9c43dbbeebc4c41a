"""The `pgolf` command line. Commands stay thin: they parse options and call the pipeline."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from auditor import __version__

app = typer.Typer(
    name="pgolf",
    help="Compliance auditor and evaluator for OpenAI's Parameter Golf challenge.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

FAIL_ON = ("error", "warning", "info", "never")


def _err(msg: str) -> None:
    typer.echo(f"pgolf: {msg}", err=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pgolf {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version.")) -> None:
    pass


@app.command()
def audit(
    paths: List[str] = typer.Argument(None, help="Record folders, records/ trees or checkouts of the challenge repository."),
    fmt: str = typer.Option("text", "--format", "-f", help="text | json | markdown | sarif | github"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the report to this file."),
    fail_on: str = typer.Option("error", "--fail-on", help="Exit 1 when a finding is at or above: error | warning | info | never."),
    changed: Optional[str] = typer.Option(None, "--changed", help="Audit only record folders added or changed since this git ref."),
    against: List[str] = typer.Option([], "--against", help="Previous record folder for the significance tests."),
    rulebook: str = typer.Option("2026-04-28", "--rulebook", help="Dated rulebook: 2026-03-18 | 2026-04-28."),
    rule: List[str] = typer.Option([], "--rule", help="Run only these rule ids (repeatable)."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Parallel worker processes."),
    waivers: Optional[Path] = typer.Option(None, "--waivers", help="Reviewed waiver file (default: pgolf-waivers.toml if present)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Per-folder time limit in seconds (default 120, or PGOLF_FOLDER_TIMEOUT)."),
) -> None:
    """Audit record folders and report findings."""
    from auditor import cli_audit

    from auditor.report import FORMATS

    if fmt not in FORMATS:
        _err(f"unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}")
        raise typer.Exit(2)
    if fail_on not in FAIL_ON:
        _err(f"unknown --fail-on {fail_on!r}; choose one of {', '.join(FAIL_ON)}")
        raise typer.Exit(2)
    if rulebook not in ("2026-03-18", "2026-04-28"):
        _err(f"unknown --rulebook {rulebook!r}; choose 2026-03-18 or 2026-04-28")
        raise typer.Exit(2)
    if not paths and not changed:
        _err("give at least one path (a record folder, a records/ tree or a checkout), or --changed BASE")
        raise typer.Exit(2)
    code = cli_audit.run_audit(
        paths=list(paths or []), fmt=fmt, output=output, fail_on=fail_on, changed=changed, against=list(against),
        rulebook=rulebook, only_rules=list(rule), jobs=jobs, waivers=waivers, quiet=quiet, folder_timeout=timeout,
    )
    raise typer.Exit(code)


@app.command("rules")
def rules_cmd(fmt: str = typer.Option("text", "--format", "-f", help="text | markdown")) -> None:
    """List every rule."""
    from auditor import ruledocs

    typer.echo(ruledocs.list_rules(fmt), nl=False)


@app.command("rule")
def rule_cmd(rule_id: str = typer.Argument(..., help="Rule id (NGRAM-TARGET-IN-KEY) or code (PG101).")) -> None:
    """Show one rule: what it checks, why, a legal and an illegal example, how to fix."""
    from auditor import ruledocs

    text = ruledocs.rule_doc(rule_id)
    if text is None:
        _err(f"no rule {rule_id!r}; `pgolf rules` lists them")
        raise typer.Exit(2)
    typer.echo(text, nl=False)


def _register_optional() -> None:
    # Other command groups live in their own modules; none of them is imported by `audit`.
    from auditor import cli_plot, cli_reference, cli_reproduce

    cli_reference.register(app)
    cli_reproduce.register(app)
    cli_plot.register(app)


_register_optional()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        _err("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
