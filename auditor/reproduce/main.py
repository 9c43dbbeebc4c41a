"""`pgolf reproduce` behind the CLI: plan → preflight → run each seed → verdict → report."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from auditor.model import Finding
from auditor.report import render


@dataclass
class ReproduceOptions:
    record: str
    seeds: list[int] | None = None
    nproc: int | None = None
    nnodes: str | None = None
    rdzv_endpoint: str | None = None
    rdzv_backend: str = "c10d"
    env: dict[str, str] = field(default_factory=dict)
    data: str | None = None
    tokenizer: str | None = None
    run_dir: str | None = None
    timeout_s: float | None = None
    dry_run: bool = False
    force: bool = False
    no_sandbox: bool = False
    quiet: bool = False
    fmt: str = "text"
    output: str | None = None
    against: list[str] = field(default_factory=list)
    tolerance: float | None = None
    probe: bool = False
    match_steps: bool | None = None  # None: on when the claimed stop step is known (issue 18)
    replay_clock: bool | None = None  # None: on when matching steps and the claimed log has step times
    target: str | None = None  # a named machine for the timing projection ("8xH100")


def _say(msg: str) -> None:
    print(msg, file=sys.stderr)


def _against(paths: list[str]) -> list[dict]:
    """Per-seed finals of previous records, read by the audit's own reader."""
    from auditor.discover import discover
    from auditor.evidence import read_evidence
    from auditor.measure import measure

    out = []
    for p in paths:
        disc = discover([p])
        for folder in disc.folders[:1]:
            m = measure(read_evidence(folder))
            out.append({"path": folder.display, "bpb": [s.val_bpb for s in m.seeds if s.val_bpb is not None],
                        "loss": [s.val_loss for s in m.seeds if s.val_loss is not None]})
        for prob in disc.problems:
            _say(f"pgolf: --against {prob.line()}")
    return out


def reproduce(o: ReproduceOptions) -> int:
    from auditor.reproduce.plan import PlanError, build_plan
    from auditor.reproduce.preflight import preflight
    from auditor.reproduce.sandbox import bwrap_works

    sandbox, sandbox_error = "none", None
    if not o.no_sandbox:
        ok, info = bwrap_works()
        sandbox, sandbox_error = ("bwrap", None) if ok else ("none", info)
    try:
        plan = build_plan(o.record, seeds=o.seeds, nproc=o.nproc, env=o.env, data=o.data, tokenizer=o.tokenizer, run_dir=o.run_dir,
                          limit_s=o.timeout_s, nnodes=o.nnodes, rdzv_endpoint=o.rdzv_endpoint, rdzv_backend=o.rdzv_backend,
                          sandbox=sandbox, match_steps=o.match_steps, replay_clock=o.replay_clock, target=o.target)
    except PlanError as exc:
        _say(f"pgolf: {exc}")
        return 2
    checks = preflight(plan, sandbox_error=sandbox_error)
    if o.no_sandbox:  # asked for explicitly: say it, do not block on it
        for c in checks:
            if c.name == "sandbox":
                c.warning = True
    blocking = [c for c in checks if c.blocking]
    if o.dry_run or not o.quiet or blocking:
        print("\n".join(plan.describe()), file=sys.stderr if not o.dry_run else sys.stdout)
        out = sys.stdout if o.dry_run else sys.stderr
        print("preflight", file=out)
        for c in checks:
            print("  " + c.line(), file=out)
    if o.dry_run:
        return 1 if blocking else 0
    if blocking and not o.force:
        _say(f"pgolf: {len(blocking)} preflight check(s) failed; nothing was started (fix them, or pass --force)")
        return 1
    return _execute(plan, o, checks)


def _execute(plan, o: ReproduceOptions, checks) -> int:
    from auditor.reproduce.manifest import write_manifest
    from auditor.reproduce.progress import Progress
    from auditor.reproduce.run import run_seed
    from auditor.reproduce.verdict import build_report, build_result, read_seed, tolerance

    plan.run_dir.mkdir(parents=True, exist_ok=True)
    (plan.run_dir / "plan.txt").write_text("\n".join(plan.describe() + ["preflight"] + ["  " + c.line() for c in checks]) + "\n",
                                           encoding="utf-8")
    write_manifest(plan)
    counted = plan.evidence.code.counted_bytes() if plan.evidence and plan.evidence.code.files else None
    progress = Progress(len(plan.seeds), quiet=o.quiet)
    results = []
    try:
        for k, seed in enumerate(plan.seeds, 1):
            progress.start_seed(k, seed)
            run = run_seed(plan, seed, progress)
            res = read_seed(run, counted)
            status = (f"timed out after {plan.limit_s:.0f} s" if run.outcome.timed_out else
                      f"exit {run.outcome.returncode}, {run.outcome.seconds:.1f} s"
                      + (f", val_bpb {res.measure.val_bpb:.8f}" if res.measure and res.measure.val_bpb is not None else ""))
            progress.end_seed(status)
            results.append(res)
    finally:
        progress.stop()
    probe_findings: list[Finding] = []
    if o.probe:
        from auditor.reproduce.probes import probe_record

        probe_findings = probe_record(plan.record, sandbox=plan.sandbox, work=plan.run_dir / "probes", plan=plan).findings
    rec = build_result(plan, results, tolerance(plan, o.tolerance), _against(o.against), probe_findings)
    report = build_report(rec)
    for fmt, name in (("json", "report.json"), ("text", "report.txt"), ("markdown", "report.md")):
        try:
            (plan.run_dir / name).write_text(render(report, fmt), encoding="utf-8")
        except Exception as exc:  # a renderer still being written must not lose the run
            _say(f"pgolf: could not write {name}: {type(exc).__name__}: {exc}")
    text = render(report, o.fmt)
    if o.output:
        Path(o.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    if not o.quiet:
        _say(f"run directory: {plan.run_dir}")
    return 0 if rec.measured.extra["reproduce"]["reproduced"] else 1


def parse_seeds(text: str | None) -> list[int] | None:
    if not text:
        return None
    return [int(x) for x in text.replace(" ", "").split(",") if x]


def parse_env(items: list[str]) -> dict[str, str]:
    out = {}
    for it in items:
        if "=" not in it:
            raise ValueError(f"--env {it!r}: expected NAME=VALUE")
        k, v = it.split("=", 1)
        out[k.strip()] = v
    return out

