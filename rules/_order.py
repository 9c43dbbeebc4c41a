"""Score-before-update ordering inside eval loops (shared by EVAL-SCORE-BEFORE-UPDATE and
TTT-SCORE-FIRST; not a rule module)."""
from __future__ import annotations

import ast
import re

from rules._eval_common import eval_functions, scoring_loops
from rules.analysis.patterns import summaries

_PRIOR = re.compile(r"(prev|prior|last_chunk|- ?1\b|-1\]|already|scored|done)", re.I)


def update_before_score(facts, kind: str):
    """Yield (fn, loop, update_node) where, inside one loop iteration of an eval function, a state
    update of ``kind`` ("train" or "cache") runs before the score of the same iteration."""
    s = summaries(facts)
    for fn in eval_functions(facts):
        ff = facts.file_of(fn)
        for loop in scoring_loops(facts, fn):
            body = loop.body
            first_score = first_update = None
            upd_node = None
            for i, stmt in enumerate(body):
                if first_score is None and s.stmt_does(stmt, "score", fn) is not None:
                    first_score = i
                if first_update is None:
                    u = s.stmt_does(stmt, kind, fn)
                    if u is not None:
                        first_update, upd_node = i, u
            if first_update is None or first_score is None or first_update >= first_score:
                continue
            text = ff.line_text(getattr(upd_node, "lineno", loop.lineno))
            if _PRIOR.search(text) or _PRIOR.search(ast.unparse(body[first_update])[:400]):
                continue  # trains on an earlier (already scored) chunk
            yield fn, ff, loop, upd_node
