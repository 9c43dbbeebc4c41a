"""WAIVER-REASON: judges the suppressions and waivers the waiver layer parsed before the rules ran."""
from __future__ import annotations

from auditor import waivers
from auditor.model import Finding, Severity
from rules.base import Invalid, Rule, Valid, register

SHIPPED_FIX = ("Remove the waiver file from the record folder (or from the pull request); a maintainer adds "
               "reviewed waivers to the repository's own pgolf-waivers.toml, or passes --waivers.")


@register
class WaiverReason(Rule):
    """A suppression comment (``# pgolf: allow RULE-ID -- reason``) or an entry of the reviewed
    waiver file (``pgolf-waivers.toml``: folder, rule, reason, who) must say why the finding does
    not apply, and a waiver must say who reviewed it. One without a reason waives nothing.

    Waivers come only from the reviewer's side (``--waivers``, the working directory's file, or in
    CI the base revision's): a waiver file shipped inside the record folder, or one the pull request
    changed, is never read, and this rule names it in a warning.

    Ruling: exceptions to the challenge rules are decided by the maintainers in review; a waiver
    records that decision, so it is only as good as its stated reason (README "Submission Process").
    """

    id = waivers.RULE_ID
    code = waivers.RULE_CODE
    title = "a suppression or waiver gives no reason"
    family = "report"
    ruling = waivers.RULING
    fix = waivers.FIX
    default_severity = Severity.ERROR

    VALID = [
        Valid("""
            import os
            DATA = os.environ.get("DATA_PATH", "./data")  # pgolf: allow DATA-NO-TRAIN-AT-EVAL -- reads the val shard only
            print(DATA)
        """),
    ]
    INVALID = [
        Invalid("""
            import os
            DATA = os.environ.get("DATA_PATH", "./data")  # pgolf: allow DATA-NO-TRAIN-AT-EVAL
            print(DATA)
        """, line=2, file="train_gpt.py", note="a suppression without `-- reason`"),
        Invalid({
            "train_gpt.py": "print('hello')\n",
            "pgolf-waivers.toml": '[[waiver]]\nfolder = "."\nrule = "*"\nreason = "fine"\nwho = "me"\n',
        }, expect=Severity.WARNING, file="pgolf-waivers.toml", note="a waiver file shipped in the record folder"),
    ]

    def check(self, ctx):
        collected = ctx.cache.get(waivers.CTX_KEY)
        if collected is None:  # a caller that skipped the waiver layer: judge what the evidence holds
            collected = waivers.Collected(suppressions=waivers.suppressions_in(ctx.evidence),
                                          ignored=waivers.shipped_waiver_files(ctx.evidence))
        return self.judge(collected)

    def judge(self, c: "waivers.Collected") -> list[Finding]:
        out: list[Finding] = []
        seen: set[tuple[str, int, str]] = set()
        for s in c.suppressions:
            if (s.reason and s.rules) or (s.file, s.line, s.text) in seen:
                continue
            seen.add((s.file, s.line, s.text))
            what = "names no rule" if not s.rules else "gives no reason after `--`"
            out.append(self.finding(s.file, s.line, f"suppression {what}; it waives nothing", evidence=[s.text]))
        for w in c.waivers:
            if w.reason and w.who:
                continue
            missing = " and ".join(x for x, v in (("reason", w.reason), ("who", w.who)) if not v)
            # Reported on the folder itself: the waiver file lies outside it (SARIF paths stay inside).
            out.append(self.finding("", None, f"waiver {w.source}:{w.line} for {w.rule} has no {missing}; it waives nothing",
                                    evidence=[f"{w.source}:{w.line}: [[waiver]] folder = {w.folder!r} rule = {w.rule!r}"]))
        for file, why, in_folder in c.ignored:
            out.append(self.finding(file if in_folder else "", None, f"waiver file {file} {why}",
                                    evidence=[file], severity=Severity.WARNING, fix=SHIPPED_FIX))
        return out

