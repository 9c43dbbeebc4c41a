"""EVAL-SCORE-BEFORE-UPDATE (C3, rules.md §1.1)."""
from __future__ import annotations

from auditor.model import Severity
from rules._eval_cases import LEGAL_NGRAM, LEGAL_TTT, PHASED_TTT, program
from rules._order import update_before_score
from rules.analysis import analyse
from rules.analysis.report import code_finding
from rules.base import Invalid, Rule, Valid, register

CACHE_UPDATE_FIRST = program('''

def eval_val(model, val_tokens, vocab_size):
    counts = np.zeros((4096, vocab_size))
    loss_sum = 0.0
    for s in range(0, len(val_tokens) - 257, 256):
        x = val_tokens[s:s + 256]
        y = val_tokens[s + 1:s + 257]
        ctx = (x * 31) % 4096
        np.add.at(counts, (ctx, y), 1)
        row = counts[ctx] + 0.1
        p = 0.8 * torch.softmax(model(x), -1).numpy() + 0.2 * row / row.sum(-1, keepdims=True)
        loss_sum += -np.log(p[np.arange(len(y)), y]).sum()
    print(f"final_ngram_exact val_loss:{loss_sum:.4f} val_bpb:{loss_sum:.4f}")
''', "eval_val(model, val_tokens, 1024)")


@register
class EvalScoreBeforeUpdate(Rule):
    """Eval-time state (cache counts, calibration statistics) used to score token t may only be
    built from tokens already scored: in each iteration of the eval loop, the score of a chunk is
    accumulated before any cache update that consumes that chunk's tokens.

    Ruling: README (2026-03-20, "only … tokens you've already evaluated"); Issue #1017 C3;
    cocohearts on #1972 ("score-after-adapt … violates the score-first/C3 rule").
    """

    id = "EVAL-SCORE-BEFORE-UPDATE"
    code = "PG104"
    title = "eval-time state is updated with a chunk before that chunk is scored"
    family = "eval"
    ruling = "https://github.com/openai/parameter-golf/issues/1017"
    fix = "Accumulate the chunk's score first, then update the cache with its tokens."
    default_severity = Severity.ERROR

    VALID = [Valid(LEGAL_NGRAM, note="np.add.at after the score"), Valid(PHASED_TTT), Valid(LEGAL_TTT)]
    INVALID = [Invalid(CACHE_UPDATE_FIRST, note="np.add.at with the chunk's targets before scoring it")]

    def check(self, ctx):
        facts = analyse(ctx)
        for fn, ff, loop, node in update_before_score(facts, "cache"):
            yield code_finding(self, facts, ff, node,
                               f"in the loop at {fn.qualname}:{loop.lineno} the cache update "
                               f"`{ff.line_text(node.lineno)[:100]}` runs before the chunk is scored",
                               path=[f"{fn.qualname}:{loop.lineno}", f"{fn.qualname}:{node.lineno}"], extra_lines=[loop.lineno])
