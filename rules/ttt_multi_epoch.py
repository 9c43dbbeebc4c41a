"""TTT-MULTI-EPOCH (rules.md §1.1)."""
from __future__ import annotations

import ast
import re

from auditor.model import Severity
from rules._eval_cases import LEGAL_TTT, PHASED_TTT, program
from rules._eval_common import eval_functions, val_loops
from rules.analysis import analyse, taint
from rules.analysis.patterns import loops, summaries
from rules.analysis.report import code_finding
from rules.base import Invalid, Rule, Valid, register
from rules.analysis.index import walk as ast_walk  # ast.walk, faster (same nodes, same order)

EPOCH = re.compile(r"(epoch|\bep\b|n_ep|passes)", re.I)  # a hint; _repeats_the_stream decides by value


# This rule's own VALID/INVALID programs (programs several rules share stay in rules/_eval_cases.py).
ILLEGAL_MULTI_EPOCH = program('''

def eval_val_ttt(args, model, val_tokens, chunk=32768):
    opt = torch.optim.SGD(model.parameters(), lr=args.ttt_lr)
    loss_sum = 0.0
    n_chunks = (len(val_tokens) - 1) // chunk
    for epoch in range(args.ttt_epochs):
        for ci in range(n_chunks):
            x = val_tokens[ci * chunk:(ci + 1) * chunk]
            y = val_tokens[ci * chunk + 1:(ci + 1) * chunk + 1]
            if epoch == args.ttt_epochs - 1:
                with torch.no_grad():
                    loss_sum += F.cross_entropy(model(x), y, reduction="sum")
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    print(f"legal_ttt_exact val_loss:{loss_sum:.4f} val_bpb:{loss_sum:.4f}")
''', "eval_val_ttt(args, model, val_tokens)")


@register
class TttMultiEpoch(Rule):
    """Several epochs over validation chunks where the reported score of a token comes from a pass
    after the model trained on it (scoring only in the final epoch, or in every epoch) are illegal.
    Several optimizer epochs on a chunk after its single score is committed (#549) are legal.

    Ruling: valerio-oai on PR #568 (multi-epoch TTT is training on the eval data); Issue #677.
    """

    id = "TTT-MULTI-EPOCH"
    code = "PG107"
    title = "validation tokens are scored inside an epoch loop that also trains on them"
    family = "ttt"
    ruling = "https://github.com/openai/parameter-golf/pull/568#issuecomment-4119903415"
    fix = "Score each chunk once before any training on it; put the epoch loop inside the per-chunk block, after the score."
    default_severity = Severity.ERROR

    VALID = [Valid(LEGAL_TTT, note="epochs nested after the committed score"), Valid(PHASED_TTT)]
    INVALID = [Invalid(ILLEGAL_MULTI_EPOCH, note="scored on the final epoch after training on every chunk")]

    def check(self, ctx):
        facts = analyse(ctx)
        s = summaries(facts)
        for fn in eval_functions(facts):
            ff = facts.file_of(fn)
            for loop in loops(fn):
                if not isinstance(loop, ast.For):
                    continue
                head = ast.unparse(loop.target) + " " + ast.unparse(loop.iter)
                if not (EPOCH.search(head) or _repeats_the_stream(facts, fn, loop)):
                    continue
                has_inner = any(isinstance(n, (ast.For, ast.While)) for st in loop.body for n in ast_walk(st))
                if not has_inner:
                    continue
                sc = next((s.stmt_does(st, "score", fn) for st in loop.body if s.stmt_does(st, "score", fn) is not None), None)
                tr = next((s.stmt_does(st, "train", fn) for st in loop.body if s.stmt_does(st, "train", fn) is not None), None)
                if sc is not None and tr is not None:
                    yield code_finding(self, facts, ff, loop,
                                       f"the epoch loop `{ff.line_text(loop.lineno)[:80]}` both trains on and scores the "
                                       f"validation chunks (score at line {sc.lineno}, training at line {tr.lineno})",
                                       path=[f"{fn.qualname}:{loop.lineno}", f"{fn.qualname}:{sc.lineno}", f"{fn.qualname}:{tr.lineno}"],
                                       extra_lines=[sc.lineno, tr.lineno])


def _repeats_the_stream(facts, fn, loop) -> bool:
    """An epoch loop by what it does, whatever its counter is called (``for rnd in range(k)``): around a
    loop over the validation stream that reads the same positions on every round (the counter, and what
    is computed from it, picks no chunk or window; it may only be compared, ``if rnd == k - 1``)."""
    env = taint(facts).env.get(fn.qualname, {})
    own = {x.id for x in ast.walk(loop.target) if isinstance(x, ast.Name)}
    if not own or any(any(l[0] in ("V", "T") for l in env.get(n, ())) for n in own):
        return False  # ``for doc in docs``: iterates the stream itself
    inner = [l for l in val_loops(facts, fn) if l is not loop and any(l is n for st in loop.body for n in ast.walk(st))]
    if not inner:
        return False
    derived = set(own)
    changed = True
    while changed:  # ``windows = chunks[ci]``: names computed from the counter
        changed = False
        for n in ast.walk(loop):
            if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For)) and getattr(n, "value", None) is not None \
                    or isinstance(n, ast.For):
                src = n.iter if isinstance(n, ast.For) else n.value
                tgts = [n.target] if not isinstance(n, ast.Assign) else n.targets
                if derived & {x.id for x in ast.walk(src) if isinstance(x, ast.Name)}:
                    new = {x.id for t in tgts for x in ast.walk(t) if isinstance(x, ast.Name)} - derived
                    if new:
                        derived |= new
                        changed = True
    compared = {id(x) for n in ast.walk(loop) if isinstance(n, ast.Compare) for x in ast.walk(n)}
    for il in inner:
        if any(isinstance(x, ast.Name) and x.id in derived and id(x) not in compared for x in ast.walk(il)):
            return False  # the counter picks what the inner loop reads: chunks or windows, not epochs
    return True
