"""EVAL-NORMALIZED-DIST (C2, rules.md §1.1)."""
from __future__ import annotations

import ast
import re

from auditor.model import Severity
from rules._eval_cases import ILLEGAL_BYTE_SPREAD, ILLEGAL_NGRAM, LEGAL_NGRAM, SLIDING_WINDOW, TILT_WITH_Z
from rules.analysis import analyse, taint
from rules.analysis.patterns import walk_own
from rules.analysis.report import code_finding, log_finding
from rules.base import Invalid, Rule, Valid, register

_PPM = re.compile(r"ppm", re.I)


@register
class EvalNormalizedDist(Rule):
    """The score at position t must be −log p_t(y[t]) for a distribution over the whole token
    vocabulary that sums to 1. Count ratios computed for the realized token only, scalar mixtures
    of a gathered target probability with such a ratio, byte-spread ``p ** (1/n)`` and byte-level
    PPM mixtures are not. Softmax/log_softmax over V, convex mixtures of full-vocab distributions
    and exponential tilts with an explicit normalizer Z are.

    Ruling: valerio-oai on PR #982 (hashed caches "do not renormalize correctly"); Issue #1017 C2;
    cocohearts excluded byte-PPM mixtures as C2 violations in #1902.
    """

    id = "EVAL-NORMALIZED-DIST"
    code = "PG102"
    title = "the scored probability is not a normalized distribution over the vocabulary"
    family = "eval"
    ruling = "https://github.com/openai/parameter-golf/pull/982"
    fix = ("Score −log of a distribution over all V tokens: softmax/log_softmax, a convex mixture of full-vocab "
           "distributions, or a tilt divided by its explicit normalizer Z; then gather the target.")
    default_severity = Severity.ERROR

    VALID = [
        Valid(LEGAL_NGRAM, note="convex mixture of two full-vocab distributions"),
        Valid(TILT_WITH_Z, note="tilt with explicit normalizer Z uses the target only as 1[y==hint]"),
        Valid(SLIDING_WINDOW, note="cross_entropy over the vocab"),
    ]
    INVALID = [
        Invalid(ILLEGAL_NGRAM, note="count ratio for the target only, mixed into the score"),
        Invalid(ILLEGAL_BYTE_SPREAD, note="token probability spread over bytes as p ** (1/n) and mixed with a byte PPM"),
    ]

    def check(self, ctx):
        facts = analyse(ctx)
        tf = taint(facts)
        done = set()
        for s in sorted(tf.log_sinks.values(), key=lambda s: (s.ff.path, s.line)):
            kpaths = sorted((p for k, p in s.labels if k == "K"), key=len, reverse=True)
            if not kpaths or (s.ff.path, s.fn.qualname) in done:
                continue
            done.add((s.ff.path, s.fn.qualname))
            yield code_finding(self, facts, s.ff, s.node,
                               f"the scored value at {s.fn.qualname}:{s.line} is built from a count ratio read for the "
                               "target token only (never normalized over the vocabulary)", path=list(kpaths[0]))
        code_has_ppm = False
        for fn in facts.functions.values():
            ff = facts.file_of(fn)
            if _PPM.search(fn.qualname):
                code_has_ppm = True
            for n in walk_own(fn.node):
                if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow) and _is_reciprocal(n.right):
                    yield code_finding(self, facts, ff, n,
                                       f"`{ff.line_text(n.lineno)[:100]}` spreads a probability over bytes as p ** (1/n); "
                                       "a byte-level mixture of it is not a distribution over the token vocabulary")
        ppm = facts.logs.markers.get("ppm_mix") or []
        if ppm:
            if not code_has_ppm:
                yield log_finding(self, ppm, "the logs show a byte-level PPM mixture stage that the shipped code does not contain",
                                  rule_id="REPORT-CONSISTENCY",
                                  fix="Ship the code that produced the logs, or re-run the shipped code and ship its logs.")
            yield log_finding(self, ppm, "the logs show a byte-level PPM mixture ([ppm_mix]) feeding the reported score; "
                                         "byte mixtures are not normalized over the token vocabulary (C2)")


def _is_reciprocal(node) -> bool:
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(node.left, ast.Constant) \
        and node.left.value in (1, 1.0) and not isinstance(node.right, ast.Constant)
