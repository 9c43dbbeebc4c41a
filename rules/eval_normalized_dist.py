"""EVAL-NORMALIZED-DIST (C2, rules.md §1.1)."""
from __future__ import annotations

import ast
import re

from auditor.model import Severity
from rules._eval_cases import (ILLEGAL_NGRAM, ILLEGAL_ROW_TABLE_NOT_ROW_SUM, ILLEGAL_ROW_TABLE_UNDER_SMOOTHED, LEGAL_NGRAM,
                               LEGAL_ROW_SUM_TABLE, SLIDING_WINDOW, TILT_WITH_Z, program)
from rules.analysis import analyse, taint
from rules.analysis.dataflow import IN, clean
from rules.analysis.hashed_rows import find_hashed_row_ratios
from rules.analysis.normalization import unnormalized_transforms
from rules.analysis.patterns import summaries
from rules.analysis.patterns import walk_own
from rules.analysis.report import code_finding, log_finding, path_order, sink_order
from rules._eval_common import training_only
from rules.base import Invalid, Rule, Valid, register

_PPM = re.compile(r"ppm", re.I)


# This rule's own VALID/INVALID programs (programs several rules share stay in rules/_eval_cases.py).
_HASHED_ROW = '''

def eval_val_pairs(model, val_tokens, vocab_size, buckets=1 << 16):
    ctx_tbl = torch.zeros(buckets)
    pair_tbl = torch.zeros(buckets)
    vocab = torch.arange(vocab_size)
    loss_sum = 0.0
    for s in range(0, len(val_tokens) - 257, 256):
        x = val_tokens[s:s + 256]
        y = val_tokens[s + 1:s + 257]
        p_nn = torch.softmax(model(x), dim=-1)
        p_y = p_nn.gather(1, y[:, None]).squeeze(1)
        ctx_h = (x * 1000003) % buckets
        ctx_n = ctx_tbl[ctx_h]
        pair_h = (ctx_h[:, None] * 65599 + vocab[None, :]) % buckets
        row = pair_tbl[pair_h].float()
        {score}
        loss_sum += -torch.log(p.clamp(min=1e-12)).sum()
        ctx_tbl.index_add_(0, ctx_h, torch.ones(len(x)))
        pair_tbl.index_add_(0, (ctx_h * 65599 + y) % buckets, torch.ones(len(x)))
    print(f"final_ngram_exact val_loss:{{loss_sum:.4f}} val_bpb:{{loss_sum:.4f}}")
    return loss_sum
'''

ILLEGAL_HASHED_ROW_RATIO = program(_HASHED_ROW.format(score="""hit = row.gather(1, y[:, None]).squeeze(1)
        p = (hit + 2.0 * p_y) / (ctx_n + 2.0)"""), "eval_val_pairs(model, val_tokens, 1024)")

LEGAL_HASHED_ROW_OWN_SUM = program(_HASHED_ROW.format(score="""hit = row.gather(1, y[:, None]).squeeze(1)
        p = (hit + 2.0 * p_y) / (row.sum(-1) + 2.0)"""), "eval_val_pairs(model, val_tokens, 1024)")

LEGAL_HASHED_ROW_NORMALIZED = program(_HASHED_ROW.format(score="""q = (row + 0.1) / (row + 0.1).sum(-1, keepdim=True)
        p = 0.8 * p_y + 0.2 * q.gather(1, y[:, None]).squeeze(1)"""), "eval_val_pairs(model, val_tokens, 1024)")

