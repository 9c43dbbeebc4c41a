"""TTT-SCORE-FIRST (rules.md §1.1)."""
from __future__ import annotations

from auditor.model import Severity
from rules._eval_cases import LEGAL_TTT, PHASED_TTT, program, wrapped
from rules._order import update_before_score
from rules.analysis import analyse
from rules._eval_common import missing_stages
from rules.analysis.report import code_finding, log_finding
from rules.base import Invalid, Rule, Valid, register


# This rule's own VALID/INVALID programs (programs several rules share stay in rules/_eval_cases.py).
ILLEGAL_TTT_UPDATE_FIRST = program('''

def eval_val_ttt(args, model, val_tokens, chunk=32768):
    opt = torch.optim.SGD(model.parameters(), lr=args.ttt_lr)
    loss_sum = 0.0
    for ci in range((len(val_tokens) - 1) // chunk):
        x = val_tokens[ci * chunk:(ci + 1) * chunk]
        y = val_tokens[ci * chunk + 1:(ci + 1) * chunk + 1]
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        with torch.no_grad():
            loss_sum += F.cross_entropy(model(x), y, reduction="sum")
    print(f"legal_ttt_exact val_loss:{loss_sum:.4f} val_bpb:{loss_sum:.4f}")
''', "eval_val_ttt(args, model, val_tokens)")


@register
class TttScoreFirst(Rule):
    """Test-time training may only use validation tokens that were already scored: score chunk k
    under no_grad and commit it, then adapt on it, then score chunk k+1. Post-score epochs, an
    ``is_last_chunk`` guard and phased TTT over already-scored documents are legal.

    Ruling: README 2026-03-20 (Will DePue); Issue #402; merged precedents #549, #1610.
    """

    id = "TTT-SCORE-FIRST"
    code = "PG105"
    title = "test-time training steps on a chunk before that chunk is scored"
    family = "ttt"
    ruling = "https://github.com/openai/parameter-golf/issues/402"
    fix = "Score each chunk under torch.no_grad() and accumulate it before any backward()/step() on its tokens."
    default_severity = Severity.ERROR

    VALID = [Valid(LEGAL_TTT, note="score first, post-score epochs, is_last_chunk guard"),
             Valid(PHASED_TTT, note="phased TTT over already-scored documents")]
    INVALID = [Invalid(ILLEGAL_TTT_UPDATE_FIRST, note="backward/step on the chunk before its score"),
               Invalid(wrapped(ILLEGAL_TTT_UPDATE_FIRST), note="inside an lzma wrapper")]

    def check(self, ctx):
        facts = analyse(ctx)
        stage = missing_stages(facts).get("ttt")
        if stage:
            yield log_finding(self, stage, "the logs show a test-time-training stage before the reported score that the shipped "
                              "code does not contain: the claimed score came from code that was not shipped, so it cannot be "
                              "checked to score each chunk before training on it",
                              fix="Ship the code that produced the logs (its TTT loop must score each chunk before adapting on it).")
        for fn, ff, loop, node in update_before_score(facts, "train"):
            yield code_finding(self, facts, ff, node,
                               f"in the loop at {fn.qualname}:{loop.lineno} the training step "
                               f"`{ff.line_text(node.lineno)[:100]}` runs before the chunk is scored",
                               path=[f"{fn.qualname}:{loop.lineno}", f"{fn.qualname}:{node.lineno}"], extra_lines=[loop.lineno])
