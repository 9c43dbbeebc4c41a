"""NGRAM-TARGET-IN-KEY (rules.md §1.1): an eval-time cache read at a key built from the target."""
from __future__ import annotations

from auditor.model import Severity
from rules._eval_cases import (BIGRAM_INPUT_HASH, DEAD_NGRAM, ILLEGAL_NGRAM, ILLEGAL_NGRAM_README_ON, LEGAL_NGRAM,
                               LEGAL_ROW_SUM_TABLE, wrapped)
from rules.analysis import analyse, native, taint
from rules.analysis.dataflow import clean
from rules.analysis.report import code_finding, path_order, sink_order, worst_reach
from rules.base import Invalid, Rule, Valid, register


@register
class NgramTargetInKey(Rule):
    """An n-gram/phrase cache must not score position t by reading a bucket whose key includes the
    target y[t] (the "full key"): the result is a count for the realized token only, not a
    distribution over the vocabulary. Updates keyed by (context, y) after the score is committed
    are legal; so are input-side hashes of (x[t], x[t-1]) such as BigramHash.

    Ruling: valerio-oai on PR #779 (2026-03-27) ruled hashed n-gram caches that look up the target
    disallowed; reasoning on PR #982. Found by following the target through helpers
    (``_batch_hash_full`` → ``batch_lookup`` → the scored mixture), not by names.
    """

    id = "NGRAM-TARGET-IN-KEY"
    code = "PG101"
    title = "an eval-time cache is read at a key that includes the target token"
    family = "ngram"
    ruling = "https://github.com/openai/parameter-golf/pull/779#issuecomment-4145781641"
    fix = ("At scoring time compute the cache's counts for every candidate token of the context (a [V] row), "
           "normalize over the vocabulary, then gather the target; use the target only to update counts afterwards.")
    default_severity = Severity.ERROR

    VALID = [
        Valid(LEGAL_NGRAM, note="normalized [V] row from a context-only key; np.add.at update with targets after scoring"),
        Valid(BIGRAM_INPUT_HASH, note="BigramHash of (x[t], x[t-1]) is input-side"),
        Valid(DEAD_NGRAM, note="illegal cache behind NGRAM_EVAL=0, logs show no n-gram stage: at most info"),
        Valid(LEGAL_ROW_SUM_TABLE, note="the target's column of a hashed-context row over that row's own sums (#185)"),
    ]
    INVALID = [
        Invalid(ILLEGAL_NGRAM, note="target hashed into the key inside a helper, read in lookup, mixed into the score"),
        Invalid(ILLEGAL_NGRAM_README_ON, note="guard off by default but the README run command turns it on"),
        Invalid(wrapped(ILLEGAL_NGRAM), note="the same code shipped as an lzma+b85 self-extracting wrapper"),
    ]

    def check(self, ctx):
        for h in native(ctx).hits:
            if h.kind == "key":
                yield self.finding(h.file, h.line, f"`{h.text}` in the native code of {h.func} reads a table at a key mixed "
                                   "from the token being predicted (tokens[i + 1] or the targets Python passes in)",
                                   evidence=[f"{h.file}:{h.line}: {h.text}"],
                                   reachability="native code the record builds and calls (read with tree-sitter)")
        facts = analyse(ctx)
        tf = taint(facts)
        seen = set()
        for kr in tf.key_reads.values():
            hits = []
            for s in tf.log_sinks.values():
                for kind, path in s.labels:
                    hp = clean(kr.hash_path)
                    if kind == "K" and clean(path)[-len(hp):] == hp:
                        hits.append((s, clean(path)))
            if not hits:
                continue
            s, path = min(hits, key=lambda h: (sink_order(facts, h[0]), path_order(h[0], h[1])))
            key = (kr.ff.path, kr.line)
            if key in seen:
                continue
            seen.add(key)
            reach = worst_reach(facts.reach(kr.node, kr.ff), facts.reach(s.node, s.ff))
            how = "hashed together with the context" if kr.hashed else "used as the column of a count table"
            extra = [int(p.rsplit(":", 1)[1]) for p in path
                     if (fn := facts.functions.get(p.rsplit(":", 1)[0])) is not None and fn.file == kr.ff.path]
            yield code_finding(
                self, facts, kr.ff, kr.node,
                f"`{kr.ff.line_text(kr.line)[:120]}` reads a table at a key that includes the target token ({how}); "
                f"the value feeds the scored probability at {s.fn.qualname}:{s.line}",
                path=list(path), reach=reach, extra_lines=extra + ([s.line] if s.ff.path == kr.ff.path else []))
