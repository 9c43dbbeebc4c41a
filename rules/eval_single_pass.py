"""EVAL-SINGLE-PASS / EVAL-TWO-PASS (C4, rules.md §1.1)."""
from __future__ import annotations

import ast
import re

from auditor.model import Severity
from rules._eval_cases import LEGAL_TTT, PHASED_TTT, SLIDING_WINDOW, _ILLEGAL_CACHE, _SCORE, program
from rules.analysis import analyse
from rules.analysis.facts import print_fragments as _print_fragments
from rules.analysis.index import call_name
from rules.analysis.patterns import _acc_key, is_score_accum, summaries, walk_own
from rules.analysis.report import code_finding, log_finding
from rules.base import Invalid, Rule, Valid, register
from rules.analysis.index import walk as ast_walk  # ast.walk, faster (same nodes, same order)

FLAG = re.compile(r"(two_?pass|rescore|re_score|pass_?2|second_pass|full_rescore|rescor)", re.I)


# This rule's own VALID/INVALID programs (programs several rules share stay in rules/_eval_cases.py).
ILLEGAL_TWO_PASS = program(_ILLEGAL_CACHE.replace("    print(f\"final_ngram_exact", "    _ = 0\n    print(f\"pass1") + '''

def eval_two_pass(model, val_tokens, rescore_chunks):
    cache = NgramCache(1 << 16)
    chunk_losses = []
    p1_loss = 0.0
    for s in range(1, len(val_tokens) - 256, 256):
        pos = np.arange(s, s + 256)
        x = val_tokens[pos - 1]
        y = val_tokens[pos]
        nll = F.cross_entropy(model(x), y, reduction="none")
        p1_loss += float(nll.sum())
        chunk_losses.append(float(nll.sum()))
        cache.update(val_tokens, pos, y)
    if args_two_pass():
        p2_loss = 0.0
        for ci in range(rescore_chunks):
            pos = np.arange(1 + ci * 256, 1 + ci * 256 + 256)
            x = val_tokens[pos - 1]
            y = val_tokens[pos]
            p2_loss += float(F.cross_entropy(model(x), y, reduction="sum"))
        total_loss = p1_loss - sum(chunk_losses[:rescore_chunks]) + p2_loss
    else:
        total_loss = p1_loss
    print(f"final_ngram_exact val_loss:{total_loss:.4f} val_bpb:{total_loss:.4f}")


def args_two_pass():
    return bool(int(os.environ.get("NGRAM_TWO_PASS", "1")))
''', "eval_two_pass(model, val_tokens, 50)")

RESCORE_AFTER_TTT = program(_SCORE + '''

def eval_val_ttt(args, model, val_tokens, chunk=32768):
    opt = torch.optim.SGD(model.parameters(), lr=args.ttt_lr)
    loss_sum = 0.0
    for ci in range((len(val_tokens) - 1) // chunk):
        x = val_tokens[ci * chunk:(ci + 1) * chunk]
        y = val_tokens[ci * chunk + 1:(ci + 1) * chunk + 1]
        with torch.no_grad():
            loss_sum += F.cross_entropy(model(x), y, reduction="sum")
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return loss_sum
''', '''ttt_loss = eval_val_ttt(args, model, val_tokens)
    print(f"legal_ttt val_loss:{ttt_loss:.4f} val_bpb:{ttt_loss:.4f}")
    tcal_loss = eval_val(model, val_tokens)
    print(f"final_ttt_exact val_loss:{tcal_loss:.4f} val_bpb:{tcal_loss:.4f}")''')


