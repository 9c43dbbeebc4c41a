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


def exclusive(ff, a, b) -> bool:
    """True when ``a`` and ``b`` sit in different arms of one ``if``/``else`` (or ``x if c else y``):
    at most one of them runs, so they are never two passes over the same tokens."""
    chain_a = []
    child, p = a, ff.parent(a)
    while p is not None:
        chain_a.append((p, child))
        child, p = p, ff.parent(p)
    arms = {id(p): child for p, child in chain_a if isinstance(p, (ast.If, ast.IfExp))}
    child, p = b, ff.parent(b)
    while p is not None:
        if id(p) in arms:
            ca = arms[id(p)]
            return _arm(p, ca) != _arm(p, child) and None not in (_arm(p, ca), _arm(p, child))
        child, p = p, ff.parent(p)
    return False


def _arm(node, child):
    if isinstance(node, ast.IfExp):
        return "body" if child is node.body else "else" if child is node.orelse else None
    if any(child is s for s in node.body):
        return "body"
    if any(child is s for s in node.orelse):
        return "else"
    return None
