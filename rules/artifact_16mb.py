"""ARTIFACT-16MB (rules.md §1.3), measured: code files the entry point runs + the compressed model."""
from __future__ import annotations

from auditor.model import Severity
from rules.artifact_measure import CAP, artifact_facts, fmt
from rules.base import Invalid, Rule, Valid, register
from rules.time_logs import three_seeds

_SIDECAR = "# the real script\n" + "\n".join(f"W{i} = {i} * 3  # padding that stands for model code" for i in range(4000)) + "\n"


@register
class Artifact16MB(Rule):
    """Code bytes + compressed model bytes must be at most 16,000,000 (decimal) for every seed.

    Measured, not trusted: code bytes are the shipped bytes of every code file the entry point
    executes (the stub and the sidecar it execs, helper modules, C/C++/CUDA sources it builds);
    model bytes are the compressed model file when the folder ships one, else each seed's logged
    ``Serialized model <tag>`` figure (labelled as such). Both the measured and the logged/claimed
    totals are reported, with the one the verdict used. When only counting contested code (helper
    modules, minified-code counting) pushes the total over the cap, the finding is a warning.

    Ruling: README FAQ; regina-openai on #1835 ("artifact size is 16071321 bytes… ineligible");
    "over-cap artifacts" exclusions in #1902.
    """

    id = "ARTIFACT-16MB"
    code = "PG301"
    title = "the artifact is over 16,000,000 bytes"
    family = "artifact"
    ruling = "https://github.com/openai/parameter-golf/pull/1835"
    fix = "Shrink the model or the code until code + compressed model ≤ 16,000,000 bytes for every seed."
    default_severity = Severity.ERROR

    VALID = [Valid({"train_gpt.py": "print(1)\n", **three_seeds(code=10)})]
    INVALID = [
        Invalid({"train_gpt.py": 'exec(open(__file__.replace("train_gpt.py", "train_gpt_decode.py")).read())\n',
                 "train_gpt_decode.py": _SIDECAR, **three_seeds(model=15_950_000, code=74)},
                note="a 74-byte stub counted; the sidecar it execs pushes the total over"),
        Invalid({"train_gpt.py": "print(1)\n", **three_seeds(model=16_100_000, code=10)}, note="logged over the cap"),
    ]

    def check(self, ctx):
        facts = artifact_facts(ctx)
        top, logged = facts.max_measured, facts.max_logged
        used = top or logged
        if used is None:
            return
        code_note = ", ".join(f"{p} {fmt(b)} ({r})" for p, r, b in facts.code.files) or "no entry script"
        over = []
        for s in facts.seeds:
            total = s.measured_total if s.measured_total is not None else s.logged_total
            if total is not None and total > CAP:
                over.append((total, s))
        if not over:
            lo = facts.max_logged
            if lo is not None and lo.logged_total > CAP and lo.measured_total is not None:
                yield self.finding(lo.log, lo.total_line, f"the log's total {fmt(lo.logged_total)} is over 16,000,000, but measured from the "
                                   f"shipped files it is {fmt(lo.measured_total)} = code {fmt(facts.code.shipped)} + model {fmt(lo.model)} "
                                   f"({lo.model_source}): the log counted code that ships in a smaller (e.g. wrapped) form; disputed "
                                   "(#1835, regina-openai) — the verdict uses the measured figure",
                                   severity=Severity.WARNING, evidence=lo.evidence)
            return
        total, s = max(over, key=lambda x: x[0])
        logged_over = any(x.logged_total is not None and x.logged_total > CAP for _t, x in over)
        contested = "" if logged_over else self._contested_only(facts, s)
        sev = Severity.WARNING if contested else Severity.ERROR
        who = f"seed {s.seed}" if s.seed is not None else s.log
        if s.measured_total is not None:
            head = (f"{who}: measured {fmt(s.measured_total)} bytes = code {fmt(facts.code.shipped)} (files the entry point runs) + "
                    f"model {fmt(s.model)} ({s.model_source}); logged total {fmt(s.logged_total)}")
        else:
            head = f"{who}: logged total {fmt(s.logged_total)} (no entry script to measure)"
        if facts.claimed_total is not None:
            head += f"; claimed bytes_total {fmt(facts.claimed_total)}"
        used = "measured" if s.measured_total is not None else "logged"
        msg = (head + f"; over 16,000,000 by {fmt(total - CAP)} (verdict uses the {used} figure); "
               f"{len(over)} of {len(facts.seeds)} seed(s) over the cap")
        if contested:
            msg += f"; over only when the contested code is counted: {contested}"
        per_seed = [f"{x.log}: measured {fmt(x.measured_total)}, logged {fmt(x.logged_total)}, model {fmt(x.model)} ({x.model_source})"
                    for x in facts.seeds]
        yield self.finding(s.log, s.total_line, msg, severity=sev, evidence=s.evidence + per_seed + [f"code files: {code_note}"])

    @staticmethod
    def _contested_only(facts, s) -> str:
        """Why the total is over only under a contested counting, or "" when it is over regardless."""
        plain = facts.code.entry + sum(b for _p, r, b in facts.code.files if r in ("exec", "payload"))
        model = s.model or 0
        if plain + model <= CAP and facts.code.shipped + model > CAP:
            return f"helper modules/native sources ({fmt(facts.code.shipped - plain)} bytes, cf. #1514)"
        logged_code = s.logged_code_compressed
        if logged_code is not None and logged_code + model <= CAP < plain + model:
            return f"the log counts {fmt(logged_code)} bytes of compressed code while {fmt(plain)} bytes are shipped (cf. #1530)"
        return ""
