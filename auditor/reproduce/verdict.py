"""Verdict: read the new logs with the same parsers as `pgolf audit` and compare them with the claims.

Per seed and as a mean: reproduced val_bpb vs claimed, within a tolerance taken from the claimed
seed-to-seed spread (3 σ, floor ``TOL_FLOOR_BPB``; printed with the numbers); train and eval time vs
600 s; the measured artifact (the compressed model file the run wrote + the counted code) vs
16,000,000 bytes and vs the claim; optional Welch tests against a previous record.

Diagnosis before judgement: a wall-clock-capped run stops at another step on hardware of another
speed, so each seed's stop step and step time are read from both logs (throughput.py). A score
difference that comes with a different stop step is reported as such (a warning, with both step
counts), never as a dishonest claim; the timing (would this machine, or ``--target``, reach the
claimed step in 600 s) is a finding of its own, apart from the score.
"""
from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor.evidence.logs import read_log
from auditor.measure import seed_measure
from auditor.model import (Finding, Measured, Problem, RecordResult, Report, SeedMeasure, Severity, Stats,
                           relpath)
from auditor.policy import verdict as policy_verdict
from auditor.reproduce import clock as replay_clock
from auditor.reproduce import throughput as tp
from auditor.reproduce.plan import Plan, StepMatch
from auditor.reproduce.run import SeedRun

CAP_BYTES = 16_000_000
CAP_SECONDS = 600.0
TOL_FLOOR_BPB = 0.001  # below the late records' σ ≈ 0.0004–0.0009 × 3; a deterministic rerun lands far inside
TOL_SIGMAS = 3.0
RULES_URL = "https://github.com/openai/parameter-golf#submission-process"
_COMPRESSED = (".ptz", ".zst", ".zstd", ".xz", ".lzma", ".br", ".brotli", ".lrz", ".zlib", ".gz", ".bz2", ".int8", ".int6")
_DENIED = re.compile(r"Network is unreachable|Temporary failure in name resolution|Name or service not known|"
                     r"Read-only file system|\[Errno 30\]|\[Errno 101\]")


@dataclass
class Tolerance:
    bpb: float
    sigma: float | None
    n: int
    source: str

    def describe(self) -> str:
        if self.source == "--tolerance":
            return f"±{self.bpb:.5f} bpb (--tolerance)"
        if self.sigma is None:
            return f"±{self.bpb:.5f} bpb (floor; fewer than 2 claimed seeds, so no spread)"
        return f"±{self.bpb:.5f} bpb = max({TOL_SIGMAS:g} × σ {self.sigma:.5f} of {self.n} claimed seeds ({self.source}), floor {TOL_FLOOR_BPB})"


def tolerance(plan: Plan, override: float | None = None) -> Tolerance:
    if override is not None:
        return Tolerance(override, None, 0, "--tolerance")
    vals = [v for v, _ in plan.claimed_by_seed.values()]
    if len(vals) >= 2:
        s = statistics.stdev(vals)
        return Tolerance(max(TOL_SIGMAS * s, TOL_FLOOR_BPB), s, len(vals), "the per-seed logs")
    claims = plan.evidence.claims if plan.evidence else None
    if claims and claims.val_bpb_std and len(claims.seeds) >= 2:
        s = float(claims.val_bpb_std)
        return Tolerance(max(TOL_SIGMAS * s, TOL_FLOOR_BPB), s, len(claims.seeds), f"{claims.file} val_bpb_std")
    return Tolerance(TOL_FLOOR_BPB, None, len(vals), "floor")


@dataclass
class SeedResult:
    run: SeedRun
    measure: SeedMeasure | None
    log_rel: str | None
    artifact: str | None = None
    artifact_bytes: int | None = None
    problems: list[str] = field(default_factory=list)
    timing: tp.RunTiming | None = None  # where the re-run stopped, as its log says
    clock: replay_clock.ClockReading | None = None  # the replayed clock's real step times

    def real_ms_per_step(self) -> float | None:
        """Measured on this machine: the clock's real step times under a replay, else the log's own."""
        if self.clock is not None and self.clock.real_ms_per_step:
            return self.clock.real_ms_per_step
        return self.timing.ms_per_step if self.timing else None


