"""EVAL-CAUSAL (C1, rules.md §1.1); also reports code that could not be checked."""
from __future__ import annotations

import ast
import re

from auditor.model import Severity
from rules._eval_cases import ILLEGAL_TARGET_GATE, LEGAL_PREFIX_GATE, SLIDING_WINDOW, TILT_WITH_Z, UNDECODABLE_WRAPPER, wrapped
from rules._eval_common import training_only
from rules.analysis import analyse, native, taint
from rules.analysis.patterns import summaries, walk_own
from rules.analysis.report import code_finding
from rules.analysis.dataflow import has
from rules.base import Invalid, Rule, Valid, register
from rules.analysis.index import walk as ast_walk  # ast.walk, faster (same nodes, same order)



_FSTRING = re.compile(r"\b[rRbBuU]?[fF][rR]?[\"\']")  # PEP 701 f-strings are what older Pythons reject

@register
class EvalCausal(Rule):
    """At a scored position t the predictive distribution may depend only on the artifact and
    the tokens before t. A gate, mixing weight, expert selector or branch of the scored probability
    that reads the target y[t] (e.g. ``is_word_start[y[t]]``) breaks causality. Features of the
    prefix (``is_word_start[x[t]]``), byte-count LUTs indexed by y (the BPB denominator) and a tilt
    that evaluates a normalized distribution at y are legal.

    This rule also warns when code could not be checked (an undecodable self-extracting wrapper
    or a file that does not parse): such code is never silently passed.

    Ruling: README ("You can't cheat on your test loss"); Issue #1017 C1; valerio-oai on #982.
    """

    id = "EVAL-CAUSAL"
    code = "PG109"
    title = "the scored probability depends on the target token through a gate or selector"
    family = "eval"
    ruling = "https://github.com/openai/parameter-golf/issues/1017"
    fix = "Compute gates, weights and expert choices from the prefix x[<=t] only (e.g. the last input token)."
    default_severity = Severity.ERROR

    VALID = [Valid(LEGAL_PREFIX_GATE, note="the gate reads the last input token"),
             Valid(TILT_WITH_Z, note="tilt with explicit Z"), Valid(SLIDING_WINDOW)]
    INVALID = [Invalid(ILLEGAL_TARGET_GATE, note="is_word_start[y] gates the mixture"),
               Invalid(wrapped(ILLEGAL_TARGET_GATE), note="the same inside an lzma wrapper"),
               Invalid(UNDECODABLE_WRAPPER, expect=Severity.WARNING, note="an undecodable wrapper: code could not be checked")]

    def check(self, ctx):
        ev = ctx.evidence
        for where, line, why in ev.code.undecodable:
            yield self.finding(where, line, f"code could not be checked: the self-extracting wrapper could not be decoded ({why})",
                               severity=Severity.WARNING, evidence=[f"{where}:{line}"],
                               fix="Ship plain source, or a wrapper that decodes with literal payloads (lzma/zlib + base64).")
        for d in ev.code.dynamic:
            if d.what in ("exec", "import"):
                yield self.finding(d.file, d.line, f"code could not be checked: a dynamic {d.what} ({d.why})",
                                   severity=Severity.WARNING, evidence=[f"{d.file}:{d.line}: {d.text[:200]}"],
                                   fix="Exec files and import modules by literal name (or ship plain source) so the audit can read them.")
        nf = native(ctx)
        for where, line, why in nf.unreadable:
            yield self.finding(where, line, f"code could not be checked: native code ({why})", severity=Severity.WARNING,
                               evidence=[f"{where}:{line}"], fix="Ship the C/C++/CUDA source the record builds, as plain text.")
        for h in nf.hits:
            if h.kind == "gate":
                yield self.finding(h.file, h.line, f"`{h.text}` in the native code of {h.func} branches on a property of the "
                                   f"token being predicted and decides what is written for that position (line {h.extra_line})",
                                   evidence=[f"{h.file}:{h.line}: {h.text}"],
                                   reachability="native code the record builds and calls (read with tree-sitter)")
        facts = analyse(ctx)
        for ff in facts.files:
            if ff.parse_error:
                yield self.finding(ff.path, None, f"code could not be checked: {ff.parse_error}", severity=Severity.WARNING,
                                   note=facts.notes.get(ff.path), fix="Ship source that parses as Python 3.")
            elif ff.skipped_lines and not all(_FSTRING.search(ff.line_text(ln)) for ln in ff.skipped_lines):
                # a skipped line that is not a newer-Python f-string hides code the analysis never saw
                odd = [ln for ln in ff.skipped_lines if not _FSTRING.search(ff.line_text(ln))]
                yield self.finding(ff.path, odd[0], f"code could not be checked: {len(odd)} line(s) do not parse as Python and were "
                                   "skipped by the analysis", severity=Severity.WARNING,
                                   evidence=[f"{ff.path}:{ln}: {ff.line_text(ln)[:120]}" for ln in odd[:3]],
                                   note=facts.notes.get(ff.path), fix="Ship source that parses as Python 3.")
            elif ff.skipped_lines:
                yield self.finding(ff.path, ff.skipped_lines[0],
                                   f"{len(ff.skipped_lines)} line(s) use syntax newer than this Python and were skipped by the analysis",
                                   severity=Severity.INFO, evidence=[f"{ff.path}:{ln}: {ff.line_text(ln)[:120]}" for ln in ff.skipped_lines[:3]],
                                   note=facts.notes.get(ff.path), fix="Nothing to fix; run pgolf on Python 3.12+ to analyse them too.")
        tf = taint(facts)
        s = summaries(facts)
        seen = set()
        for fn in facts.functions.values():
            if fn.qualname not in tf.analysed or training_only(facts, fn):
                continue  # a gate in a training step weights the training loss, not a scored probability
            ff = facts.file_of(fn)
            env = tf.env.get(fn.qualname, {})
            scored = s.scored_keys(fn)
            model_made = _model_made(fn, env)
            # a gate: a table read at the target token alone (a property of y[t], not a distribution's
            # row at (position, y)) whose value reaches the scored probability, not only a byte count
            gates: dict[str, ast.AST] = {}
            for n in walk_own(fn.node):
                if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name) \
                        and n.targets[0].id in scored:
                    for sub in ast_walk(n.value):
                        if isinstance(sub, ast.Subscript) and not isinstance(sub.slice, (ast.Tuple, ast.Slice)) \
                                and _raw_target(sub.slice, env) and not _distribution(sub.value, env, model_made):
                            gates[n.targets[0].id] = n
            if not gates:
                continue
            for n in walk_own(fn.node):
                if isinstance(n, (ast.Assign, ast.AugAssign)):
                    used = {x.id for x in ast_walk(n.value) if isinstance(x, ast.Name)} & set(gates)
                    if used and n not in gates.values():
                        g = gates[sorted(used)[0]]
                        if (ff.path, g.lineno) in seen:
                            continue
                        seen.add((ff.path, g.lineno))
                        yield code_finding(self, facts, ff, g,
                                           f"`{ff.line_text(g.lineno)[:100]}` reads a property of the target token and gates "
                                           f"the scored value at line {n.lineno}",
                                           path=[f"{fn.qualname}:{g.lineno}", f"{fn.qualname}:{n.lineno}"], extra_lines=[n.lineno])


def _raw_target(idx, env) -> bool:
    return any(isinstance(x, ast.Name) and has(env.get(x.id, ()), "T") for x in ast_walk(idx))


def _model_made(fn, env) -> set[str]:
    """Names bound (in ``fn``) to the model's output: a call on validation tokens, a softmax of one."""
    out: set[str] = set()
    assigns = [(n.targets[0].id, n.value) for n in walk_own(fn.node)
               if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)]
    changed = True
    while changed:
        changed = False
        for name, v in assigns:
            if name not in out and _distribution(v, env, out):
                out.add(name)
                changed = True
    return out


def _distribution(node, env, made) -> bool:
    """A value computed from the model's output (a call on validation tokens, a softmax, a name bound to one)."""
    for x in ast_walk(node):
        if isinstance(x, ast.Name) and (x.id in made or has(env.get(x.id, ()), "S")):
            return True
        if isinstance(x, ast.Call):
            short = ast.unparse(x.func).rsplit(".", 1)[-1]
            if short in ("softmax", "log_softmax", "sigmoid", "exp"):
                return True
            if any(isinstance(y, ast.Name) and (has(env.get(y.id, ()), "V")) for a in x.args for y in ast_walk(a)):
                return True
    return False
