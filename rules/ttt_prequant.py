"""TTT-PREQUANT (rules.md §1.1)."""
from __future__ import annotations

import ast
import re

from auditor.model import Severity
from rules._eval_cases import ILLEGAL_PREQUANT, LEGAL_TTT, LEGAL_WARMUP_TRAIN, PHASED_TTT
from rules._eval_common import in_loop
from rules.analysis import analyse
from rules.analysis.index import call_name
from rules.analysis.patterns import VAL_NAME, mentions, summaries, walk_own
from rules.analysis.report import code_finding
from rules.base import Invalid, Rule, Valid, register

WARMUP = re.compile(r"(warmup|warm_up|compile|prime|jit)", re.I)
TRAIN_DATA = re.compile(r"(train_loader|train_files|train_pattern|train_data|train_shard|TokenStream|DistributedTokenLoader|next_batch)")


@register
class TttPrequant(Rule):
    """Fine-tuning the model (or adapters) on validation tokens before the pass that scores them is
    illegal, even "before quantization". A compile warmup on val tokens with a throwaway optimizer
    whose state is discarded (#1530) is contested: warning.

    Ruling: valerio-oai closed PR #1376 (pre-quant TTT on val), as recorded in Issue #677;
    cocohearts on #1972 (2026-05-02).
    """

    id = "TTT-PREQUANT"
    code = "PG106"
    title = "the model is trained on validation tokens before they are scored"
    family = "ttt"
    ruling = "https://github.com/openai/parameter-golf/issues/677#issuecomment-4229813460"
    fix = "Remove the pre-eval adaptation on val tokens; adapt only inside a score-first TTT loop on already-scored chunks."
    default_severity = Severity.ERROR

    VALID = [Valid(LEGAL_TTT), Valid(PHASED_TTT), Valid(LEGAL_WARMUP_TRAIN, note="warmup on training batches")]
    INVALID = [Invalid(ILLEGAL_PREQUANT, note="AdamW epochs on val_tokens, then save, then score")]

    def check(self, ctx):
        facts = analyse(ctx)
        s = summaries(facts)
        for drv in list(facts.functions.values()):
            ff = facts.file_of(drv)
            calls = sorted((n for n in walk_own(drv.node) if isinstance(n, ast.Call)), key=lambda n: (n.lineno, n.col_offset))
            trainers, scorers = [], []
            for c in calls:
                short = call_name(c.func).rsplit(".", 1)[-1]
                for t in facts.resolve(short, c, drv):
                    if t is drv:
                        continue
                    if s.does(t, "score"):
                        if any(mentions(a, VAL_NAME) for a in c.args) or any(mentions(k.value, VAL_NAME) for k in c.keywords):
                            scorers.append(c)
                        break
                    if s.does(t, "train") and not TRAIN_DATA.search(" ".join(sorted(t.refs))) and \
                            (any(mentions(a, VAL_NAME) for a in c.args) or any(mentions(k.value, VAL_NAME) for k in c.keywords)):
                        if not in_loop(ff, c, drv.node):
                            trainers.append((c, t))
                        break
            for c, t in trainers:
                if not any(sc.lineno > c.lineno for sc in scorers):
                    continue
                first = min(sc.lineno for sc in scorers if sc.lineno > c.lineno)
                doc = ast.get_docstring(t.node) or ""
                warm = bool(WARMUP.search(t.short) or WARMUP.search(doc[:200]))
                msg = (f"`{ff.line_text(c.lineno)[:100]}` runs gradient steps on validation tokens ({t.qualname}) "
                       f"before they are scored at line {first}")
                if warm:
                    msg += "; it looks like a compile warmup (contested if no surviving state is changed, rules.md §2)"
                yield code_finding(self, facts, ff, c, msg, severity=Severity.WARNING if warm else None,
                                   path=[f"{drv.qualname}:{c.lineno}", f"{t.qualname}:{t.line}", f"{drv.qualname}:{first}"],
                                   extra_lines=[first])