def _artifact(run: SeedRun, logged_model_bytes: int | None) -> tuple[str | None, int | None]:
    """The compressed model file the run wrote: the new file whose size the log names, else the
    largest new compressed-looking file (the raw ``final_model.pt`` is not the artifact)."""
    cands = []
    for rel in run.new_files:
        p = run.copy / rel
        size = p.stat().st_size
        if logged_model_bytes is not None and size == logged_model_bytes:
            return rel, size
        name = rel.rsplit("/", 1)[-1].lower()
        if name.endswith(_COMPRESSED) or ".ptz" in name:
            cands.append((size, rel))
    if cands:
        size, rel = max(cands)
        return rel, size
    return None, None


def read_seed(run: SeedRun, counted_code: int | None) -> SeedResult:
    path = run.logfile or run.console
    rel = relpath(path, run.dir.parent)
    lf = read_log(path, run.dir.parent, rel)
    res = SeedResult(run, None, rel)
    res.problems += [p.line() for p in lf.problems]
    r = lf.last_run
    if r is None or r.final is None:
        if run.logfile is not None:  # the script's log lacks the score; the console may have it (a crash trace)
            alt = read_log(run.console, run.dir.parent, relpath(run.console, run.dir.parent))
            if alt.last_run and alt.last_run.final:
                lf, r, res.log_rel = alt, alt.last_run, alt.path
    res.timing = tp.timing_of(r, res.log_rel or "")
    res.clock = replay_clock.read(replay_clock.folder_for(run.dir))
    if r is not None:
        sm = seed_measure(lf, r)
        sm.seed = run.seed
        logged_model = r.model_bytes.value if r.model_bytes else None
        res.artifact, res.artifact_bytes = _artifact(run, logged_model)
        if res.artifact_bytes is not None and counted_code is not None:
            sm.bytes_total = res.artifact_bytes + counted_code
            sm.bytes_code = counted_code
        res.measure = sm
    return res


def _tail(path: Path, n: int = 6) -> list[str]:
    try:
        lines = [x for x in path.read_text(encoding="utf-8", errors="replace").splitlines() if x.strip()]
    except OSError:
        return []
    return lines[-n:]


def _denied_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [x for x in text.splitlines() if _DENIED.search(x)][:6]


def _welch(a: list[float], b: list[float], delta: float) -> tuple[float, float, float] | None:
    """One-sided Welch test of mean(a) − mean(b) > delta: (t, df, p)."""
    if len(a) < 2 or len(b) < 2:
        return None
    from scipy import stats as st

    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return None
    t = (statistics.mean(a) - statistics.mean(b) - delta) / se
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return t, df, float(st.t.sf(t, df))


def _finding(rule: str, sev: Severity, file: str, line: int | None, message: str, evidence: list[str], fix: str) -> Finding:
    return Finding(rule=rule, severity=sev, file=file, line=line, message=message, evidence=evidence, ruling=RULES_URL, fix=fix)


def _stop_differs(m: StepMatch, s: SeedResult) -> bool:
    """The re-run stopped at another step than the claimed run: a score difference is then expected."""
    return bool(m.claimed and m.claimed.stop_step and s.timing and s.timing.stop_step
                and s.timing.stop_step != m.claimed.stop_step)


def _explained(m: StepMatch, s: SeedResult) -> str:
    return (f"explained by the stop step: the re-run stopped at step {s.timing.stop_step}, the claimed run at step "
            f"{m.claimed.stop_step} ({m.claimed.where}), because the two machines differ in speed under the same wall-clock cap")


_EXPLAINED_FIX = ("not a sign against the record: compare at the claimed step — run without --no-match-steps (the default "
                  "replays the claimed per-step time, or lifts the cap and runs to the claimed step)")


def _rerun_line(m: StepMatch, s: SeedResult) -> str:
    if s.timing is None:
        return f"re-run: {s.log_rel}: no step lines"
    if m.mode == "replay":
        real = s.real_ms_per_step()
        return (f"re-run: {s.log_rel}: stopped at step {s.timing.stop_step} (the times it printed are replayed)"
                + (f"; real {real:.2f} ms/step measured by the replayed clock" if s.clock and real else ""))
    return f"re-run: {s.log_rel}: {s.timing.describe()}"


