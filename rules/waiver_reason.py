"""WAIVER-REASON: the findings are raised by auditor.waivers (the waive step), not by check()."""
from __future__ import annotations

from auditor import waivers
from auditor.model import Severity
from rules.base import Invalid, Rule, Valid, register


@register
class WaiverReason(Rule):
    """A suppression comment (``# pgolf: allow RULE-ID -- reason``) or an entry of the reviewed
    waiver file (``pgolf-waivers.toml``: folder, rule, reason, who) must say why the finding does
    not apply, and a waiver must say who reviewed it. One without a reason waives nothing.

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
    ]

    def check(self, ctx):
        # The waive step sees the suppressions and the waiver file after every rule has run.
        return ()
