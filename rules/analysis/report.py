"""Turning analysis facts into findings: source line, evidence, helper path, reachability, note."""
from __future__ import annotations

import ast

from auditor.model import Finding, Severity
from auditor.policy import apply_reachability
from rules.analysis.facts import CodeFacts, Reach
from rules.analysis.index import FileFacts
from rules.analysis.logs import LogLine

_RANK = {None: 0, "non-default": 1, "unreachable": 2}


def worst_reach(*reaches: Reach) -> Reach:
    best = Reach(None)
    for r in reaches:
        if r is not None and _RANK[r.state] > _RANK[best.state]:
            best = r
    return best


def code_finding(rule, facts: CodeFacts, ff: FileFacts, node: ast.AST | None, message: str, *, line: int | None = None,
                 extra_lines: list[int] | None = None, path: list[str] | tuple = (), severity: Severity | None = None,
                 reach: Reach | None = None, rule_id: str | None = None, fix: str | None = None) -> Finding:
    line = line or getattr(node, "lineno", None)
    if reach is None:
        reach = facts.reach(node, ff) if node is not None else Reach(None)
    evidence = []
    for ln in [line] + list(extra_lines or []):
        if ln:
            t = ff.line_text(ln)
            if t and f"{ff.path}:{ln}: {t}" not in evidence:  # a line named twice is shown once
                evidence.append(f"{ff.path}:{ln}: {t}")
    path = [p for i, p in enumerate(path) if i == 0 or p != path[i - 1]]  # "f:37 → f:37" says nothing twice
    f = rule.finding(ff.path, line, message, evidence=evidence, severity=severity, path=path,
                     reachability=(f"{reach.state}: {reach.why}" if reach.state else "reachable under the logged configuration"),
                     note=facts.notes.get(ff.path), rule=rule_id, fix=fix)
    return apply_reachability(f, reach.state)


def log_finding(rule, lines: list[LogLine], message: str, *, severity: Severity | None = None,
                rule_id: str | None = None, fix: str | None = None) -> Finding:
    first = lines[0]
    return rule.finding(first.file, first.line, message, evidence=[f"{l.file}:{l.line}: {l.text.strip()[:300]}" for l in lines[:3]],
                        severity=severity, reachability="the logs show this stage ran", rule=rule_id, fix=fix)


def fn_line(fn) -> str:
    return f"{fn.qualname}:{fn.line}"


def sink_order(facts: CodeFacts, sink) -> tuple:
    """Sort key preferring sinks that run under the logged configuration and sit in a function
    that accumulates the score (not a generic helper that a tainted argument reached)."""
    from rules.analysis.patterns import summaries

    r = facts.reach(sink.node, sink.ff)
    scoring = bool(summaries(facts).direct(sink.fn)["score"])
    return (_RANK[r.state], not scoring, sink.ff.path, sink.line)


def path_order(sink, path: tuple) -> tuple:
    """Prefer the helper path whose first hop is the call just before the sink in its function
    (flow-insensitive taint merges every call site of a helper into one variable)."""
    first = path[0] if path else ""
    fn, _, ln = first.rpartition(":")
    try:
        line = int(ln)
    except ValueError:
        return (2, 0, -len(path))
    if fn == sink.fn.qualname and line <= sink.line:
        return (0, sink.line - line, -len(path))
    return (1, abs(line - sink.line), -len(path))