def _throughput(plan: Plan, m: StepMatch, s: SeedResult, where: str) -> list[Finding]:
    """REPRODUCE-THROUGHPUT (a different speed, with both step counts) and REPRODUCE-STEP-MATCH (how the
    stop step was matched, and whether it was)."""
    out: list[Finding] = []
    seed = s.run.seed
    c = m.claimed
    real = s.real_ms_per_step()
    rerun_stop = s.timing.stop_step if s.timing else None
    if c and c.stop_step and c.ms_per_step and real:
        cap = c.cap_s if c.cap_s and c.cap_s > 0 else tp.CAP_S
        if m.mode == "raw" and rerun_stop and s.timing and s.timing.stopped_at_cap:
            here = f"it stopped at step {rerun_stop}"
        else:
            here = f"under the claimed {cap:g} s cap it would stop near step {tp.steps_in(cap, real)}"
        ratio = real / c.ms_per_step
        if abs(ratio - 1.0) > 0.25 or (m.mode == "raw" and _stop_differs(m, s)):
            out.append(_finding(
                "REPRODUCE-THROUGHPUT", Severity.WARNING, where, None,
                f"seed {seed}: the claimed run stopped at step {c.stop_step} at {c.ms_per_step:.2f} ms/step; this machine ran "
                f"{real:.2f} ms/step ({ratio:.2f}× the claimed step time): {here}",
                [f"claimed: {c.where}: {c.describe()}", _rerun_line(m, s)],
                "a wall-clock cap stops the same code at another step on hardware of another speed; "
                + ("the score was compared at the claimed step (replayed clock)" if m.mode == "replay" else
                   "the score was compared at the claimed step (cap lifted)" if m.mode == "steps" else
                   "re-run without --no-match-steps to compare the score at the claimed step")))
    if m.mode in ("replay", "steps"):
        matched = rerun_stop is not None and c is not None and rerun_stop == c.stop_step
        how = (f"the record's clock replayed at {m.ms_per_step:.4f} ms/step, its cap as documented" if m.mode == "replay"
               else "the cap lifted and the step count set: " + " ".join(f"{k}={v}" for k, v in m.env.items()))
        ev = [f"claimed: {c.where}: {c.describe()}" if c else "claimed: no log",
              _rerun_line(m, s) + f"; real wall clock of the whole seed {s.run.outcome.seconds:.1f} s"]
        if s.clock:
            ev.append(f"replayed clock: {s.clock.steps} optimizer steps (warm-up included), real {s.clock.real_s:.1f} s"
                      + (f", {s.clock.leaked_s:.1f} s of idle real time let through" if s.clock.leaked_s else ""))
        elif m.mode == "replay" and s.run.outcome.returncode == 0:
            ev.append("the replayed clock wrote no reading: the record may not step a torch optimizer")
        ev += [f"note: {n}" for n in m.notes if n]
        sev = Severity.INFO if matched else Severity.WARNING
        msg = (f"seed {seed}: compared at the claimed stop step {c.stop_step if c else '?'}" if matched else
               f"seed {seed}: the re-run stopped at step {rerun_stop} instead of the claimed step {c.stop_step if c else '?'}")
        out.append(_finding("REPRODUCE-STEP-MATCH", sev, where, None, f"{msg} ({how})", ev,
                            "" if matched else "the record's stop rule differs from the baseline's; pass --env ITERATIONS=<step> "
                            "or --no-replay-clock"))
    elif m.notes and c is not None and m.notes[0] not in ("--no-match-steps", "the claimed run had no wall-clock cap"):
        out.append(_finding("REPRODUCE-STEP-MATCH", Severity.INFO, where, None,
                            f"seed {seed}: run as documented, not step-matched: {m.notes[0]}", [f"note: {n}" for n in m.notes[1:]], ""))
    return out


