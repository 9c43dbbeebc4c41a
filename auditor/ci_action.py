"""The GitHub Action's audit step (``python -m auditor.ci_action``), testable without GitHub.

action.yml hands every input over as an environment variable (``PGOLF_*``; never interpolated into
shell text), and this module reads them together with the runner's ``GITHUB_*`` variables. One
audit, four outputs (tooling.md §3):

* annotations on stdout (workflow commands; GitHub shows the first 10 of each kind per step,
  so the step summary carries everything),
* the Markdown report appended to ``$GITHUB_STEP_SUMMARY``,
* ``pgolf.sarif`` for ``github/codeql-action/upload-sarif``,
* ``pgolf-report.json``, ``pgolf-report.md`` (the PR comment body) and ``pr-number`` in the report
  folder that the action uploads as an artifact for the ``workflow_run`` comment job.

Step outputs (``$GITHUB_OUTPUT``): verdict, exit-code, folders, report-dir, sarif-file, json-file,
markdown-file. With ``PGOLF_DEFER_EXIT=true`` the step exits 0 and the action's last step fails the
job with ``exit-code``, so the uploads in between still run.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from auditor.model import Problem, Report
from auditor.policy import DEFAULT_FAIL_ON, DEFAULT_RULEBOOK, FAIL_ON, RULEBOOKS
COMMENT_MARKER = "<!-- pgolf-report -->"
STEP_SUMMARY_LIMIT = 1_000_000  # GitHub caps a step summary at 1 MiB
COMMENT_LIMIT = 65_536  # GitHub's comment body limit, in characters
ANNOTATIONS_SHOWN = 10  # per kind and step


class InputError(Exception):
    pass


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def read_inputs() -> dict:
    fail_on = _env("PGOLF_FAIL_ON", DEFAULT_FAIL_ON).lower() or DEFAULT_FAIL_ON
    if fail_on not in FAIL_ON:
        raise InputError(f"fail-on must be one of {', '.join(FAIL_ON)}, not {fail_on!r}")
    rulebook = _env("PGOLF_RULEBOOK", DEFAULT_RULEBOOK) or DEFAULT_RULEBOOK
    if rulebook not in RULEBOOKS:
        raise InputError(f"rulebook must be one of {', '.join(RULEBOOKS)}, not {rulebook!r}")
    base = _env("PGOLF_BASE")
    if base.startswith("-"):
        raise InputError(f"base must be a git ref, not an option: {base!r}")
    # One path per line: record folder names contain spaces.
    paths = [p.strip() for p in os.environ.get("PGOLF_PATHS", "").split("\n") if p.strip()]
    for p in paths:
        if p.startswith("-"):
            raise InputError(f"paths must be paths, not options: {p!r}")
    workspace = Path(_env("GITHUB_WORKSPACE") or ".")
    out_dir = _env("PGOLF_OUTPUT_DIR") or str(Path(_env("RUNNER_TEMP") or workspace) / "pgolf-report")
    return {
        "base": base, "paths": paths, "fail_on": fail_on, "rulebook": rulebook,
        "waivers": _env("PGOLF_WAIVERS") or None, "workspace": workspace, "out_dir": Path(out_dir).absolute(),
        "defer_exit": _env("PGOLF_DEFER_EXIT").lower() in ("1", "true", "yes"),
    }


def audit(inputs: dict, **runner_kw) -> tuple[Report, str, list[str]]:
    """Run the audit in the workspace, each folder in an isolated worker with the limits of
    ``pgolf audit`` (``PGOLF_FOLDER_TIMEOUT``, ``PGOLF_WORKER_MEMORY_MB``, the output caps); returns
    the report, a sentence saying what was audited, and the folders whose audit did not finish."""
    from auditor.context import AuditOptions
    from auditor.discover import changed_folders, discover
    from auditor.runner import run_isolated, scrub_sys_path

    scrub_sys_path([])
    options = AuditOptions(rulebook=inputs["rulebook"], waivers_file=inputs["waivers"])
    if inputs["base"]:
        disc, changed = changed_folders(inputs["paths"], inputs["base"])
        scope = f"record folders changed since `{inputs['base']}` ({len(changed)} changed files)"
    else:
        disc = discover(inputs["paths"] or ["."])
        scope = "record folders under " + ", ".join(f"`{p}`" for p in (inputs["paths"] or ["."]))
    run = run_isolated(disc, options, root=Path.cwd(), **runner_kw)
    return run.report, scope, run.failed


def _render(report: Report, fmt: str, problems: list[Problem], **kw) -> str | None:
    from auditor.report import render

    try:
        return render(report, fmt, **kw)
    except Exception as exc:  # one broken renderer must not lose the other outputs
        problems.append(Problem(f"--format {fmt}", f"could not render: {type(exc).__name__}: {exc}"))
        return None


def _pr_info() -> tuple[str | None, str | None]:
    path = _env("GITHUB_EVENT_PATH")
    if not path:
        return None, None
    try:
        event = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, None
    pr = event.get("pull_request") if isinstance(event, dict) else None
    if not isinstance(pr, dict):
        return None, None
    number = pr.get("number")
    head = (pr.get("head") or {}).get("sha") if isinstance(pr.get("head"), dict) else None
    return (str(number) if isinstance(number, int) else None), (head if isinstance(head, str) else None)


def _run_url() -> str | None:
    server, repo, run = _env("GITHUB_SERVER_URL", "https://github.com"), _env("GITHUB_REPOSITORY"), _env("GITHUB_RUN_ID")
    return f"{server}/{repo}/actions/runs/{run}" if repo and run else None


def comment_body(markdown: str, run_url: str | None) -> str:
    """The sticky PR comment: a marker the comment job finds it by, the report, capped in length."""
    footer = f"\n\n---\n<sub>pgolf · [full report and annotations]({run_url})</sub>\n" if run_url else "\n"
    room = COMMENT_LIMIT - len(COMMENT_MARKER) - len(footer) - 200
    body = markdown.rstrip("\n")
    if len(body) > room:
        cut = body.rfind("\n", 0, room)
        body = body[: cut if cut > 0 else room] + "\n\n> Truncated to fit GitHub's comment limit; the job summary and the JSON artifact have everything."
    return f"{COMMENT_MARKER}\n{body}{footer}"


def _annotation_counts(text: str) -> dict[str, int]:
    out = {"error": 0, "warning": 0, "notice": 0}
    for line in text.splitlines():
        for kind in out:
            if line.startswith(f"::{kind} ") or line.startswith(f"::{kind}::"):
                out[kind] += 1
    return out


def _append(path: str, text: str) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text)


def _set_outputs(values: dict[str, str]) -> None:
    path = _env("GITHUB_OUTPUT")
    lines = "".join(f"{k}={v}\n" for k, v in values.items() if "\n" not in str(v))
    _append(path, lines)


def main(**runner_kw) -> int:
    """``runner_kw`` goes to the isolated runner (tests replace the worker to provoke a hang)."""
    try:
        inputs = read_inputs()
    except InputError as exc:
        print(f"::error title=pgolf::{exc}")
        return 2
    try:
        os.chdir(inputs["workspace"])
    except OSError as exc:
        print(f"::error title=pgolf::cannot enter the workspace {inputs['workspace']}: {exc.strerror or exc}")
        return 2
    report, scope, failed = audit(inputs, **runner_kw)
    from auditor.report import common as C
    from auditor.runner import exit_code

    problems: list[Problem] = []
    if report.records:
        code = exit_code(report, inputs["fail_on"], failed)
        verdict = C.overall_verdict(report)
    elif inputs["base"] and not report.errors:
        code, verdict = 0, "none"  # a PR that touches no record folder has nothing to audit
    else:
        code, verdict = 2, "unreadable"

    out_dir: Path = inputs["out_dir"]
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"json": out_dir / "pgolf-report.json", "sarif": out_dir / "pgolf.sarif", "markdown": out_dir / "pgolf-report.md"}
    # annotations leave info findings out (CI noise: "no previous record given" on every folder) unless
    # PGOLF_SHOW_INFO=1, as `pgolf audit -f github` does without --show-info; the step summary keeps them
    from auditor.selectors import without_info

    shown = report if os.environ.get("PGOLF_SHOW_INFO") == "1" else without_info(report)
    rendered = {fmt: _render(shown if fmt == "github" else report, fmt, problems) for fmt in ("json", "sarif", "markdown", "github")}
    # the step summary takes up to 1 MiB, so it carries every finding; the PR comment is capped lower
    full_md = _render(report, "markdown", problems, max_chars=STEP_SUMMARY_LIMIT)
    for fmt in ("json", "sarif"):
        if rendered[fmt] is not None:
            files[fmt].write_text(rendered[fmt], encoding="utf-8")

    if verdict == "none":
        md = f"## pgolf: no record folder changed\n\nNo record folder changed since `{inputs['base']}`; nothing to audit.\n"
    else:
        md = rendered["markdown"] or "## pgolf\n\nThe Markdown report could not be rendered; see the JSON artifact.\n"
    files["markdown"].write_text(comment_body(md, _run_url()), encoding="utf-8")
    number, head = _pr_info()
    if number:
        (out_dir / "pr-number").write_text(number + "\n", encoding="utf-8")
    if head:
        (out_dir / "head-sha").write_text(head + "\n", encoding="utf-8")

    annotations = rendered["github"] or ""
    sys.stdout.write(annotations)
    counts = _annotation_counts(annotations)
    summary = [(md if verdict == "none" else (full_md or md)).rstrip("\n"), ""]
    hidden = {k: n - ANNOTATIONS_SHOWN for k, n in counts.items() if n > ANNOTATIONS_SHOWN}
    if hidden:
        summary.append("> GitHub shows the first 10 annotations of each kind on the diff; "
                       + ", ".join(f"{n} more {k}s" for k, n in hidden.items()) + " are listed above only.")
    summary.append(f"<sub>pgolf audited {scope}.</sub>")
    for p in problems:
        summary.append(f"- pgolf could not write part of the report: `{C.one_line(p.line())}`")
    _append(_env("GITHUB_STEP_SUMMARY"), "\n".join(summary) + "\n\n")
    for p in problems:
        print(f"::warning title=pgolf::{p.line()}")

    _set_outputs({
        "verdict": verdict, "exit-code": str(code), "folders": str(len(report.records)), "report-dir": str(out_dir),
        "sarif-file": str(files["sarif"]) if files["sarif"].exists() else "", "json-file": str(files["json"]),
        "markdown-file": str(files["markdown"]),
    })
    print(f"pgolf: {verdict} ({len(report.records)} record folders; {scope}); exit code {code}", file=sys.stderr)
    return 0 if inputs["defer_exit"] else code


if __name__ == "__main__":
    sys.exit(main())
