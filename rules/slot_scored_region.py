"""SLOT-SCORED-REGION (rules.md §1.1)."""
from __future__ import annotations

import ast
import re

from auditor.model import Severity
from rules._eval_cases import CONTEXT_SLOT, ILLEGAL_SLOT, LEGAL_TTT, SLIDING_WINDOW
from rules.analysis import analyse
from rules.analysis.index import call_name
from rules.analysis.patterns import summaries, walk_own
from rules.analysis.report import code_finding
from rules.base import Invalid, Rule, Valid, register
from rules.analysis.index import walk as ast_walk  # ast.walk, faster (same nodes, same order)

OPTIM = re.compile(r"(Adam\w*|SGD|RMSprop|LBFGS|Adagrad|Lion|Muon)$")
CONTEXT_ONLY = re.compile(r"(context|ctx_only|prefix|causal_slot|already_scored|\[:\s*-|\[:\s*\w+_?(start|ctx|s)\b)", re.I)


@register
class SlotScoredRegion(Rule):
    """Per-window optimisation of a delta, bias, logits or weights whose loss includes the positions
    that window then scores is illegal: the scored prediction depends on the scored targets.
    "Context-only" SLOT, optimising only on already-scored positions, is undecided: warning.

    Ruling: PR #1240 (flip test: 100% causal violations); Issue #1336 (causal SLOT undecided); no
    SLOT submission reached the leaderboard (#1334 merged from a "no-slot" branch).
    """

    id = "SLOT-SCORED-REGION"
    code = "PG108"
    title = "a per-window optimisation uses the targets it then scores (SLOT)"
    family = "slot"
    ruling = "https://github.com/openai/parameter-golf/issues/1336"
    fix = "Drop the per-window optimisation, or restrict its loss to positions scored in earlier windows."
    default_severity = Severity.ERROR

    VALID = [Valid(SLIDING_WINDOW), Valid(LEGAL_TTT, note="TTT on model weights after scoring is not SLOT")]
    INVALID = [Invalid(ILLEGAL_SLOT, note="delta optimised on the window's scored targets"),
               Invalid(CONTEXT_SLOT, expect=Severity.WARNING, note="context-only SLOT is contested: warning")]

    def check(self, ctx):
        facts = analyse(ctx)
        s = summaries(facts)
        for fn in facts.functions.values():
            d = s.direct(fn)
            if not d["score"] and not s.does(fn, "score"):
                continue
            ff = facts.file_of(fn)
            grad_vars = set()
            for n in walk_own(fn.node):
                if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
                    if _makes_grad(facts, n.value, fn, set()):
                        grad_vars.add(n.targets[0].id)
            if not grad_vars:
                continue
            for n in walk_own(fn.node):
                if not (isinstance(n, ast.Call) and OPTIM.search(call_name(n.func)) and n.args):
                    continue
                used = {x.id for x in ast_walk(n.args[0]) if isinstance(x, ast.Name)}
                if not used & grad_vars:
                    continue
                if not (d["backward"] or s.does(fn, "backward")):
                    continue
                back = [b for b in d["backward"]]
                back_text = " ".join(ff.line_text(b.lineno) for b in back)
                contested = bool(CONTEXT_ONLY.search(back_text))
                msg = (f"an optimizer over {', '.join(sorted(used & grad_vars))} is stepped inside the eval of "
                       f"{fn.qualname} and that window is then scored")
                if contested:
                    msg += "; the loss looks restricted to context positions (context-only SLOT is contested, rules.md §2)"
                yield code_finding(self, facts, ff, n, msg, severity=Severity.WARNING if contested else None,
                                   path=[f"{fn.qualname}:{n.lineno}"] + [f"{fn.qualname}:{b.lineno}" for b in back[:1]],
                                   extra_lines=[b.lineno for b in back[:1]])
                break


def _makes_grad(facts, src, fn, seen) -> bool:
    """A tensor that requires grad: ``zeros(..., requires_grad=True)``, ``.requires_grad_()``,
    ``nn.Parameter(...)``, or a helper that returns one."""
    for c in ast_walk(src):
        if not isinstance(c, ast.Call):
            continue
        name = call_name(c.func)
        if name.endswith(("requires_grad_", "Parameter")) or any(
                k.arg == "requires_grad" and isinstance(k.value, ast.Constant) and k.value.value is True for k in c.keywords):
            return True
        for t in facts.resolve(name.rsplit(".", 1)[-1], c, fn):
            if t.qualname in seen or t is fn:
                continue
            seen.add(t.qualname)
            if any(isinstance(r, ast.Return) and r.value is not None and _makes_grad(facts, r.value, t, seen)
                   for r in walk_own(t.node)):
                return True
    return False
