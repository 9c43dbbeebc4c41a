"""SUBMISSION-FILES (records.md §1–2, rules.md §1.6): the folder holds what a record must ship."""
from __future__ import annotations

from auditor.model import Severity
from rules.base import Invalid, Rule, Valid, register


def _log(seed: int, bpb: str) -> str:
    return (f"seed:{seed}\nstep:1/10 train_loss:3.0000 train_time:40ms step_avg:40.00ms\n"
            f"stopping_early: wallclock_cap train_time:600010ms step:1/10\n"
            f"final_int8_zlib_roundtrip_exact val_loss:2.00000000 val_bpb:{bpb}\n")


GOOD = {
    "README.md": "# tiny\n",
    "submission.json": '{"author": "a", "github_id": "a", "val_bpb": 1.2}\n',
    "train_gpt.py": "print('hi')\n",
    "train_seed1.log": _log(1, "1.19000000"),
    "train_seed2.log": _log(2, "1.20000000"),
    "train_seed3.log": _log(3, "1.21000000"),
}

# Repairs of the JSON syntax (as opposed to a BOM or a number written as a string) are worth a warning:
# the file as committed is not valid JSON and other tools will fail on it.
_SYNTAX_REPAIRS = ("heredoc", "fence", "'json' token", "trailing comma", "missing comma", "several JSON objects",
                   "text after", "text before")


@register
class SubmissionFiles(Rule):
    """A record folder holds README.md, submission.json (with a numeric val_bpb and who submitted it),
    train_gpt.py and the train log(s) its script produced; a record-track claim needs the logs of at
    least three seeds (distinct seeds, not copies of one log).

    Ruling: README "Submission Process"; cocohearts on #561 (PRs without submission.json or logs
    are "not leaderboard-ready"); commit d2bd76079 ("average over 3 training runs"); cocohearts on
    #2124 ("a leaderboard row needs a 3-seed mean from the same submitted configuration").
    """

    id = "SUBMISSION-FILES"
    code = "PG501"
    title = "the record folder lacks a required file"
    family = "submission"
    ruling = "https://github.com/openai/parameter-golf/blob/main/README.md#submission-process"
    fix = "Add the missing file: README.md, submission.json, train_gpt.py and one log per seed."
    default_severity = Severity.ERROR

    VALID = [
        Valid(GOOD),
        Valid({k: v for k, v in GOOD.items() if k not in ("train_seed2.log", "train_seed3.log")}, track="track_non_record_16mb",
              note="one seed is enough outside the record track"),
    ]
    INVALID = [
        Invalid({k: v for k, v in GOOD.items() if k != "submission.json"}),
        Invalid({k: v for k, v in GOOD.items() if k != "train_gpt.py"}),
        Invalid({k: v for k, v in GOOD.items() if k != "README.md"}),
        Invalid({k: v for k, v in GOOD.items() if not k.endswith(".log")}),
        Invalid({k: v for k, v in GOOD.items() if k not in ("train_seed2.log", "train_seed3.log")}, expect=Severity.WARNING,
                note="a record-track folder with one seed log"),
        Invalid({**{k: v for k, v in GOOD.items() if k != "train_seed3.log"}, "train_seed1_copy.log": GOOD["train_seed1.log"]},
                expect=Severity.WARNING, note="three logs but two distinct seeds"),
        Invalid({**GOOD, "submission.json": '{"author": "a", "val_bpb": "pending"}'}, file="submission.json",
                note="record track without a claimed score"),
        Invalid({**GOOD, "submission.json": '{"author": "a", "val_bpb": 1.2'}, file="submission.json", note="unreadable JSON"),
        Invalid({**GOOD, "submission.json": '```json\n{"author": "a", "val_bpb": 1.2}\n```\n'}, expect=Severity.WARNING,
                file="submission.json", note="JSON inside a Markdown fence"),
    ]

    def check(self, ctx):
        ev = ctx.evidence
        top = {f.lower() for f in ev.folder.files if "/" not in f}
        record_track = ev.folder.track == "10min"
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
        yield from self._claims(ctx, record_track)
        if ev.logs and record_track:
            yield from self._seeds(ctx)

    def _claims(self, ctx, record_track: bool):
        claims = ctx.evidence.claims
        if claims.file is None:
            return
        f = claims.file
        # nothing could be parsed out of the file (an empty object still parses: it reports "no claimed score")
        parsed = bool(claims.raw) or any("claimed score" in p.message for p in claims.problems)
        unreadable = [] if parsed else list(claims.problems)
        if unreadable:
            yield self.finding(f, None, f"{f} cannot be read: {unreadable[0].message}",
                               evidence=[p.line() for p in unreadable],
                               fix="Make submission.json one valid JSON object with val_bpb, author and github_id.")
            return
        syntax = [r for r in claims.repairs if any(k in r for k in _SYNTAX_REPAIRS)]
        if syntax:
            yield self.finding(f, None, f"{f} is not valid JSON as committed; read it after repairs: {'; '.join(syntax)}",
                               evidence=list(syntax), severity=Severity.WARNING,
                               fix="Commit plain JSON: no Markdown fences, shell wrappers or trailing commas.")
        if claims.val_bpb is None:
            why = next((p.message for p in claims.problems if "val_bpb" in p.message), "val_bpb is absent")
            why = why.replace("no claimed score (", "").rstrip(")") if why.startswith("no claimed score (") else why
            yield self.finding(f, claims.key_lines.get("val_bpb"), f"{f} has no numeric claimed score ({why})",
                               severity=Severity.ERROR if record_track else Severity.WARNING,
                               fix="Put the mean of the per-seed final val_bpb in submission.json as a JSON number.")
        if not (claims.author or claims.github_id):
            yield self.finding(f, None, f"{f} does not say who submitted it (author / github_id)", severity=Severity.WARNING,
                               fix="Add author and github_id to submission.json.")

    def _seeds(self, ctx):
        ev, m = ctx.evidence, ctx.measured
        distinct = {s.seed if s.seed is not None else f"log:{s.log}" for s in m.seeds}
        n = len(distinct)
        if n >= 3:
            return
        ignored = m.extra.get("logs_ignored", [])
        ev_lines = [f"{s.log}: seed {s.seed}, final {s.val_bpb}" for s in m.seeds]
        ev_lines += [f"{x['log']}: not counted ({x['why']})" for x in ignored]
        yield self.finding("", None, f"record track with {n} distinct seed log(s) with a score; at least 3 are expected",
                           severity=Severity.WARNING, evidence=ev_lines or [lf.path for lf in ev.logs],
                           fix="Add the logs of at least three seeds of the same configuration.")
