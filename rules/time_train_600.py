"""TIME-TRAIN-600 (rules.md §1.4): training ≤ 600 s on 8×H100, per seed, from the logs."""
from __future__ import annotations

from auditor.evidence.runs import gptq_after_stop_s
from auditor.model import Severity
from rules.base import Invalid, Rule, Valid, register
from rules.time_logs import REF_GPUS, TRAIN_CAP_MS, baseline_log, three_seeds, used_runs

ONE_STEP_MS = 2_000.0  # the loop checks the clock after each step; merged logs overshoot by ≤ 715 ms


@register
class TimeTrain600(Rule):
    """Training must finish within 600 s of wallclock on 8×H100 SXM, for every seed used as evidence.

    Read per seed from the log: the ``stopping_early … train_time`` (else the last step line) against
    600,000 ms; an overshoot of about one step is tolerated and said (the loop only checks the clock
    after each step). ``world_size × max_wallclock_seconds`` is compared with 8 × 600. GPTQ Hessian
    collection on training batches that the log shows after the cap adds to the training time: the
    merged #1855 did this for ≈4.7 s with ``GPTQ_RESERVE_SECONDS=0.5`` while #1868/#1950 were made to
    re-run, so a few seconds past the cap is a contested warning, more is an error.

    Ruling: README ("Reproducibly run in under 10 minutes on 8xH100s"); merged #1019 README; Issue #677;
    #1868 and #1950 compliance re-runs.
    """

    id = "TIME-TRAIN-600"
    code = "PG401"
    title = "training exceeds the 600 s budget"
    family = "time"
    ruling = "https://github.com/openai/parameter-golf/pull/1868"
    fix = "Stop training inside 600 s on 8 GPUs; reserve the GPTQ calibration time with GPTQ_RESERVE_SECONDS so it fits."
    default_severity = Severity.ERROR

    VALID = [
        Valid({"train_gpt.py": "print(1)\n", **three_seeds()}, note="599.8 s"),
        Valid({"train_gpt.py": "print(1)\n", **three_seeds(train_ms=600_400)}, note="one-step overshoot: info only"),
        Valid({"train_gpt.py": "print(1)\n", **three_seeds(train_ms=588_000, gptq="gptq:reserving 12s, effective=588000ms\n"
                                                            "GPTQ:collected 67 Hessians in 11.3s\n")}, note="reserve covers GPTQ"),
    ]
    INVALID = [
        Invalid({"train_gpt.py": "print(1)\n", **three_seeds(train_ms=655_000)}, note="55 s over"),
        Invalid({"train_gpt.py": "print(1)\n", **three_seeds(world_size=4, cap_s=2400.0)}, note="4 GPUs × 2400 s"),
        Invalid({"train_gpt.py": "print(1)\n", **three_seeds(train_ms=599_600, gptq="GPTQ:collected 67 Hessians in 4.7s\n")},
                expect=Severity.WARNING, note="GPTQ 4.3 s past the cap (the #1855 pattern)"),
        Invalid({"train_gpt.py": "print(1)\n", **three_seeds(train_ms=599_000, gptq="GPTQ:collected 67 Hessians in 46.0s\n")},
                note="GPTQ 45 s past the cap (#634 as first submitted)"),
    ]

    def check(self, ctx):
        if ctx.evidence.folder.track == "non_record":
            return  # the non-record track allows unlimited compute (README)
        for lf, run in used_runs(ctx):
            seed = run.seed if run.seed is not None else lf.seed_from_name
            who = f"seed {seed}" if seed is not None else lf.path
            ws, cap = run.world_size, run.max_wallclock_seconds
            if ws and cap and cap > 0 and ws * cap > REF_GPUS * TRAIN_CAP_MS / 1000 + 1e-6:
                yield self.finding(lf.path, run.first_line, f"{who}: world_size {ws} × max_wallclock_seconds {cap:g} = {ws * cap:g} GPU·s, "
                                   f"more than 8 × 600 = 4800 GPU·s", evidence=[f"world_size:{ws}", f"max_wallclock_seconds:{cap:g}"])
            elif ws and cap and ws != REF_GPUS and cap * 1000 > TRAIN_CAP_MS:
                yield self.finding(lf.path, run.first_line, f"{who}: world_size {ws} × {cap:g} s stays within 8 × 600 GPU·s; whether "
                                   "such a run can stand for 8×H100 is for HW-8XH100", severity=Severity.INFO,
                                   evidence=[f"world_size:{ws}", f"max_wallclock_seconds:{cap:g}"])
            if cap == 0:
                yield self.finding(lf.path, run.first_line, f"{who}: max_wallclock_seconds is 0, so the wallclock cap is disabled",
                                   severity=Severity.WARNING, evidence=["max_wallclock_seconds:0"])
            t = run.train_time_ms
            if t is None:
                continue
            src = run.stop
            line, text = (src.line, src.text) if src else (run.last_line, f"train_time:{t:.0f}ms (last step line)")
            gptq = gptq_after_stop_s(run)
            total = t + (gptq[0] * 1000 if gptq else 0.0)
            over = total - TRAIN_CAP_MS
            evidence = [text] + ([gptq[2]] if gptq else [])
            if over <= 0:
                continue
            if gptq and t <= TRAIN_CAP_MS + ONE_STEP_MS:
                sev = Severity.INFO if over <= ONE_STEP_MS else Severity.WARNING if over <= 10_000 else Severity.ERROR
                yield self.finding(lf.path, gptq[1], f"{who}: training stopped at {t / 1000:.1f} s and GPTQ read training batches for "
                                   f"{gptq[0]:.1f} s after it: {total / 1000:.1f} s of training-data access, {over / 1000:.1f} s past 600 s"
                                   + (" (contested: merged #1855 did this with a 0.5 s reserve, #1868/#1950 had to re-run)" if sev is Severity.WARNING
                                      else " (within a step of the cap: the reserve nearly covered it)" if sev is Severity.INFO else ""),
                                   severity=sev, evidence=evidence)
            elif over <= ONE_STEP_MS:
                yield self.finding(lf.path, line, f"{who}: train_time {t:,.0f} ms is {over:,.0f} ms past 600,000 ms: a one-step overshoot "
                                   "(the loop checks the clock after each step), tolerated", severity=Severity.INFO, evidence=evidence)
            else:
                yield self.finding(lf.path, line, f"{who}: train_time {total:,.0f} ms exceeds 600,000 ms by {over / 1000:.1f} s",
                                   evidence=evidence)