LEGAL_EXACT_ROW_RATIO = program('''

def eval_val_bigram(model, val_tokens, vocab_size):
    pair_counts = torch.zeros(vocab_size, vocab_size)
    ctx_counts = torch.zeros(vocab_size)
    loss_sum = 0.0
    for s in range(0, len(val_tokens) - 257, 256):
        x = val_tokens[s:s + 256]
        y = val_tokens[s + 1:s + 257]
        p_y = torch.softmax(model(x), dim=-1).gather(1, y[:, None]).squeeze(1)
        row = pair_counts[x]
        hit = row.gather(1, y[:, None]).squeeze(1)
        p = (hit + 2.0 * p_y) / (ctx_counts[x] + 2.0)
        loss_sum += -torch.log(p).sum()
        pair_counts.index_put_((x, y), torch.ones(len(x)), accumulate=True)
        ctx_counts.index_add_(0, x, torch.ones(len(x)))
    print(f"final_ngram_exact val_loss:{loss_sum:.4f} val_bpb:{loss_sum:.4f}")
    return loss_sum
''', "eval_val_bigram(model, val_tokens, 1024)")

ILLEGAL_BYTE_SPREAD = program('''

def eval_val_bytes(model, val_tokens, token_bytes, ppm):
    loss_sum = 0.0
    for s in range(0, len(val_tokens) - 257, 256):
        x = val_tokens[s:s + 256]
        y = val_tokens[s + 1:s + 257]
        p_tok = torch.softmax(model(x), -1).gather(-1, y[:, None]).squeeze(-1)
        n = token_bytes[y]
        p_byte = p_tok ** (1.0 / n)
        p_mix = 0.7 * p_byte + 0.3 * ppm.byte_prob(y)
        loss_sum += -(n * torch.log(p_mix)).sum()
    print(f"[ppm_mix] final val_loss:{loss_sum:.4f} val_bpb:{loss_sum:.4f}")
''', "eval_val_bytes(model, val_tokens, torch.ones(1024), None)")


