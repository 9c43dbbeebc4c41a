"""NGRAM-HASHED-CACHE (rules.md §1.1)."""
from __future__ import annotations

import re

from auditor.model import Severity
from rules._eval_cases import BIGRAM_INPUT_HASH, DEAD_NGRAM, ILLEGAL_NGRAM, LEGAL_NGRAM, LEGAL_ROW_SUM_TABLE, program
from rules.analysis import analyse, taint
from rules.analysis.dataflow import clean
from rules._eval_common import missing_stages
from rules.analysis.report import code_finding, log_finding
from rules.base import Invalid, Rule, Valid, register

# an exact V×V bigram table: the pair index ``prev * V + next`` with V columns collides nowhere (PR #704); its rows
# are normalized over the vocabulary before the scored token is read, so it is neither hashed nor a target lookup
_PAIR_TABLE = '''

class Pairs:
    def __init__(self, width):
        self.width = width
        self.counts = torch.zeros((width, width))

    def add(self, prev, nxt):
        idx = prev * self.width + nxt
        got = torch.bincount(idx, minlength={minlength})
        self.counts += got.reshape(self.width, self.width)

    def logp(self, prev):
        rows = self.counts + 0.5
        return (rows / rows.sum(-1, keepdim=True)).log()[prev]


def eval_val(model, val_tokens, width):
    pairs = Pairs(width)
    loss_sum = 0.0
    for s in range(0, len(val_tokens) - 257, 256):
        x = val_tokens[s:s + 256]
        y = val_tokens[s + 1:s + 257]
        lp = torch.log_softmax(model(x) + pairs.logp(x), -1)
        loss_sum += -lp.gather(1, y[:, None]).sum()
        pairs.add(x, y)
    print(f"final_pair_exact val_loss:{{loss_sum:.4f}} val_bpb:{{loss_sum:.4f}}")
'''
LEGAL_EXACT_PAIR_TABLE = program(_PAIR_TABLE.format(minlength="self.width * self.width"), "eval_val(model, val_tokens, 1024)")
# the same update into a table of B buckets: the pair index wraps around, a hashed table
HASHED_PAIR_TABLE = program(_PAIR_TABLE.format(minlength="4096").replace(
    "idx = prev * self.width + nxt", "idx = (prev * self.width + nxt) % 4096").replace(
    "self.counts += got.reshape(self.width, self.width)", "self.counts += got[:self.width * self.width].reshape(self.width, self.width)"),
    "eval_val(model, val_tokens, 1024)")

TRAIN_READ = re.compile(r"fineweb_train|train_files|train_pattern|train_shards?|TRAIN_FILES", re.I)


@register
class NgramHashedCache(Rule):
    """Eval-built hashed n-gram caches keyed by (context, target) were ruled out as a class: their
    counts do not renormalize over the vocabulary. Tables prefilled from training shards at eval
    start also fall under DATA-NO-TRAIN-AT-EVAL. Count tables that are normalized over all V
    candidates, or built at training time and paid for inside the 16 MB, are not this rule.

    Ruling: valerio-oai on PR #982 (2026-03-27): "disallowed due to the use of hashed n-gram
    caches, which do not renormalize correctly".
    """

    id = "NGRAM-HASHED-CACHE"
    code = "PG111"
    title = "an eval-time hashed n-gram cache keyed by the target feeds the score"
    family = "ngram"
    reports_under = ("REPORT-CONSISTENCY",)  # log evidence of a stage the code lacks
    ruling = "https://github.com/openai/parameter-golf/pull/982"
    fix = "Remove the hashed (context, target) cache, or compute and normalize counts for all V tokens of each context."
    default_severity = Severity.ERROR

    VALID = [Valid(LEGAL_NGRAM), Valid(BIGRAM_INPUT_HASH), Valid(DEAD_NGRAM),
             Valid(LEGAL_EXACT_PAIR_TABLE, note="exact prev * V + next counts in a V×V table, rows normalized (#704)"),
             Valid(LEGAL_ROW_SUM_TABLE, note="hashed-context rows of V columns and their row sums (#185)")]
    INVALID = [Invalid(ILLEGAL_NGRAM),
               Invalid(HASHED_PAIR_TABLE, expect=Severity.WARNING, note="the same pair index wrapped into 4096 buckets"),
               Invalid({"train_gpt.py": LEGAL_NGRAM,
                        "train_seed1.log": "ngram: prefilled cache from 80 train shards (8B tokens)\nfinal_ngram_exact val_loss:1 val_bpb:0.5\n"},
                       note="logs show an n-gram prefill from training shards the code lacks")]

    def check(self, ctx):
        facts = analyse(ctx)
        tf = taint(facts)
        feeds = any(k == "K" for s in tf.log_sinks.values() for k, _ in s.labels)
        seen = set()
        # the live update first: a dead copy (``if False:``) beside it is not the one to report (issue #12 class 10)
        for u in sorted(tf.hashed_updates.values(), key=lambda u: (u.ff.path, facts.reach(u.node, u.ff).state is not None, u.line)):
            if u.fn.qualname in seen:
                continue
            seen.add(u.fn.qualname)
            hp = sorted((clean(p) for k, p in u.labels if k == "H"), key=len, reverse=True)
            yield code_finding(self, facts, u.ff, u.node,
                               f"`{u.ff.line_text(u.line)[:100]}` fills a hashed table keyed by (context, target) at eval time"
                               + ("; reads of it feed the scored probability" if feeds else ""),
                               severity=None if feeds else Severity.WARNING,
                               path=[f"{u.fn.qualname}:{u.line}"] + list(hp[0] if hp else ()))
        stage = missing_stages(facts).get("ngram")
        if stage and not tf.key_reads and not tf.hashed_updates:
            yield log_finding(self, stage, "the logs show an n-gram cache stage before the reported score that the shipped code "
                              "does not contain: the claimed score came from code that was not shipped, so its cache cannot be "
                              "checked to be normalized and keyed by the context only",
                              fix="Ship the code that produced the logs, or re-run the shipped code and ship its logs.")
        marks = facts.logs.markers.get("ngram_prefill_train") or []
        if marks:
            code_reads_train = any(TRAIN_READ.search(ff.text) and "prefill" in ff.text.lower() for ff in facts.files)
            if not code_reads_train:
                yield log_finding(self, marks, "the logs show an n-gram prefill from training shards that the shipped code does not contain",
                                  rule_id="REPORT-CONSISTENCY",
                                  fix="Ship the code that produced the logs, or re-run the shipped code and ship its logs.")
            yield log_finding(self, marks, "the logs show the eval-time n-gram tables prefilled from training data")