@register
class EvalSinglePass(Rule):
    """Each validation token contributes exactly one term to the reported loss, from a single
    left-to-right pass. Rescoring tokens after the state absorbed them (or later tokens), replacing
    early-chunk scores with "warm" ones, or reporting the better of several passes is not allowed.
    Sliding-window overlap (each token scored once) and phased TTT are legal.

    Ruling: Issue #1017 C4; the two-pass n-gram PRs (#869, #893 and others) were closed; PR #864's
    head rescored the first 50 chunks against a cache holding the whole validation set.
    """

    id = "EVAL-SINGLE-PASS"
    code = "PG103"
    title = "validation tokens are scored more than once (two-pass / rescoring)"
    family = "eval"
    reports_under = ("REPORT-CONSISTENCY",)  # log evidence of a stage the code lacks
    ruling = "https://github.com/openai/parameter-golf/issues/1017"
    fix = "Score each validation token once, in one left-to-right pass; drop the second pass and report pass 1."
    default_severity = Severity.ERROR

    VALID = [
        Valid(SLIDING_WINDOW, note="sliding-window overlap: each token is scored once"),
        Valid(LEGAL_TTT, note="score-first TTT with post-score epochs"),
        Valid(PHASED_TTT, note="phased TTT over already-scored documents"),
    ]
    INVALID = [
        Invalid(ILLEGAL_TWO_PASS, note="pass-1 partial sums subtracted and replaced by a rescoring pass"),
        Invalid({"train_gpt.py": SLIDING_WINDOW,
                 "train_seed1.log": "ngram_pass2: rescoring first 50 chunks with full cache...\nngram_pass2:done bpb=0.13\n"},
                note="the logs show a rescoring pass that the shipped code lacks"),
        Invalid(RESCORE_AFTER_TTT, note="the TTT-adapted model rescores the whole validation set and that is reported"),
    ]

    def check(self, ctx):
        facts = analyse(ctx)
        code_has_pass2 = False
        s = summaries(facts)
        for fn in facts.functions.values():
            ff = facts.file_of(fn)
            reported = set()
            scores = s.direct(fn)["score"]
            accs = {k for x in scores if (k := _acc_key(x.target if isinstance(x, ast.AugAssign) else
                                                       x.targets[0] if isinstance(x, ast.Assign) else x.func.value))}
            partial = _score_lists(s, fn) | accs
            for n in walk_own(fn.node):
                if isinstance(n, ast.Constant) and isinstance(n.value, str) and FLAG.search(n.value):
                    code_has_pass2 = True
                if isinstance(n, ast.Assign) and _replaces_partial_sums(n, accs, partial):
                    reported.add(n.lineno)
                    yield code_finding(self, facts, ff, n,
                                       f"`{ff.line_text(n.lineno)[:120]}` subtracts earlier partial scores and adds a rescored pass",
                                       path=[f"{fn.qualname}:{n.lineno}"])
                if isinstance(n, ast.If) and _flag_guard(n) and _scores_inside(n.body, scores):
                    code_has_pass2 = True
                    if any(n.lineno <= ln <= getattr(n, "end_lineno", n.lineno) for ln in reported):
                        continue
                    r = facts.reach(n.body[0], ff)
                    r = r if r.state else facts.reach(n, ff)
                    yield code_finding(self, facts, ff, n,
                                       f"a second scoring pass behind `{ff.line_text(n.lineno)[:100]}` feeds the metric",
                                       reach=r, path=[f"{fn.qualname}:{n.lineno}"])
                    frags = _print_fragments(n.body)
                    if r.state is None and frags and facts.logs.lines and not facts._block_logged(ff, n.body):
                        yield code_finding(self, facts, ff, n,
                                           f"under its defaults the shipped code runs this pass and prints `{frags[0][:60]}`, "
                                           "but no log shows it: the logs were not produced by this code as configured",
                                           rule_id="REPORT-CONSISTENCY", severity=Severity.WARNING,
                                           fix="Ship the code that produced the logs (or document the env that disables the pass).")
        yield from self._rescore_after_ttt(facts)
        yield from self._repeated_passes(facts)
        marks = facts.logs.markers.get("ngram_pass2") or []
        if marks:
            if not code_has_pass2:
                yield log_finding(self, marks, "the logs show a rescoring pass (e.g. `ngram_pass2`) that the shipped code does not contain",
                                  rule_id="REPORT-CONSISTENCY",
                                  fix="Ship the code that produced the logs, or re-run the shipped code and ship its logs.")
            yield log_finding(self, marks, "the logs show a second pass rescoring validation tokens that feeds the reported score")


    def _repeated_passes(self, facts):
        """``for sweep in range(k)`` around a loop over the validation stream that scores, with state
        updated inside: with k >= 2 under the run's configuration, later sweeps score tokens the state
        already absorbed (``for pass_id in range(2)``, ``RESCORE_PASSES=2`` set by a launch script)."""
        from rules._eval_common import val_loops
        from rules.analysis.config import UNKNOWN, evaluate
        from rules.analysis.patterns import loops, summaries

        s = summaries(facts)
        for fn in facts.functions.values():
            inner_val = val_loops(facts, fn)
            if not inner_val:
                continue
            ff = facts.file_of(fn)
            for loop in loops(fn):
                if not (isinstance(loop, ast.For) and isinstance(loop.iter, ast.Call) and call_name(loop.iter.func) == "range"
                        and len(loop.iter.args) == 1):
                    continue
                srcs: set[str] = set()
                k = evaluate(loop.iter.args[0], facts.config, srcs)
                if k is UNKNOWN or not isinstance(k, int) or isinstance(k, bool) or k < 2:
                    continue
                inner = [l for l in inner_val if l is not loop and any(l is n for n in ast_walk(loop))]
                if not inner:
                    continue
                sc = next((x for l in inner for x in [s.stmt_does(l, "score", fn)] if x is not None), None)
                # state a later pass reads: a cache/table update (training epochs over val are TTT-MULTI-EPOCH's)
                up = s.stmt_does(loop, "cache", fn)
                if sc is None or up is None:
                    continue
                where = " (set by " + ", ".join(sorted(srcs & {"log", "readme"})) + ")" if srcs & {"log", "readme"} else ""
                yield code_finding(self, facts, ff, loop,
                                   f"`{ff.line_text(loop.lineno)[:80]}` runs {k} passes{where} over the validation stream: the "
                                   f"state updated at line {up.lineno} in one pass is used when the next pass scores the same "
                                   f"tokens (score at line {sc.lineno})",
                                   path=[f"{fn.qualname}:{loop.lineno}", f"{fn.qualname}:{up.lineno}", f"{fn.qualname}:{sc.lineno}"],
                                   extra_lines=[up.lineno, sc.lineno])

    def _rescore_after_ttt(self, facts):
        for drv, ff, c1, t1, c2, rep, shared in _rescore_after_ttt_calls(facts):
            yield code_finding(self, facts, ff, c2,
                               f"`{ff.line_text(c2.lineno)[:100]}` rescores the validation set with {', '.join(sorted(shared))} "
                               f"after {t1.qualname} (line {c1.lineno}) trained it on those tokens; line {rep.lineno} reports this second pass",
                               path=[f"{drv.qualname}:{c1.lineno}", f"{t1.qualname}:{t1.line}", f"{drv.qualname}:{c2.lineno}",
                                     f"{drv.qualname}:{rep.lineno}"], extra_lines=[c1.lineno, rep.lineno])


