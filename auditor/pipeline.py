"""discover → read → measure → check → (waive) → verdict. One function per step, data flows one way.

This is the one place in ``auditor`` that imports ``rules`` (``load_rules``); everything else that
needs rule metadata (renderers, ``pgolf rule``) gets it from here as data (``rule_catalog``)."""
from __future__ import annotations

import gc
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import auditor
from auditor.context import AuditContext, AuditOptions
from auditor.discover import Discovery, RecordFolder, discover
from auditor.evidence import read_evidence
from auditor.measure import measure
from auditor.model import Problem, RecordResult, Report, RuleInfo
from auditor.policy import verdict


def load_rules() -> dict:
    """Every registered rule class by id (imports the ``rules`` package once)."""
    import rules

    return rules.load_all()


def rules_dir() -> Path:
    """The folder of the ``rules`` package (its sources are part of pgolf's own fingerprint)."""
    import rules

    return Path(rules.__file__).parent


def get_rule(rule_id: str):
    """A rule class by id or code, else None."""
    import rules

    return rules.get(rule_id)


def rule_catalog() -> dict[str, RuleInfo]:
    """Every rule's metadata, as the renderers need it; empty when the rules cannot load (a report
    must still render)."""
    try:
        return {rid: RuleInfo(rid, cls.code, cls.title, cls.ruling, cls.fix, cls.family, cls.default_severity.value)
                for rid, cls in load_rules().items()}
    except Exception:  # a broken rule module must not stop the report of the others
        return {}


def run_rules(ctx: AuditContext) -> tuple[list, list[Problem]]:
    """Every rule, or with ``only_rules`` those rules (with every finding they make) and, for the
    findings reported under a selected id, the rules that may report under it (``reports_under``):
    ``--rule REPORT-CONSISTENCY`` shows what a full run files under REPORT-CONSISTENCY."""
    only = ctx.options.only_rules
    findings = []
    problems: list[Problem] = []
    for rule_id, cls in load_rules().items():
        if only is not None and rule_id not in only and not only.intersection(cls.reports_under):
            continue
        try:
            found = cls().check(ctx)
            findings.extend(found if only is None or rule_id in only else (f for f in found if f.rule in only))
        except Exception as exc:  # a rule bug must not take the audit down; it is reported
            problems.append(Problem(ctx.evidence.folder.display, f"rule {rule_id} could not finish: {type(exc).__name__}: {exc}"))
    findings.sort(key=lambda f: (-f.severity.rank, f.rule, f.file, f.line or 0))
    return findings, problems


@contextmanager
def _fewer_collections(gen0: int = 20_000):
    """Parsing and analysing a record allocates millions of small objects that live until the folder is
    done; at the default threshold (700) the cyclic collector runs thousands of times per folder and
    took ~10 % of the audit's CPU. Collections stay on, just rarer, while a folder is audited."""
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], gen0), old[1], old[2])
    try:
        yield
    finally:
        gc.set_threshold(*old)


def audit_folder(folder: RecordFolder, options: AuditOptions | None = None) -> RecordResult:
    with _fewer_collections():
        return _audit_folder(folder, options)


def _audit_folder(folder: RecordFolder, options: AuditOptions | None = None) -> RecordResult:
    options = options or AuditOptions()
    t0 = time.perf_counter()
    ev = read_evidence(folder)
    ctx = AuditContext(evidence=ev, options=options)
    ctx.measured = measure(ev)
    from auditor import stats as stats_mod

    ctx.stats = stats_mod.compute(ctx)
    from auditor import waivers

    # read before the rules: WAIVER-REASON judges it, the waive step applies it
    ctx.cache[waivers.CTX_KEY] = collected = waivers.collect(ev, options)
    findings, rule_problems = run_rules(ctx)
    rec = RecordResult(
        path=folder.display,
        track=folder.track,
        claims=ev.claims,
        measured=ctx.measured,
        stats=ctx.stats,
        findings=findings,
        errors=ev.problems + rule_problems,
    )
    waivers.apply(rec, ev, options, collected)
    rec.verdict = verdict(rec)
    from auditor.admissible import derive_safely

    rec.admissible = derive_safely(rec, ev.logs)
    rec.seconds = time.perf_counter() - t0
    return rec


def build_report(discovery: Discovery, options: AuditOptions, progress: Callable[[int, int, str], None] | None = None,
                 root: Path | None = None) -> Report:
    """Audit every folder here, in this process (a library call for tests and tools). Entry points
    that audit folders they did not write (``pgolf audit``, the Action, the pre-commit hook) use
    ``auditor.runner.run_isolated``: workers with time and memory limits."""
    report = Report(tool=tool_info(), errors=list(discovery.problems), root=str(root or Path.cwd()), rules=rule_catalog())
    n = len(discovery.folders)
    for i, folder in enumerate(discovery.folders):
        if progress:
            progress(i, n, folder.display)
        try:
            report.records.append(audit_folder(folder, options))
        except Exception as exc:  # last line of defence: one folder, one line, the audit goes on
            report.errors.append(Problem(folder.display, f"audit failed: {type(exc).__name__}: {exc}"))
    if progress:
        progress(n, n, "")
    return report


def audit_paths(paths: list[str], options: AuditOptions | None = None, **kw) -> Report:
    return build_report(discover(paths), options or AuditOptions(), **kw)


def tool_info() -> dict:
    return {"name": "pgolf", "version": auditor.__version__, "information_uri": "https://github.com/openai/parameter-golf"}