def _timing(plan: Plan, seeds: list[SeedResult]) -> Finding | None:
    """REPRODUCE-TIMING: would this machine (or --target) reach the claimed stop step within 600 s?"""
    pairs = [(plan.match_for(s.run.seed), s) for s in seeds]
    claimed = [m.claimed.stop_step for m, _ in pairs if m.claimed and m.claimed.stop_step]
    reals = [s.real_ms_per_step() for _, s in pairs if s.real_ms_per_step()]
    if not claimed or (not reals and not plan.target):
        return None
    n = max(claimed)
    hw = f"{plan.nproc}×{plan.gpu.names[0] if plan.gpu.names else 'CPU'}"
    ev: list[str] = []
    lines: list[str] = []
    sev = Severity.INFO
    if reals:
        real = statistics.mean(reals)
        k = tp.steps_in(tp.CAP_S, real)
        lines.append(f"this machine ({hw}) runs {real:.2f} ms/step: {k} steps in {tp.CAP_S:.0f} s, "
                     + ("reaching" if k >= n else "short of") + f" the claimed step {n}")
        ev.append(f"measured: {real:.2f} ms/step (mean over {len(reals)} seed(s))")
        on_target = plan.target == "8xH100" and plan.nproc == 8 and any("H100" in x for x in plan.gpu.names)
        if on_target and k < n:
            sev = Severity.WARNING
    if plan.target:
        t = tp.target(plan.target)
        first = next((m.claimed for m, _ in pairs if m.claimed), None)
        shape = None
        if plan.evidence and first:
            rel = first.where.rsplit(":", 1)[0] if first.where.rsplit(":", 1)[-1].isdigit() else first.where
            shape = tp.shape_of(plan.logged, tp.log_text(plan.record, rel))
        if shape is None:
            lines.append(f"{t.name}: cannot project (the claimed log shows no model_params or train_batch_tokens)")
        else:
            ms, ratio = tp.project_ms_per_step(t, shape)
            k = tp.steps_in(tp.CAP_S, ms)
            lines.append(f"{t.name}: ≈{ms:.4g} ms/step projected ({ratio:.3g}× the baseline's training FLOPs per step × "
                         f"{t.baseline_ms_per_step} ms): ≈{k} steps in {tp.CAP_S:.0f} s vs the claimed {n}")
            ev.append(f"calibration: {t.source}; shape {shape}")
            if k < n / 2:  # a FLOP projection is good to about 2× (kernels, precision, compile)
                sev = Severity.WARNING
    return _finding("REPRODUCE-TIMING", sev, "", None, "timing, apart from the score: " + "; ".join(lines), ev,
                    "" if sev is Severity.INFO else "the claimed step count is not reachable in 600 s on the target at this "
                    "throughput: check the hardware the record states and its train_time lines")


