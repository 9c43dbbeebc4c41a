"""Helpers shared by the eval-integrity rules (not a rule module)."""
from __future__ import annotations

import ast
import re

from rules.analysis import CodeFacts, FuncInfo
from rules.analysis.patterns import summaries

EVALISH = re.compile(r"(eval|ttt|score|slot|test_time|ngram|valid|rescore|lookup|predict|mix|bpb)", re.I)
NOT_EVAL = re.compile(r"^(main|train\w*|_?warmup\w*|run)$", re.I)


def eval_functions(facts: CodeFacts) -> list[FuncInfo]:
    """Functions that look like eval drivers: eval-ish names (or val-token params) that score."""
    out = []
    s = summaries(facts)
    for fn in facts.functions.values():
        if NOT_EVAL.match(fn.short):
            continue
        val_param = any(re.search(r"val", p) for p in fn.params)
        if (EVALISH.search(fn.qualname) or val_param) and s.direct(fn)["score"]:
            out.append(fn)
    return out


def ancestors(ff, node, stop):
    p = ff.parent(node)
    while p is not None and p is not stop:
        yield p
        p = ff.parent(p)


def in_loop(ff, node, fn_node) -> bool:
    return any(isinstance(a, (ast.For, ast.While, ast.AsyncFor)) for a in ancestors(ff, node, fn_node))
