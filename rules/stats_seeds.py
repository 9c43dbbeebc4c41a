"""STATS-SEEDS (rules.md §1.6)."""
from __future__ import annotations

import re

from auditor.model import Severity
from rules.base import Invalid, Rule, Valid, register
from rules.time_logs import baseline_log, three_seeds, used_runs

# keys of a hyperparameter dump that legitimately differ between seeds of one configuration
_PER_RUN = re.compile(r"(^|_)(seed|run_id|rank|local_rank|logfile|log_file|log_path|out|output|artifact|dir|path|paths|file|files|"
                      r"name|id|time|timestamp|host|device|port|master)s?($|_)", re.I)


RULE_DATE = "2026-03-20"  # README commit d2bd76079 (2026-03-19): "average over 3 training runs"


def _claimed_seeds(claims) -> list[int]:
    out = list(claims.seeds)
    for k in claims.seed_results:
        if isinstance(k, int) and k not in out:
            out.append(k)
    return out


@register
class StatsSeeds(Rule):
    """A record needs at least three independent runs of the same submitted configuration, each with
    its log: the seeds claimed in submission.json are the seeds logged, and the hyperparameter dumps
    at the top of the logs agree apart from the seed.

    Ruling: README commit d2bd76079 ("average over 3 training runs is sufficient"); cocohearts on
    #2124 ("A leaderboard row needs a 3-seed mean from the same submitted configuration"); #1902
    excludes single-seed rows.
    """

    id = "STATS-SEEDS"
    code = "PG602"
    title = "not three logged seeds of the same configuration"
    family = "stats"
    ruling = "https://github.com/openai/parameter-golf/pull/2124"
    fix = "Submit one log per claimed seed, at least three, all from the submitted configuration."
    default_severity = Severity.ERROR

    _SUB = '{"val_bpb": 1.2245, "seeds": [1337, 42, 2024]}'
    VALID = [Valid({"submission.json": _SUB, **three_seeds()})]
    INVALID = [
        Invalid({"submission.json": '{"val_bpb": 1.2245, "seeds": [1337, 42]}',
                 **{k: v for k, v in three_seeds().items() if "2024" not in k}}, note="two seeds"),
        Invalid({"submission.json": '{"val_bpb": 1.2245, "seeds": [1337, 42, 7]}', **three_seeds()}, note="seed 7 claimed, not logged"),
        Invalid({"submission.json": _SUB, **{**three_seeds(),
                 "train_seed2024.log": baseline_log(2024, 1.2239, 2.0718, extra_hp={"matrix_lr": "0.026"})}},
                expect=Severity.WARNING, note="one seed ran another configuration"),
        Invalid({"submission.json": '{"val_bpb": 1.2245, "seeds": [1337, 42, 0]}',
                 **{k: v for k, v in three_seeds().items() if "2024" not in k},
                 "train_seed0.log": baseline_log(2024, 1.2239, 2.0718)}, expect=Severity.WARNING,
                note="the log named for seed 0 ran seed 2024 (a real merged record does this): a warning, not an error"),
    ]

    def check(self, ctx):
        ev, m = ctx.evidence, ctx.measured
        runs = used_runs(ctx)
        logged = {}
        for lf in ev.logs:
            for run in lf.runs:
                s = run.seed if run.seed is not None else lf.seed_from_name
                if s is not None:
                    logged.setdefault(s, lf.path)
        claimed = _claimed_seeds(ev.claims)
        sub = ev.claims.file or "submission.json"
        n = len([s for s in m.seeds if s.val_bpb is not None])
        folder_date = ev.folder.name[:10]
        before_rule = bool(re.match(r"\d{4}-\d{2}-\d{2}$", folder_date)) and "2026-03-01" <= folder_date < RULE_DATE  # records from the first two days
        if ev.folder.track == "10min" and ev.logs and n < 3:
            yield self.finding("", None, f"{n} seed(s) with a final score in the logs used for the claim; a record needs at least 3"
                               + (f" (the folder predates the {RULE_DATE} rule: reported only)" if before_rule else ""),
                               severity=Severity.INFO if before_rule else None,
                               evidence=[f"{s.log}: seed {s.seed} val_bpb {s.val_bpb}" for s in m.seeds]
                               + [f"{d['log']}: not used ({d['why']})" for d in m.extra.get("logs_ignored", [])])
        missing = [s for s in claimed if s not in logged]
        # a log named for the claimed seed whose own seed line says another seed: a run exists, its seed is in doubt
        by_name = {lf.seed_from_name: lf for lf in ev.logs if lf.seed_from_name is not None}
        renamed = [s for s in missing if s in by_name]
        absent = [s for s in missing if s not in by_name]
        if claimed and logged and absent:
            yield self.finding(sub, ev.claims.key_lines.get("seeds"), f"seed(s) {absent} are claimed in {sub} but no log shows them",
                               evidence=[f"claimed: {claimed}", f"logged: {sorted(logged)}"])
        for s in renamed:
            lf = by_name[s]
            ran = sorted({r.seed for r in lf.runs if r.seed is not None})
            yield self.finding(lf.path, None, f"{lf.path} is named for claimed seed {s} but its run logs seed {ran}: confirm which seed "
                               "produced the claimed result", severity=Severity.WARNING,
                               evidence=[f"claimed: {claimed}", f"{lf.path}: seed line {ran}"])
        dumps = [(lf, run) for lf, run in runs if run.hyperparameters]
        if len(dumps) >= 2:
            ref_lf, ref = dumps[0]
            for lf, run in dumps[1:]:
                keys = sorted(k for k in set(ref.hyperparameters) | set(run.hyperparameters)
                              if not _PER_RUN.search(k) and ref.hyperparameters.get(k) != run.hyperparameters.get(k))
                if keys:
                    yield self.finding(lf.path, run.first_line, severity=Severity.WARNING, message=
                                       f"the hyperparameter dump differs from {ref_lf.path} in {len(keys)} key(s); confirm every claimed "
                                       "seed ran the submitted configuration: "
                                       + ", ".join(keys[:8]) + ("…" if len(keys) > 8 else ""),
                                       evidence=[f"{k}: {ref.hyperparameters.get(k)!s} vs {run.hyperparameters.get(k)!s}" for k in keys[:8]])
