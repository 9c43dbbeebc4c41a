"""The `pgolf` command line. Commands stay thin: they parse options and call the pipeline.

Usage errors (a mistyped option, a missing --waivers file, an unknown git ref, a selector that
names no rule) are one line on stderr and exit 2, never a traceback and never printed twice. The
choices (formats, --fail-on levels, rulebooks) come from ``auditor.policy``.
"""
from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import List, Optional

import typer

try:  # typer >= 0.2x ships its own copy of click; older ones use click itself
    from typer._click import exceptions as _cx
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as _cx

from auditor import __version__
from auditor.policy import FAIL_ON, FORMATS, RULEBOOKS

app = typer.Typer(
    name="pgolf",
    help="Compliance auditor and evaluator for OpenAI's Parameter Golf challenge.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: no "<bool>" type on flags, fits 80 columns
)


class UsageError(Exception):
    """A usage error found after parsing; ``main`` prints it as one line and exits 2."""


def _err(msg: str) -> None:
    typer.echo(f"pgolf: {msg}", err=True)


def usage(msg: str) -> typer.Exit:
    """Print one usage-error line; the caller raises the returned Exit(2)."""
    _err(msg)
    return typer.Exit(2)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pgolf {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version.")) -> None:
    pass


def _choices(name: str, values) -> type[enum.Enum]:
    """A str Enum of the policy's choices: typer validates them and lists them in --help."""
    return enum.Enum(name, {v: v for v in values}, type=str)


Format = _choices("Format", FORMATS)
FailOn = _choices("FailOn", FAIL_ON)
Rulebook = _choices("Rulebook", RULEBOOKS)
ConfigFormat = _choices("ConfigFormat", ("text", "json"))
RulesFormat = _choices("RulesFormat", ("text", "markdown", "json"))


def _v(choice) -> str | None:
    return None if choice is None else choice.value


@app.command()
def audit(
    paths: List[str] = typer.Argument(None, help="Record folders, records/ trees or checkouts of the challenge repository."),
    fmt: Optional[Format] = typer.Option(None, "--format", "-f", case_sensitive=False, help="Report format (default text)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the report to this file."),
    fail_on: Optional[FailOn] = typer.Option(None, "--fail-on", case_sensitive=False,
                                          help="Exit 1 when an un-waived finding is at or above this (default error)."),
    changed: Optional[str] = typer.Option(None, "--changed", help="Audit only record folders added or changed since this git ref."),
    against: List[str] = typer.Option([], "--against", help="Previous record folder (or records tree) for the significance tests."),
    rulebook: Optional[Rulebook] = typer.Option(None, "--rulebook", help="Dated rulebook (default the latest)."),
    select: List[str] = typer.Option([], "--select", help="Rules to report: ids, codes (PG101), code prefixes (PG1), id prefixes "
                                                          "(NGRAM-) or families (ngram); comma-separated or repeated; ALL."),
    rule: List[str] = typer.Option([], "--rule", help="Alias of --select."),
    extend_select: List[str] = typer.Option([], "--extend-select", help="Rules added to the selection (the configuration's or all)."),
    ignore: List[str] = typer.Option([], "--ignore", help="Rules left out (same forms as --select)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help="Parallel worker processes (at least 1; default 1)."),
    waivers: Optional[Path] = typer.Option(None, "--waivers", help="Reviewed waiver file (default: pgolf-waivers.toml if present)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar; text output: the summary table and errors only."),
    statistics: bool = typer.Option(False, "--statistics", help="Per-rule finding counts instead of the findings."),
    show_info: bool = typer.Option(False, "--show-info", help="Show info findings in github and markdown output (hidden there by default)."),
    timeout: Optional[float] = typer.Option(None, "--timeout",
                                            help="Per-folder time limit in seconds (default 120, or PGOLF_FOLDER_TIMEOUT)."),
    config_file: Optional[Path] = typer.Option(None, "--config", help="Read settings from this file instead of the repository root's."),
    ref: List[str] = typer.Option([], "--ref", help="Read record folders from these git refs or globs of the repository given as "
                                                   "the path, without a checkout ('refs/pull/*/head'); repeatable."),
    probe: bool = typer.Option(False, "--probe", help="After the static rules, run the dynamic probes (in bubblewrap, on CPU) on "
                                                      "folders whose verdict is fail or needs review."),
    probe_all: bool = typer.Option(False, "--probe-all", help="Run the dynamic probes on every folder (implies --probe)."),
) -> None:
    """Audit record folders and report findings."""
    from auditor import cli_audit, config as config_mod, selectors

    try:
        cfg = config_mod.load(Path.cwd(), config_file)
    except config_mod.ConfigError as exc:
        raise usage(str(exc))
    cfg.override("format", _v(fmt))
    cfg.override("fail-on", _v(fail_on))
    cfg.override("rulebook", _v(rulebook))
    if select or rule:  # like ruff: a --select on the command line replaces the file's whole selection
        cfg.replace("select", [*select, *rule])
        cfg.replace("extend-select", list(extend_select))
        cfg.replace("ignore", list(ignore))
    else:
        cfg.override("extend-select", extend_select)
        cfg.override("ignore", ignore)
    cfg.override("jobs", jobs)
    cfg.override("timeout", timeout)
    cfg.override("waivers", str(waivers) if waivers is not None else None)
    cfg.override("show-info", True if show_info else None)

    if jobs is not None and jobs < 1:
        raise usage(f"--jobs must be at least 1, not {jobs}")
    if timeout is not None and not timeout > 0:
        raise usage(f"--timeout must be a positive number of seconds, not {timeout:g}")
    if not paths and not changed:
        raise usage("give at least one path (a record folder, a records/ tree or a checkout), or --changed BASE")
    for p in paths or []:
        if not _exists(p):
            raise usage(f"{p}: no such file or folder")
    for a in against:
        if not _exists(a):
            raise usage(f"--against {a}: no such record folder or records tree")
    waiver_file = cfg.get("waivers")
    if waiver_file is not None and not Path(waiver_file).is_file():
        where = "--waivers" if cfg.source("waivers") == config_mod.COMMAND_LINE else f"waivers in {cfg.source('waivers')}:"
        raise usage(f"{where} {waiver_file}: no such file")
    if changed:
        problem = _check_ref(changed)
        if problem:
            raise usage(problem)
    try:
        spelled = {k: f"{k} in {cfg.source(k)}:" for k in ("select", "ignore", "extend-select")
                   if cfg.source(k) not in (config_mod.COMMAND_LINE, config_mod.DEFAULT)}
        selected = selectors.resolve(cfg.get("select"), cfg.get("ignore"), cfg.get("extend-select"), option_names=spelled)
    except selectors.SelectorError as exc:
        raise usage(str(exc))
    if selected is not None and not selected:
        raise usage("the selection leaves no rule to run (--ignore removes everything --select chose)")

    if ref:  # record folders straight from git objects (auditor.gitsource)
        from auditor import cli_leaderboard

        if len(paths or []) != 1 or changed:
            raise usage("--ref reads one git repository: give its path once, without --changed")
        raise typer.Exit(cli_leaderboard.audit_refs_command(
            source=paths[0], refs=list(ref), base=None, fmt=cfg.get("format"), output=output, fail_on=cfg.get("fail-on"),
            jobs=cfg.get("jobs"), timeout=cfg.get("timeout"), quiet=quiet, selected=selected, show_info=cfg.get("show-info"),
            options=cli_leaderboard.AuditOptions(against=list(against), rulebook=cfg.get("rulebook"),
                                                 waivers_file=str(waiver_file) if waiver_file else None)))
    code = cli_audit.run_audit(
        paths=list(paths or []), fmt=cfg.get("format"), output=output, fail_on=cfg.get("fail-on"), changed=changed,
        against=list(against), rulebook=cfg.get("rulebook"), only_rules=[], jobs=cfg.get("jobs"),
        waivers=Path(waiver_file) if waiver_file else None, quiet=quiet, folder_timeout=cfg.get("timeout"),
        selected=selected, statistics=statistics, show_info=cfg.get("show-info"),
        probe="all" if probe_all else "flagged" if probe else None,
    )
    raise typer.Exit(code)


def _exists(p: str) -> bool:
    try:
        return Path(p).exists() or Path(p).is_symlink()
    except (OSError, ValueError):
        return False


def _check_ref(ref: str) -> str | None:
    """Why ``--changed REF`` cannot work here, in pgolf's words (not git's usage text); None if it can."""
    import subprocess

    from auditor.discover import run_git

    if not ref or ref.startswith("-") or any(c in ref for c in "\0\n"):
        return f"--changed {ref!r}: needs a git ref (a branch, tag or commit), not an option"
    try:
        top = run_git(["rev-parse", "--show-toplevel"], Path.cwd())
        if top.returncode != 0:
            return "--changed needs a git checkout; this folder is not inside one"
        found = run_git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"], Path.cwd())
    except (OSError, subprocess.SubprocessError) as exc:
        return f"--changed needs git: {exc}"
    if found.returncode != 0:
        return (f"--changed {ref}: no branch, tag or commit of that name in {top.stdout.strip()} "
                "(a shallow CI checkout may need `git fetch origin {ref}`)").replace("{ref}", ref)
    return None


@app.command("config")
def config_cmd(
    fmt: ConfigFormat = typer.Option("text", "--format", "-f", case_sensitive=False, help="text | json"),
    config_file: Optional[Path] = typer.Option(None, "--config", help="Read this file instead of the repository root's."),
) -> None:
    """Print the effective settings of `pgolf audit` and where each came from."""
    import json

    from auditor import config as config_mod

    try:
        cfg = config_mod.load(Path.cwd(), config_file)
    except config_mod.ConfigError as exc:
        raise usage(str(exc))
    if fmt.value == "json":
        typer.echo(json.dumps(config_mod.as_json(cfg), indent=2))
    else:
        typer.echo(config_mod.show(cfg), nl=False)


@app.command("rules")
def rules_cmd(fmt: RulesFormat = typer.Option("text", "--format", "-f", case_sensitive=False, help="text | markdown | json")) -> None:
    """List every rule."""
    from auditor import ruledocs

    typer.echo(ruledocs.list_rules(fmt.value), nl=False)


@app.command("rule")
def rule_cmd(rule_id: str = typer.Argument(..., help="Rule id (NGRAM-TARGET-IN-KEY) or code (PG101).")) -> None:
    """Show one rule: what it checks, why, a legal and an illegal example, how to fix."""
    from auditor import ruledocs, selectors

    text = ruledocs.rule_doc(rule_id)
    if text is None:
        near = selectors.closest(rule_id, selectors.catalog())
        raise usage(f"no rule {rule_id!r}; " + (f"did you mean {', '.join(near)}?" if near else "`pgolf rules` lists them"))
    typer.echo(text, nl=False)


def _register_optional() -> None:
    # Other command groups live in their own modules; none of them is imported by `audit`.
    from auditor import cli_leaderboard, cli_plot, cli_reference, cli_reproduce

    cli_reference.register(app)
    cli_reproduce.register(app)
    cli_plot.register(app)
    cli_leaderboard.register(app)


_register_optional()


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: list[str] | None = None) -> None:
    """Run the command line; click's usage errors become one ``pgolf: ...`` line and exit 2."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="pgolf", standalone_mode=False)
    except _cx.NoArgsIsHelpError as exc:  # `pgolf` or `pgolf data` alone: the help, as before
        typer.echo(exc.ctx.get_help() if exc.ctx else "")
        sys.exit(0)
    except _cx.UsageError as exc:
        path = exc.ctx.command_path if exc.ctx else ""
        where = path.split(" ", 1)[1] + ": " if " " in path else ""
        _err(where + _one_line(exc.format_message()).replace("Value error, ", ""))
        sys.exit(2)
    except _cx.ClickException as exc:  # e.g. a file option that cannot be opened
        _err(_one_line(exc.format_message()))
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        _err("interrupted")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
