"""SUBMISSION-FILES (records.md §1, rules.md §1.6)."""
from __future__ import annotations

from auditor.model import Severity
from rules.base import Invalid, Rule, Valid, register

GOOD = {
    "README.md": "# tiny\n",
    "submission.json": '{"author": "a", "github_id": "a", "val_bpb": 1.2}\n',
    "train_gpt.py": "print('hi')\n",
    "train_seed1.log": "seed:1\n",
    "train_seed2.log": "seed:2\n",
    "train_seed3.log": "seed:3\n",
}


@register
class SubmissionFiles(Rule):
    """A record folder holds README.md, submission.json, train_gpt.py and the train log(s) its
    script produced; a record-track claim needs at least three seed logs.

    Ruling: README "Submission Process"; cocohearts on #561 (PRs without submission.json or logs
    are "not leaderboard-ready"); commit d2bd76079 ("average over 3 training runs").
    """

    id = "SUBMISSION-FILES"
    code = "PG501"
    title = "the record folder lacks a required file"
    family = "submission"
    ruling = "https://github.com/openai/parameter-golf/blob/main/README.md#submission-process"
    fix = "Add the missing file: README.md, submission.json, train_gpt.py and one log per seed."
    default_severity = Severity.ERROR

    VALID = [Valid(GOOD)]
    INVALID = [
        Invalid({k: v for k, v in GOOD.items() if k != "submission.json"}),
        Invalid({k: v for k, v in GOOD.items() if k != "train_gpt.py"}),
        Invalid({k: v for k, v in GOOD.items() if not k.endswith(".log")}),
        Invalid({k: v for k, v in GOOD.items() if k not in ("train_seed2.log", "train_seed3.log")}, expect=Severity.WARNING,
                note="a record-track folder with one seed log"),
    ]

    def check(self, ctx):
        ev = ctx.evidence
        top = {f.lower() for f in ev.folder.files if "/" not in f}
        missing = []
        if ev.readme_file is None:
            missing.append("README.md")
        if ev.claims.file is None:
            missing.append("submission.json")
        if ev.code.entry is None:
            missing.append("train_gpt.py")
        if not ev.logs:
            missing.append("a train log")
        for m in missing:
            yield self.finding("", None, f"missing {m}", evidence=[f"files: {', '.join(sorted(top)) or '(none)'}"])
        if ev.code.entry and ev.code.entry != "train_gpt.py":
            yield self.finding(ev.code.entry, None, f"entry script is {ev.code.entry}, not train_gpt.py", severity=Severity.WARNING,
                               fix="Name the entry script train_gpt.py so the counted code is unambiguous.")
        if ev.logs and ev.folder.track == "10min":
            seeds = {lf.seed_from_name for lf in ev.logs} | {r.seed for lf in ev.logs for r in lf.runs if r.seed is not None}
            n = max(len(ev.logs if None in seeds and len(seeds) <= 1 else seeds - {None}), len({lf.sha256 for lf in ev.logs if lf.sha256}) if not (seeds - {None}) else 0)
            if n < 3:
                yield self.finding("", None, f"record track with {n} seed log(s); at least 3 are expected", severity=Severity.WARNING,
                                   evidence=[lf.path for lf in ev.logs],
                                   fix="Add the logs of at least three seeds of the same configuration.")