def _names(node) -> list[str]:
    return [n.id for n in ast_walk(node) if isinstance(n, ast.Name)] + \
        [n.attr for n in ast_walk(node) if isinstance(n, ast.Attribute)]


def _score_lists(s, fn) -> set[str]:
    """Lists that collect per-chunk scores: ``chunk_losses.append(float(nll.sum()))`` (by value)."""
    env = s._env(fn)
    lossy = s._lossy_info(fn, env)[0]
    return {k for n in walk_own(fn.node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
            and n.func.attr in ("append", "extend") and n.args and s._lossy_expr(n.args[0], lossy, env, fn)
            if (k := _acc_key(n.func.value))}


def _keys(node) -> set[str]:
    return {k for x in ast_walk(node) if (k := _acc_key(x))}


def _replaces_partial_sums(n: ast.Assign, accs: set[str], partial: set[str]) -> bool:
    """``total = p1 - sum(chunk_scores[:k]) + p2``: a score accumulator minus earlier partial scores plus
    another score accumulator (the rescored pass), whatever the variables are called."""
    for b in ast_walk(n.value):
        if isinstance(b, ast.BinOp) and isinstance(b.op, ast.Sub):
            left, right = _keys(b.left) & accs, _keys(b.right) & partial
            if left and right:
                added = {k for x in ast_walk(n.value) if isinstance(x, ast.BinOp) and isinstance(x.op, ast.Add)
                         for side in (x.left, x.right) if side is not b for k in _keys(side) & accs} - left - right
                if added:
                    return True
    return False


def _flag_guard(n: ast.If) -> bool:
    for x in ast_walk(n.test):
        if isinstance(x, ast.Attribute) and FLAG.search(x.attr):
            return True
        if isinstance(x, ast.Name) and FLAG.search(x.id):
            return True
        if isinstance(x, ast.Constant) and isinstance(x.value, str) and FLAG.search(x.value):
            return True
        if isinstance(x, ast.Call) and FLAG.search(call_name(x.func)):
            return True
    return False


def _scores_inside(body, scores) -> bool:
    ids = {id(x) for x in scores}
    return any(is_score_accum(x) or id(x) in ids for st in body for x in ast_walk(st))


_NOT_MODEL = re.compile(r"^(args|h|hp|hparams|cfg|config|device|rank|world_size|log\w*|val\w*|\w*_lut|stride|batch_seqs|seq_len|eval_seq_len)$")


def _rescore_after_ttt_calls(facts):
    """(driver, ttt_call, ttt_fn, rescore_call, report_node): a later full scoring pass of the same
    model after a TTT pass adapted it on the validation stream, printed as the result."""
    from rules._eval_common import exclusive, in_loop
    from rules._eval_common import _val_args

    s = summaries(facts)
    finals = {ll.text.split()[0].rstrip(":") for ll in facts.logs.finals if ll.text.split()}
    for drv in facts.functions.values():
        ff = facts.file_of(drv)
        env = s._env(drv)
        calls = sorted((n for n in walk_own(drv.node) if isinstance(n, ast.Call)), key=lambda n: (n.lineno, n.col_offset))
        ttt = None
        for c in calls:
            if in_loop(ff, c, drv.node):
                continue
            if not _val_args(c, env):
                continue
            short = call_name(c.func).rsplit(".", 1)[-1]
            for t in facts.resolve(short, c, drv):
                if t is drv:
                    continue
                if s.does(t, "train") and s.does(t, "ngscore"):
                    ttt = (c, t)
                    break
                if ttt and s.does(t, "score") and not s.does(t, "train") and c.lineno > ttt[0].lineno \
                        and not exclusive(ff, ttt[0], c):
                    shared = _model_args(c, env) & _model_args(ttt[0], env)
                    if not shared:
                        break
                    rep = _reported_after(ff, drv, c, finals)
                    if rep is not None:
                        yield drv, ff, ttt[0], ttt[1], c, rep, shared
                    break


def _model_args(call, env) -> set[str]:
    """Plain-name arguments that are not the validation stream (the model, its state)."""
    return {a.id for a in call.args if isinstance(a, ast.Name) and not _NOT_MODEL.match(a.id)
            and not any(l[0] == "V" for l in env.get(a.id, ()))}


def _reported_after(ff, drv, call, finals):
    stmt = ff.parent(call)
    while stmt is not None and not isinstance(stmt, ast.stmt):
        stmt = ff.parent(stmt)
    outs = set()
    if isinstance(stmt, ast.Assign):
        outs = {n.id for t in stmt.targets for n in ast_walk(t) if isinstance(n, ast.Name)}
    if not outs:
        return None
    for n in walk_own(drv.node):
        if isinstance(n, ast.JoinedStr) and n.lineno > call.lineno:
            used = {x.id for x in ast_walk(n) if isinstance(x, ast.Name)}
            lit = "".join(v.value for v in n.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
            label = lit.split()[0].rstrip(":") if lit.split() else ""
            if used & outs and ((finals and label in finals) or (not finals and ("exact" in lit or "final" in lit))):
                return n
    return None