@register
class EvalNormalizedDist(Rule):
    """The score at position t must be −log p_t(y[t]) for a distribution over the whole token
    vocabulary that sums to 1. Count ratios computed for the realized token only, scalar mixtures
    of a gathered target probability with such a ratio, the target's count gathered from a hashed
    vocabulary row (``tbl[(ctx_h[:, None] * M + arange(V)[None, :]) % B]``) divided by anything but
    that row's own sum (a separately hashed context count), byte-spread ``p ** (1/n)`` and byte-level
    PPM mixtures are not. Softmax/log_softmax over V, convex mixtures of full-vocab distributions
    and exponential tilts with an explicit normalizer Z are.

    Ruling: valerio-oai on PR #982 (hashed caches "do not renormalize correctly"); Issue #1017 C2;
    cocohearts excluded byte-PPM mixtures as C2 violations in #1902.
    """

    id = "EVAL-NORMALIZED-DIST"
    code = "PG102"
    title = "the scored probability is not a normalized distribution over the vocabulary"
    family = "eval"
    reports_under = ("REPORT-CONSISTENCY",)  # log evidence of a stage the code lacks
    ruling = "https://github.com/openai/parameter-golf/pull/982"
    fix = ("Score −log of a distribution over all V tokens: softmax/log_softmax, a convex mixture of full-vocab "
           "distributions, or a tilt divided by its explicit normalizer Z; then gather the target.")
    default_severity = Severity.ERROR

    VALID = [
        Valid(LEGAL_NGRAM, note="convex mixture of two full-vocab distributions"),
        Valid(TILT_WITH_Z, note="tilt with explicit normalizer Z uses the target only as 1[y==hint]"),
        Valid(SLIDING_WINDOW, note="cross_entropy over the vocab"),
        Valid(LEGAL_HASHED_ROW_OWN_SUM, note="hashed row: the target's count divided by the row's own sum"),
        Valid(LEGAL_HASHED_ROW_NORMALIZED, note="hashed row normalized over the vocab, then the target gathered"),
        Valid(LEGAL_EXACT_ROW_RATIO, note="exact (non-hashed) bigram counts: the context total is the row sum"),
        Valid(LEGAL_ROW_SUM_TABLE, note="hashed-context rows of V counts over their own row sums, add-a over V (#185)"),
    ]
    INVALID = [
        Invalid(ILLEGAL_NGRAM, note="count ratio for the target only, mixed into the score"),
        Invalid(ILLEGAL_HASHED_ROW_RATIO, line=28,
                note="target's count from a hashed vocabulary row divided by a separately hashed context count"),
        Invalid(ILLEGAL_BYTE_SPREAD, note="token probability spread over bytes as p ** (1/n) and mixed with a byte PPM"),
        Invalid(ILLEGAL_ROW_TABLE_UNDER_SMOOTHED, note="the same rows, the denominator not smoothed over V"),
        Invalid(ILLEGAL_ROW_TABLE_NOT_ROW_SUM, note="the same rows, the totals updated by another weight than the cells"),
    ]

    def check(self, ctx):
        facts = analyse(ctx)
        tf = taint(facts)
        done = set()
        for s in sorted(tf.log_sinks.values(), key=lambda s: sink_order(facts, s)):
            own = [p for k, p in s.labels if k == "K" and not (p and p[-1].startswith(IN))]
            if training_only(facts, s.fn):
                continue  # a training loss weighted by a table read (class 2), not a scored value
            if not own and not summaries(facts).direct(s.fn)["score"]:
                continue  # a generic helper (``logsumexp``) that a caller's value reached; the caller's sink is reported
            kpaths = sorted((clean(p) for k, p in s.labels if k == "K"), key=lambda p: path_order(s, p))
            if not kpaths or (s.ff.path, s.fn.qualname) in done:
                continue
            done.add((s.ff.path, s.fn.qualname))
            yield code_finding(self, facts, s.ff, s.node,
                               f"the scored value at {s.fn.qualname}:{s.line} is built from a count ratio read for the "
                               "target token only (never normalized over the vocabulary)", path=list(kpaths[0]))
        for t in unnormalized_transforms(facts):
            if (t.ff.path, t.fn.qualname) in done:
                continue
            done.add((t.ff.path, t.fn.qualname))
            yield code_finding(self, facts, t.ff, t.node,
                               f"`{t.ff.line_text(t.line)[:100]}` {t.what}; the value read at the target from it is scored "
                               f"in {t.fn.qualname}, so the scored probabilities do not sum to 1 over the vocabulary",
                               path=[f"{t.fn.qualname}:{t.line}"])
        for hr in find_hashed_row_ratios(facts, tf):
            if (hr.ff.path, hr.fn.qualname) in done:
                continue
            done.add((hr.ff.path, hr.fn.qualname))
            yield code_finding(self, facts, hr.ff, hr.ratio,
                               f"the scored value at {hr.fn.qualname}:{hr.ratio.lineno} divides the target's count, gathered "
                               f"from a hashed vocabulary row (line {hr.lines[1]}), by a count that is not that row's sum; "
                               "with hash collisions the probabilities over the vocabulary do not sum to 1",
                               extra_lines=[ln for ln in hr.lines if ln != hr.ratio.lineno],
                               path=[f"{hr.fn.qualname}:{ln}" for ln in hr.lines])
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
            reported = _reported_from(ctx, facts, ppm)
            yield log_finding(self, ppm, "the logs show a byte-level PPM mixture "
                              + ("that produced the reported score" if reported else "(not the reported score)")
                              + "; byte mixtures are not normalized over the token vocabulary (C2)",
                              severity=None if reported else Severity.WARNING)


def _is_reciprocal(node) -> bool:
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(node.left, ast.Constant) \
        and node.left.value in (1, 1.0) and not isinstance(node.right, ast.Constant)


_BPB = re.compile(r"val_bpb[:=]\s*([0-9.]+)")


def _reported_from(ctx, facts, lines) -> bool:
    """Whether the reported number comes from the stage these log lines belong to: a final line of
    a log is one of them (or says ppm), or the claimed val_bpb equals one of their values."""
    stage = {(l.file, l.line) for l in lines}
    for f in facts.logs.finals:
        if (f.file, f.line) in stage or "ppm" in f.text.lower():
            return True
    claim = ctx.evidence.claims.val_bpb
    for l in lines:
        m = _BPB.search(l.text)
        if m and claim is not None:
            try:
                if abs(float(m.group(1).rstrip(".")) - claim) < 5e-4:
                    return True
            except ValueError:
                pass
    return False
