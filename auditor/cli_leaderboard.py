"""`pgolf leaderboard` and `pgolf audit … --ref`: audits of a records tree, a checkout or git refs,
folded into the audited leaderboard. Thin: sources in ``auditor.gitsource``, tables in
``auditor.leaderboard``, folder audits in ``auditor.runner`` (isolated workers, time limits)."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import List, Optional

import typer

from auditor.context import AuditOptions


class LeaderboardError(Exception):
    """A usage error: one line, exit 2."""


def _say(msg: str) -> None:
    try:
        sys.stderr.write(f"pgolf: {msg}\n")
    except (OSError, ValueError):
        pass


def collect(source: str, refs: list[str], *, base: str | None, options: AuditOptions, jobs: int, timeout: float | None,
            cache_dir: str | None, use_cache: bool, progress=None, extra_refs: list[str] | None = None):
    """Audit what ``source`` holds. Returns (records with origins, problems, stats dict, gitdir or None)."""
    from auditor import gitsource
    from auditor.leaderboard import Origin

    gitdir = None
    if refs or not (Path(source) / "records").is_dir() and gitsource.is_git_source(source):
        try:
            gitdir = gitsource.find_gitdir(source)
        except gitsource.GitError as exc:
            raise LeaderboardError(str(exc)) from None
    if gitdir is not None:
        pats = list(refs) or [gitsource.default_base(gitdir) or "HEAD"]
        known, _ = gitsource.resolve_refs(gitdir, ["refs/*"]) if extra_refs else ([], [])
        names = {n for n, _ in known}
        pats += [r for r in (extra_refs or []) if r in names and r not in pats]
        try:
            ra = gitsource.audit_refs(gitdir, pats, options, base=base, jobs=jobs, timeout_s=timeout, cache=cache_dir,
                                      use_cache=use_cache, progress=progress)
        except gitsource.GitError as exc:
            raise LeaderboardError(str(exc)) from None
        out = []
        for rec, f in zip(ra.report.records, ra.folders):
            if isinstance(f, tuple):
                ref, _commit, path, _oid = f
            else:
                ref, path = f.ref, f.git_path
            out.append((rec, Origin(path=path, ref=ref)))
        stats = {"folders": len(out), "cached": ra.cached, "audited": ra.audited, "failed": len(ra.failed),
                 "seconds": round(ra.seconds, 2), "refs": len(ra.per_ref)}
        return out, [p.line() for p in ra.report.errors], stats, gitdir
    from auditor import runner
    from auditor.discover import discover

    t0 = time.perf_counter()
    disc = discover([source])
    top = Path(source).resolve()
    # README rows link repository paths (records/track_…/folder): a records tree handed in directly is
    # the checkout's records/ folder, so its folders are named from the checkout's root
    if top.name == "records":
        top = top.parent
    run = runner.run_isolated(disc, options, jobs=jobs, timeout_s=timeout, progress=progress)  # the audit's own limits and caps
    out = []
    for rec, f in zip(run.report.records, disc.folders):
        try:
            path = f.path.resolve().relative_to(top).as_posix()
        except ValueError:
            path = f.display
        out.append((rec, Origin(path=path)))
    stats = {"folders": len(out), "cached": 0, "audited": len(out), "failed": len(run.failed),
             "seconds": round(time.perf_counter() - t0, 2), "refs": 0}
    return out, [p.line() for p in run.report.errors], stats, None


def read_readme(spec: str, gitdir: str | None) -> str:
    """``--readme FILE`` or ``--readme REV:PATH`` (read from the repository, never checked out)."""
    p = Path(spec)
    if p.is_file():
        try:
            return p.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise LeaderboardError(f"--readme {spec}: {exc.strerror or exc}") from None
    if gitdir and ":" in spec and not spec.startswith("-"):
        from auditor import gitsource

        try:
            return gitsource.run_git(gitdir, "cat-file", "blob", "--end-of-options", spec).decode("utf-8", "replace")
        except gitsource.GitError as exc:
            raise LeaderboardError(f"--readme {spec}: {exc}") from None
    raise LeaderboardError(f"--readme {spec}: no such file" + ("" if gitdir else " (REV:PATH needs a git repository)"))


def _same_ref(gitdir: str, base: str, refs: list[str]) -> bool:
    """Whether one of ``refs`` names the base branch (``main`` and ``refs/heads/main`` alike)."""
    from auditor import gitsource

    want, _ = gitsource.resolve_refs(gitdir, [base])
    got, _ = gitsource.resolve_refs(gitdir, refs)
    return bool(want) and want[0][0] in {n for n, _ in got}


def _linked_prs(text: str) -> list[int]:
    from auditor.leaderboard import readme_rows

    return sorted({r.pr for r in readme_rows(text) if r.pr is not None and r.link.startswith("http")})


def leaderboard_command(*, source: str, refs: list[str], base: str | None, readme: str | None, fmt: str,
                        output: str | None, plot: str | None, jobs: int, timeout: float | None, cache_dir: str | None,
                        use_cache: bool, rulebook: str | None, quiet: bool) -> int:
    from auditor import leaderboard as lbm

    if fmt not in lbm.RENDERERS:
        _say(f"--format {fmt!r}: choose one of {', '.join(lbm.RENDERERS)}")
        return 2
    options = AuditOptions(rulebook=rulebook) if rulebook else AuditOptions()
    if not Path(source).exists():
        _say(f"{source}: no such file or folder")
        return 2
    try:
        gitdir = None
        from auditor import gitsource

        if refs or (not (Path(source) / "records").is_dir() and gitsource.is_git_source(source)):
            gitdir = gitsource.find_gitdir(source)
        readme_spec = readme
        if readme_spec is None and gitdir is not None:
            base_ref = base or gitsource.default_base(gitdir)
            if base_ref and (not refs or _same_ref(gitdir, base_ref, refs)):
                readme_spec = f"{base_ref}:README.md"
        elif readme_spec is None and (Path(source) / "README.md").is_file() and (Path(source) / "records").is_dir():
            readme_spec = str(Path(source) / "README.md")
        text = read_readme(readme_spec, gitdir) if readme_spec else None
        extra = [f"refs/pull/{n}/head" for n in _linked_prs(text)] if (text and gitdir) else []
        t0 = time.perf_counter()
        records, problems, stats, gitdir = collect(source, refs, base=base, options=options, jobs=jobs, timeout=timeout,
                                                   cache_dir=cache_dir, use_cache=use_cache, extra_refs=extra)
    except (LeaderboardError, gitsource.GitError) as exc:
        _say(str(exc))
        return 2
    lb = lbm.build(records, source=" ".join([source, *refs]))
    if text is not None:
        known = None
        if gitdir:
            got, _ = gitsource.resolve_refs(gitdir, ["refs/pull/*/head"])
            known = {int(n.split("/")[2]) for n, _ in got}
        checks = [lbm.check_row(r, lb.entries, known) for r in lbm.readme_rows(text)]
        # PRs were read only for the rows that link them: the table keeps the folders a row stands for
        asked = set(refs)
        matched = {(c.ref, c.folder) for c in checks}
        kept = [(r, o) for r, o in records if o.ref not in extra or o.ref in asked or (o.ref, o.path) in matched]
        if len(kept) != len(records):
            lb = lbm.build(kept, source=lb.source)
        lbm.attach(lb, checks)
    lb.problems = problems[:50] + ([f"{len(problems) - 50} more problems not shown"] if len(problems) > 50 else [])
    rendered = lbm.RENDERERS[fmt](lb)
    if output:
        try:
            Path(output).write_text(rendered, encoding="utf-8")
        except OSError as exc:
            _say(f"cannot write {output}: {exc.strerror or exc}")
            return 2
    else:
        sys.stdout.write(rendered)
        sys.stdout.flush()
    if plot:
        try:
            lbm.render_png(lb, plot)
        except (OSError, ValueError) as exc:
            _say(f"cannot write {plot}: {exc}")
            return 2
    if not quiet:
        _say(f"{stats['folders']} record folders ({stats['audited']} audited, {stats['cached']} from the cache, "
             f"{stats['failed']} not fully audited) in {time.perf_counter() - t0:.1f} s")
    if not records:
        _say("no record folder found")
        return 2
    return 0


def audit_refs_command(*, source: str, refs: list[str], base: str | None, options: AuditOptions, fmt: str,
                       output: str | None, fail_on: str, jobs: int, timeout: float | None, cache_dir: str | None = None,
                       use_cache: bool = True, quiet: bool = False, selected: set[str] | None = None,
                       show_info: bool = False) -> int:
    """`pgolf audit REPO --ref REF …`: the audit report of the record folders the refs hold."""
    from auditor import gitsource, runner, selectors
    from auditor.limits import Caps, cap_report
    from auditor.report import render

    try:
        gitdir = gitsource.find_gitdir(source)
        ra = gitsource.audit_refs(gitdir, refs, options, base=base, jobs=jobs, timeout_s=timeout, cache=cache_dir,
                                  use_cache=use_cache)
    except gitsource.GitError as exc:
        _say(str(exc))
        return 2
    report = ra.report
    cap_report(report, Caps(), human=fmt in ("text", "markdown", "github"))
    selectors.apply(report, selected)
    shown = report if show_info or fmt not in ("github", "markdown") else selectors.without_info(report)
    try:
        text = render(shown, fmt, color=False) if (output and fmt == "text") else render(shown, fmt)
    except Exception as exc:  # a renderer bug: one line, JSON instead
        _say(f"the {fmt} renderer failed ({type(exc).__name__}: {exc}); writing JSON instead")
        text = render(report, "json")
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if output:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            _say(f"cannot write {output}: {exc.strerror or exc}")
            return 2
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    for p in report.errors:
        _say(p.line())
    if not quiet:
        _say(f"{len(report.records)} record folders from {len(ra.per_ref)} refs ({ra.audited} audited, {ra.cached} from "
             f"the cache) in {ra.seconds:.1f} s")
    if not report.records:
        return 2
    return runner.exit_code(report, fail_on, ra.failed)


def register(app) -> None:
    app.command("leaderboard")(leaderboard)


def leaderboard(
    source: str = typer.Argument(..., help="A records tree, a checkout, or a git repository (bare or not) with --ref."),
    ref: List[str] = typer.Option([], "--ref", help="Git refs or globs to read record folders from, without a checkout "
                                                   "(refs/heads/main, 'refs/pull/*/head'); repeatable."),
    base: Optional[str] = typer.Option(None, "--base", help="Base branch PR refs are diffed against (default main)."),
    readme: Optional[str] = typer.Option(None, "--readme", help="README whose leaderboard tables are cross-checked: a file "
                                                                "or REV:PATH (default README.md of the base branch)."),
    fmt: str = typer.Option("text", "--format", "-f", help="text | markdown | json | csv"),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write the leaderboard to this file."),
    plot: Optional[str] = typer.Option(None, "--plot", help="Write a PNG of the claimed and audited frontiers over time."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Parallel worker processes."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Per-folder time limit in seconds."),
    cache_dir: Optional[str] = typer.Option(None, "--cache-dir", help="Result cache (default $XDG_CACHE_HOME/pgolf)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Audit every folder again."),
    rulebook: Optional[str] = typer.Option(None, "--rulebook", help="Dated rulebook (default the latest)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary line on stderr."),
) -> None:
    """The audited leaderboard: per track every record with its verdict, admissible score, bytes, seeds and
    significance; the audited frontier next to the claimed one; the README table checked row by row."""
    from auditor.policy import RULEBOOKS

    if jobs < 1:
        _say(f"--jobs must be at least 1, not {jobs}")
        raise typer.Exit(2)
    if rulebook is not None and rulebook not in RULEBOOKS:
        _say(f"--rulebook {rulebook!r}: choose one of {', '.join(RULEBOOKS)}")
        raise typer.Exit(2)
    raise typer.Exit(leaderboard_command(source=source, refs=list(ref), base=base, readme=readme, fmt=fmt, output=output,
                                         plot=plot, jobs=jobs, timeout=timeout, cache_dir=cache_dir,
                                         use_cache=not no_cache, rulebook=rulebook, quiet=quiet))
