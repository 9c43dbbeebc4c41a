"""TIME-EVAL-600 (rules.md §1.4): evaluation ≤ 600 s on 8×H100, from the logs."""
from __future__ import annotations

import re

from auditor.model import Severity
from rules.base import Invalid, Rule, Valid, register
from rules.time_logs import EVAL_CAP_S, three_seeds, used_runs

_WARMUP = re.compile(r"warm(?:ing)?[ _-]?up", re.I)
_TIMER = re.compile(r"beginning .*eval timer|eval timer start", re.I)
_ADAPT_TOTAL = re.compile(r"(?:done\s+)?total_time[:=]\s*([\d.]+)\s*s")
_SYNTHETIC = re.compile(r"random tokens|no val data|synthetic|dummy", re.I)


_ADAPT_LINE = re.compile(r"^(?:prequant_ttt|pre_quant_ttt|pre-eval ttt)\S*\s.*total_time[:=]\s*([\d.]+)\s*s", re.I | re.M)


def _adaptation(ctx, lf, run):
    """(line, text, seconds) of a val-adaptation stage before scoring (pre-quant TTT), read from the log text."""
    text = lf.text
    if text is None:
        return None
    for m in _ADAPT_LINE.finditer(text):
        line = text[: m.start()].count("\n") + 1
        if run.first_line <= line <= run.last_line:
            return line, m.group(0).strip(), float(m.group(1))
    return None


def scoring_eval_ms(run) -> tuple[float | None, str]:
    """Eval time of the evaluation(s) that produce the reported score, and where it came from."""
    if run.total_eval_time_s is not None:
        return run.total_eval_time_s * 1000.0, "total_eval_time"
    final = run.final
    if final is None:
        return None, ""
    if final.eval_time_ms is not None:
        return final.eval_time_ms, final.label
    stem = final.label.removesuffix("_exact")
    for e in reversed(run.evals):
        if e is not final and e.label.removesuffix("_exact") == stem and e.eval_time_ms is not None:
            return e.eval_time_ms, e.label
    return None, ""


@register
class TimeEval600(Rule):
    """Evaluation must take at most 600 s on 8×H100, separately from training; eval-time adaptation
    (TTT, caches, precompute over val) counts.

    The time of the evaluation(s) that produce the reported score is read per seed
    (``total_eval_time`` when the script prints it, else the final line's ``eval_time``); diagnostic
    evaluations (pre-quantization, quantized roundtrip before TTT) are listed separately. What the timer
    covers is contested: merged records start the TTT eval timer after a compile warm-up; a warm-up on
    random tokens is accepted by merge (#1855), one that may touch validation tokens is reported as a
    contested warning (#1530, #1899/#1900 threads).

    Ruling: README FAQ; cocohearts on #1972 ("eval operations around 688s, over the 600s eval cap").
    """

    id = "TIME-EVAL-600"
    code = "PG402"
    title = "evaluation exceeds the 600 s budget"
    family = "time"
    ruling = "https://github.com/openai/parameter-golf/pull/1972"
    fix = "Make the scoring evaluation finish inside 600 s on 8 GPUs, with every val-dependent step inside the timer."
    default_severity = Severity.ERROR

    VALID = [Valid({"train_gpt.py": "print(1)\n", **three_seeds(eval_ms=420_000)})]
    INVALID = [
        Invalid({"train_gpt.py": "print(1)\n", **three_seeds(eval_ms=688_000)}, note="688 s, as #1972"),
        Invalid({"train_gpt.py": "print(1)\n", **three_seeds(eval_ms=300_000, after="ttt:warming up compile on val batches\n"
                                                           "ttt:compile warmup done (120.0s)\nbeginning TTT eval timer\n")},
                expect=Severity.WARNING, note="compile warm-up on val before the timer"),
    ]

    def check(self, ctx):
        if ctx.evidence.folder.track == "non_record":
            return  # the non-record track has no time limit (README)
        for lf, run in used_runs(ctx):
            seed = run.seed if run.seed is not None else lf.seed_from_name
            who = f"seed {seed}" if seed is not None else lf.path
            ms, label = scoring_eval_ms(run)
            adapt = _adaptation(ctx, lf, run)
            if adapt and ms is not None and run.total_eval_time_s is None:
                ms += adapt[2] * 1000  # adaptation on val before scoring is evaluation time
                label = f"{label} + {adapt[1].split()[0]} {adapt[2]:.1f}s"
            diag = [f"{e.label} {e.eval_time_ms / 1000:.1f}s" for e in run.evals
                    if e.after_stop and e is not run.final and e.eval_time_ms is not None and e.label.removesuffix("_exact") != label.removesuffix("_exact")]
            if ms is not None and ms > EVAL_CAP_S * 1000:
                ev = ([run.final.text] if run.final else []) + ([adapt[1]] if adapt else [])
                yield self.finding(lf.path, run.final.line if run.final else None,
                                   f"{who}: the scoring evaluation ({label}) took {ms / 1000:.1f} s, over the 600 s eval cap"
                                   + (f"; diagnostic evals not counted: {', '.join(diag)}" if diag else ""), evidence=ev)
            ttt = run.markers.get("ttt", []) + run.markers.get("prefill", [])
            timer = next(((ln, t) for ln, t in ttt if _TIMER.search(t)), None)
            if timer is None:
                continue
            for ln, t in ttt:
                if ln < timer[0] and _WARMUP.search(t):
                    if _SYNTHETIC.search(t):
                        yield self.finding(lf.path, ln, f"{who}: compile warm-up on synthetic tokens before the eval timer (accepted by merge, #1855)",
                                           severity=Severity.INFO, evidence=[t, timer[1]])
                    else:
                        yield self.finding(lf.path, ln, f"{who}: a compile warm-up runs before the eval timer and the log does not say it avoids "
                                           "validation tokens; what the 600 s eval timer must cover is contested (#1530, #1899/#1900)",
                                           severity=Severity.WARNING, evidence=[t, timer[1]],
                                           fix="Warm up on random tokens, or start the eval timer before the warm-up.")
                    break