def build_result(plan: Plan, seeds: list[SeedResult], tol: Tolerance, against: list[dict[str, Any]] | None = None,
                 probe_findings: list[Finding] | None = None) -> RecordResult:
    ev = plan.evidence
    claims = ev.claims if ev else None
    findings: list[Finding] = []
    rows = []
    explained_seeds: list[int] = []
    for s in seeds:
        run, sm = s.run, s.measure
        where = s.log_rel or relpath(run.console, plan.run_dir)
        if run.outcome.timed_out:
            findings.append(_finding("REPRODUCE-FAILED", Severity.ERROR, where, None,
                                     f"seed {run.seed}: killed after the {plan.limit_s:.0f} s wall-clock limit", _tail(run.console),
                                     "raise --timeout if the hardware is slower than 8×H100, or fix the hang"))
        elif run.outcome.returncode != 0:
            findings.append(_finding("REPRODUCE-FAILED", Severity.ERROR, where, None,
                                     f"seed {run.seed}: torchrun exited with status {run.outcome.returncode}", _tail(run.console),
                                     "read the console log in the run directory; run `pgolf reproduce --dry-run` for missing pieces"))
        denied = _denied_lines(run.console)
        if denied:
            net = any(re.search(r"unreachable|resolution|service not known|Errno 101", x) for x in denied)
            what = "open a network connection" if net else "write outside its run directory"
            findings.append(_finding("SANDBOX-DENIED", Severity.ERROR, relpath(run.console, plan.run_dir), None,
                                     f"seed {run.seed}: the record tried to {what}; the sandbox refused", denied,
                                     "a record may not download or write anything outside its folder during training or evaluation"))
        if sm is None or sm.val_bpb is None:
            if run.outcome.returncode == 0 and not run.outcome.timed_out:
                findings.append(_finding("REPRODUCE-FAILED", Severity.ERROR, where, None,
                                         f"seed {run.seed}: the run printed no final val_bpb line", _tail(run.console),
                                         "the script must print its final `… val_loss:… val_bpb:…` line"))
            continue
        claimed = plan.claimed_by_seed.get(run.seed)
        m = plan.match_for(run.seed)
        findings += _throughput(plan, m, s, where)
        explained = _stop_differs(m, s)
        row = {"seed": run.seed, "val_bpb": sm.val_bpb, "val_loss": sm.val_loss, "claimed": claimed[0] if claimed else None,
               "delta": (sm.val_bpb - claimed[0]) if claimed else None, "train_time_ms": sm.train_time_ms,
               "eval_time_ms": sm.eval_time_ms, "artifact": s.artifact, "artifact_bytes": s.artifact_bytes,
               "bytes_total": sm.bytes_total, "log": where, "mode": m.mode,
               "claimed_stop_step": m.claimed.stop_step if m.claimed else None, "stop_step": s.timing.stop_step if s.timing else None,
               "claimed_ms_per_step": m.claimed.ms_per_step if m.claimed else None, "replayed_ms_per_step": m.ms_per_step,
               "real_ms_per_step": s.real_ms_per_step(), "real_seconds": run.outcome.seconds}
        rows.append(row)
        if claimed and abs(sm.val_bpb - claimed[0]) > tol.bpb and explained:
            explained_seeds.append(run.seed)
            findings.append(_finding("REPRODUCE-MISMATCH", Severity.WARNING, where, None,
                                     f"seed {run.seed}: reproduced val_bpb {sm.val_bpb:.8f} vs claimed {claimed[0]:.8f} ({claimed[1]}): "
                                     f"Δ {sm.val_bpb - claimed[0]:+.8f}, outside tolerance {tol.describe()}; {_explained(m, s)}",
                                     [f"reproduced: {sm.label} val_bpb:{sm.val_bpb:.8f} at step {s.timing.stop_step}",
                                      f"claimed: {claimed[1]} val_bpb:{claimed[0]:.8f} at step {m.claimed.stop_step}"],
                                     _EXPLAINED_FIX))
        elif claimed and abs(sm.val_bpb - claimed[0]) > tol.bpb:
            findings.append(_finding("REPRODUCE-MISMATCH", Severity.ERROR, where, None,
                                     f"seed {run.seed}: reproduced val_bpb {sm.val_bpb:.8f} vs claimed {claimed[0]:.8f} ({claimed[1]}): "
                                     f"Δ {sm.val_bpb - claimed[0]:+.8f}, outside tolerance {tol.describe()}{_process_count_note(plan, run.seed)}",
                                     [f"reproduced: {sm.label} val_bpb:{sm.val_bpb:.8f}", f"claimed: {claimed[1]} val_bpb:{claimed[0]:.8f}"],
                                     "the logs must come from the submitted code and configuration"))
        sr = plan.claimed_seed_results.get(run.seed)
        if sr is not None and (not claimed or "seed_results" not in claimed[1]) and abs(sm.val_bpb - sr) > tol.bpb and not explained:
            file = plan.evidence.claims.file if plan.evidence else "submission.json"
            findings.append(_finding("REPRODUCE-MISMATCH", Severity.ERROR, file or "", None,
                                     f"seed {run.seed}: reproduced val_bpb {sm.val_bpb:.8f} vs {sr:.8f} in {file} seed_results: "
                                     f"Δ {sm.val_bpb - sr:+.8f}, outside tolerance {tol.describe()}",
                                     [f"reproduced: {sm.label} val_bpb:{sm.val_bpb:.8f}", f"{file} seed_results[{run.seed}].val_bpb: {sr}"],
                                     "submission.json must state what the runs produced"))
        for what, ms, rule in (("train", sm.train_time_ms, "REPRODUCE-TIME-TRAIN"), ("eval", sm.eval_time_ms, "REPRODUCE-TIME-EVAL")):
            # A replayed clock prints replayed times, and a lifted cap trains as long as this machine needs:
            # neither is the record's time on its hardware (REPRODUCE-TIMING projects that).
            if m.mode == "replay" or (m.mode == "steps" and what == "train"):
                continue
            if ms is not None and ms / 1000.0 > CAP_SECONDS:
                findings.append(_finding(rule, Severity.ERROR, where, None,
                                         f"seed {run.seed}: {what} took {ms / 1000:.1f} s > {CAP_SECONDS:.0f} s on {plan.gpu.names[0] if plan.gpu.names else 'CPU'}",
                                         [], f"{what} must finish in 600 s on 8×H100"))
        if sm.bytes_total is not None and sm.bytes_total > CAP_BYTES:
            findings.append(_finding("REPRODUCE-ARTIFACT-16MB", Severity.ERROR, s.artifact or where, None,
                                     f"seed {run.seed}: artifact {s.artifact_bytes:,} B + code {sm.bytes_code:,} B = {sm.bytes_total:,} B > {CAP_BYTES:,}",
                                     [], "shrink the model or compress harder; code bytes count"))
        if s.artifact is None:
            findings.append(_finding("REPRODUCE-NO-ARTIFACT", Severity.WARNING, where, None,
                                     f"seed {run.seed}: the run wrote no compressed model file that could be measured "
                                     f"(new files: {', '.join(run.new_files[:6]) or 'none'})", [],
                                     "the script should write its compressed artifact (e.g. final_model.int8.ptz) into its folder"))
    vals = [r["val_bpb"] for r in rows]
    mean = statistics.mean(vals) if vals else None
    claimed_mean = claims.val_bpb if claims and claims.val_bpb is not None else None
    if mean is not None and claimed_mean is not None and len(vals) == len(plan.seeds):
        if abs(mean - claimed_mean) > tol.bpb and explained_seeds:
            findings.append(_finding("REPRODUCE-MISMATCH", Severity.WARNING, claims.file or "", claims.key_lines.get("val_bpb"),
                                     f"mean reproduced val_bpb {mean:.8f} over {len(vals)} seed(s) vs claimed {claimed_mean:.8f}: "
                                     f"Δ {mean - claimed_mean:+.8f}, outside tolerance {tol.describe()}; seed(s) "
                                     f"{', '.join(map(str, explained_seeds))} stopped at another step than claimed",
                                     [f"{claims.file}: val_bpb {claimed_mean}"] + [f"seed {r['seed']}: {r['val_bpb']:.8f} at step {r['stop_step']}"
                                                                                   for r in rows], _EXPLAINED_FIX))
        elif abs(mean - claimed_mean) > tol.bpb:
            findings.append(_finding("REPRODUCE-MISMATCH", Severity.ERROR, claims.file or "", claims.key_lines.get("val_bpb"),
                                     f"mean reproduced val_bpb {mean:.8f} over {len(vals)} seed(s) vs claimed {claimed_mean:.8f}: "
                                     f"Δ {mean - claimed_mean:+.8f}, outside tolerance {tol.describe()}{_process_count_note(plan, None)}",
                                     [f"{claims.file}: val_bpb {claimed_mean}"] + [f"seed {r['seed']}: {r['val_bpb']:.8f}" for r in rows],
                                     "submission.json must state the mean of the runs the logs show"))
    totals = [r["bytes_total"] for r in rows if r["bytes_total"] is not None]
    if totals and claims and claims.bytes_total is not None and max(totals) != claims.bytes_total:
        findings.append(_finding("REPRODUCE-BYTES-MISMATCH", Severity.WARNING, claims.file or "", claims.key_lines.get("bytes_total"),
                                 f"measured artifact {max(totals):,} B vs claimed bytes_total {claims.bytes_total:,} B "
                                 f"(Δ {max(totals) - claims.bytes_total:+,})"
                                 + ("; the re-run stopped at another step, so its weights and their compressed size differ"
                                    if explained_seeds else ""), [],
                                 "state the measured size of the compressed model plus the counted code"))
    stats = Stats(n_seeds=len(vals), mean_bpb=mean, std_bpb=statistics.stdev(vals) if len(vals) > 1 else None)
    for a in against or []:
        _significance(stats, rows, a, findings)
    timing = _timing(plan, seeds)
    if timing is not None:
        findings.append(timing)
    findings += probe_findings or []
    # A score compared at another step than claimed reproduced nothing, even when that is no one's fault.
    ok = (len(vals) == len(plan.seeds)) and not any(f.severity is Severity.ERROR for f in findings) and not explained_seeds
    if ok:
        findings.append(_finding("REPRODUCED", Severity.INFO, "", None,
                                 f"reproduced on {plan.nproc}×{plan.gpu.names[0] if plan.gpu.names else 'CPU'}: mean val_bpb {mean:.8f} over "
                                 f"{len(vals)} seed(s)" + (f" vs claimed {claimed_mean:.8f} (Δ {mean - claimed_mean:+.8f})" if claimed_mean is not None else "")
                                 + f", within tolerance {tol.describe()}",
                                 [f"seed {r['seed']}: val_bpb {r['val_bpb']:.8f}" + (f" (claimed {r['claimed']:.8f})" if r["claimed"] is not None else "")
                                  + (f", train {r['train_time_ms'] / 1000:.1f} s" if r["train_time_ms"] is not None else "")
                                  + (f", artifact {r['bytes_total']:,} B" if r["bytes_total"] is not None else "") for r in rows], ""))
    losses = [r["val_loss"] for r in rows if r["val_loss"] is not None]
    measured = Measured(val_bpb=mean, val_loss=statistics.mean(losses) if losses and len(losses) == len(rows) else None, seeds=[s.measure for s in seeds if s.measure], bytes_total=max(totals) if totals else None,
                        bytes_source="measured" if totals else None)
    measured.extra["reproduce"] = {"run_dir": str(plan.run_dir), "tolerance_bpb": tol.bpb, "tolerance": tol.describe(),
                                   "seed_sigma": tol.sigma, "claimed_mean": claimed_mean, "seeds": rows,
                                   "nproc_per_node": plan.nproc, "sandbox": plan.sandbox, "reproduced": ok,
                                   "target": plan.target, "match": {str(k): v.mode for k, v in plan.matching.items()}}
    rec = RecordResult(path=plan.display, track=plan.track, claims=claims or RecordResult(path="").claims, measured=measured,
                       stats=stats, findings=sorted(findings, key=lambda f: (-f.severity.rank, f.rule)),
                       errors=[Problem(s.log_rel or "", p) for s in seeds for p in s.problems])
    rec.verdict = policy_verdict(rec)
    return rec


def _significance(stats: Stats, rows: list[dict], against: dict[str, Any], findings: list[Finding]) -> None:
    """The rule as written (val_loss, δ = 0.005 nats, α = 0.01) and the practice (bpb, δ = 0), records.md §5.2."""
    new_bpb = [r["val_bpb"] for r in rows]
    old_bpb = against.get("bpb") or []
    res = _welch(old_bpb, new_bpb, 0.0)
    stats.against = against.get("path")
    if res is None:
        findings.append(_finding("REPRODUCE-SIGNIFICANCE", Severity.WARNING, "", None,
                                 f"cannot test against {against.get('path')}: need ≥ 2 seeds on each side "
                                 f"(reproduced {len(new_bpb)}, previous {len(old_bpb)})", [], "run ≥ 3 seeds"))
        return
    t, df, p = res
    stats.p_practice = p
    stats.delta_nats = None
    old_loss, new_loss = against.get("loss") or [], [r.get("val_loss") for r in rows]
    readme = None
    if old_loss and all(x is not None for x in new_loss):
        readme = _welch(old_loss, new_loss, 0.005)  # type: ignore[arg-type]
        stats.delta_nats = statistics.mean(old_loss) - statistics.mean(new_loss)  # type: ignore[arg-type]
    stats.p_readme = readme[2] if readme else None
    sev = Severity.INFO if (readme and readme[2] < 0.01) else Severity.WARNING
    findings.append(_finding("REPRODUCE-SIGNIFICANCE", sev, "", None,
                             f"vs {against.get('path')}: Welch one-sided, practice (bpb, δ=0): t={t:.2f}, df={df:.2f}, p={p:.4g}; "
                             + (f"rule (val_loss, δ=0.005 nats, α=0.01): t={readme[0]:.2f}, p={readme[2]:.4g}" if readme else "rule test needs val_loss on both sides"),
                             [], "the README rule asks for ≥ 0.005 nats at p < 0.01"))


def build_report(rec: RecordResult) -> Report:
    from auditor.pipeline import tool_info

    return Report(records=[rec], tool=tool_info())


def _process_count_note(plan, seed: int | None) -> str:
    """When the record's logs show another process count than this run used, a mismatch may be
    that alone (the batch splits differently): say so instead of leaving the reviewer to guess."""
    ev = getattr(plan, "evidence", None)
    if ev is None:
        return ""
    sizes = {r.world_size for lf in ev.logs for r in lf.runs
             if r.world_size and (seed is None or r.seed in (seed, None) or lf.seed_from_name == seed)}
    if len(sizes) != 1 or plan.nproc in sizes:
        return ""
    (world,) = sizes
    return (f"; the record's logs show {world} processes (world_size:{world}) and this run used {plan.nproc}: "
            "a different process count alone can move the result (rerun with --nproc {world} to compare like with like)").replace(
        "{world}", str(world))
