"""ORACLE-SELECTION (rules.md §1.1)."""
from __future__ import annotations

import ast
import re

from auditor.model import Severity
from rules._eval_cases import _SCORE, LEGAL_NGRAM, ORACLE_EMA_SWA, SLIDING_WINDOW, program
from rules._eval_common import val_score_names
from rules.analysis import analyse, taint
from rules.analysis.dataflow import has
from rules.analysis.index import call_name
from rules.analysis.patterns import _acc_key, is_score_accum, summaries, walk_own
from rules.analysis.report import code_finding
from rules.base import Invalid, Rule, Valid, register
from rules.analysis.index import walk as ast_walk  # ast.walk, faster (same nodes, same order)

LOSSY = re.compile(r"(nll|loss|bpb|bits|ce\b|xent)", re.I)
_LABEL = re.compile(r"[A-Za-z_][\w.-]*")  # a score line's label: ``final_…_exact`` in ``final_…_exact val_bpb:1.2``
VALSCORE = re.compile(r"(val_?bpb|val_?loss|bpb|_bpb|eval_loss)", re.I)


# This rule's own VALID/INVALID programs (programs several rules share stay in rules/_eval_cases.py).
ILLEGAL_MIN_NLL = program('''

def eval_val(model, cache_nll, val_tokens):
    loss_sum = 0.0
    for s in range(0, len(val_tokens) - 257, 256):
        x = val_tokens[s:s + 256]
        y = val_tokens[s + 1:s + 257]
        nll_model = F.cross_entropy(model(x), y, reduction="none")
        nll_cache = cache_nll(x, y)
        loss_sum += torch.minimum(nll_model, nll_cache).sum()
    print(f"final_mix_exact val_loss:{loss_sum:.4f} val_bpb:{loss_sum:.4f}")
''', "eval_val(model, lambda a, b: a.float(), val_tokens)")

ILLEGAL_SAFETY_GATE = program('''

def eval_val(model, cache_nll, val_tokens):
    loss_sum = 0.0
    for s in range(0, len(val_tokens) - 257, 256):
        x = val_tokens[s:s + 256]
        y = val_tokens[s + 1:s + 257]
        scored_nll = F.cross_entropy(model(x), y, reduction="none")
        for t in range(256):
            new_nll = cache_nll(x[:t + 1], y[t])
            old_nll = scored_nll[t].item()
            if new_nll < old_nll:
                scored_nll[t] = new_nll
        loss_sum += scored_nll.sum()
    print(f"final_gate_exact val_loss:{loss_sum:.4f} val_bpb:{loss_sum:.4f}")
''', "eval_val(model, lambda a, b: 0.0, val_tokens)")


# several evaluations run (here one per worker, handed back through files), the smallest printed as the result
# (the PR #1239 shape: eight eval variants, ``min(all_results, key=…)`` reported as the final val_bpb)
_VARIANTS = _SCORE + '''

def run_variants(model, val_tokens, rank, world):
    plans = [("plain", lambda m: eval_val(m, val_tokens)), ("short", lambda m: eval_val(m, val_tokens, 256))]
    name, fn = plans[rank % len(plans)]
    with open(f"/tmp/res_{rank}", "w") as f:
        f.write(f"{name}\\t{fn(model)}\\n")
    if rank == 0:
        got = []
        for r in range(world):
            a, b = open(f"/tmp/res_{r}").read().split("\\t")
            got.append((a, float(b)))
        {pick}
'''
ILLEGAL_MIN_OF_VARIANTS = program(_VARIANTS.replace("{pick}", """which, v = min(got, key=lambda t: t[1])
        print(f"final_int8_zlib_roundtrip_exact val_loss:{v:.4f} val_bpb:{v:.4f}")"""), "run_variants(model, val_tokens, 0, 2)")
# the same minimum only logged beside the result of the one fixed evaluation
LEGAL_MIN_LOGGED = program(_VARIANTS.replace("{pick}", """which, v = min(got, key=lambda t: t[1])
        print(f"variant spread lowest:{v:.4f} ({which})")
        print(f"final_int8_zlib_roundtrip_exact val_loss:{got[0][1]:.4f} val_bpb:{got[0][1]:.4f}")"""),
                           "run_variants(model, val_tokens, 0, 2)")


# a setting (a temperature, a window) picked by the loss on tokens that are not the validation set (PR #2147:
# tokens the model generated itself; merged 2026-03-24 ternary records: a training batch), whatever they are called
_TEMP_PICK = _SCORE + '''

def pick_setting(model, val_tokens):
    best_t, best = 1024, float("inf")
    for t in (256, 512, 1024):
        got = eval_val(model, val_tokens, t)
        if got < best:
            best = got
            best_t = t
    return best_t


def draw(model, n):
    tokens = torch.randint(0, 1024, (1, 1))
    for _ in range(n):
        nxt = torch.multinomial(torch.softmax(model(tokens)[:, -1], -1), 1)
        tokens = torch.cat([tokens, nxt], dim=1)
    return tokens
'''
LEGAL_TEMP_ON_DRAWS = program(_TEMP_PICK, """t = pick_setting(model, draw(model, 64))
    print(f"final_exact val_loss:{eval_val(model, val_tokens, t):.4f} val_bpb:{eval_val(model, val_tokens, t):.4f}")""")
LEGAL_TEMP_ON_TRAIN = program(_TEMP_PICK, """calib_tokens = torch.from_numpy(np.fromfile("data/fineweb_train_000001.bin", dtype=np.uint16))[:4096]
    t = pick_setting(model, calib_tokens)
    print(f"final_exact val_loss:{eval_val(model, val_tokens, t):.4f} val_bpb:{eval_val(model, val_tokens, t):.4f}")""")
ILLEGAL_TEMP_ON_VAL = program(_TEMP_PICK, """t = pick_setting(model, val_tokens[:4096])
    print(f"final_exact val_loss:{eval_val(model, val_tokens, t):.4f} val_bpb:{eval_val(model, val_tokens, t):.4f}")""")


# the better of two evaluations, one of which loads the validation set itself (PR #694's TTT eval takes no tokens)
ILLEGAL_MIN_SELF_LOADING = program(_SCORE + '''

def eval_adapted(model):
    toks = torch.load("data/val.pt")
    return eval_val(model, toks)
''', """plain = eval_val(model, val_tokens)
    adapted = eval_adapted(model)
    best = min(plain, adapted)
    print(f"final_exact val_loss:{best:.4f} val_bpb:{best:.4f}")""")


@register
class OracleSelection(Rule):
    """No selection that uses the realized targets or the validation score: ``min(nll_model,
    nll_cache)`` per token, "safety gates that can never worsen a prediction", or picking weights,
    checkpoints or passes (EMA vs SWA, alphas) by their validation score. Per-token minima that
    feed the reported loss are errors; choices between models by val score are warnings.

    Ruling: the #659 target-based safety gate was ruled illegal (as reported in #779/#702);
    README FAQ on brute-forcing; cocohearts' #2124 audit.
    """

    id = "ORACLE-SELECTION"
    code = "PG110"
    title = "a choice is made by looking at validation targets or scores"
    family = "eval"
    ruling = "https://github.com/openai/parameter-golf/pull/659"
    fix = "Choose mixing weights, checkpoints and passes without looking at validation scores or targets."
    default_severity = Severity.ERROR

    VALID = [Valid(LEGAL_NGRAM), Valid(SLIDING_WINDOW),
             Valid(LEGAL_MIN_LOGGED, note="the minimum over variants is logged, the fixed evaluation is the result"),
             Valid(LEGAL_TEMP_ON_DRAWS, note="a setting picked on tokens the model generated (#2147)"),
             Valid(LEGAL_TEMP_ON_TRAIN, note="a setting picked on a training shard passed as `val_tokens`")]
    INVALID = [Invalid(ILLEGAL_MIN_NLL, note="per-token min of two NLLs feeds the score"),
               Invalid(ILLEGAL_SAFETY_GATE, note="if new_nll < old_nll: keep the better one (the #659 gate)"),
               Invalid(ORACLE_EMA_SWA, expect=Severity.WARNING, note="EMA vs SWA picked by validation score"),
               Invalid(ILLEGAL_TEMP_ON_VAL, expect=Severity.WARNING, note="the same setting picked on the validation set"),
               Invalid(ILLEGAL_MIN_SELF_LOADING, note="min of two evaluations, one loading the validation set itself (#694)"),
               Invalid(ILLEGAL_MIN_OF_VARIANTS, note="the minimum over several evaluations is printed as the final score (#1239)")]

    def check(self, ctx):
        facts = analyse(ctx)
        tf = taint(facts)
        s = summaries(facts)
        finals = {m.group() for ll in facts.logs.finals if (m := _LABEL.match(ll.text.strip()))}
        for fn in facts.functions.values():
            ff = facts.file_of(fn)
            byv = list(self._by_value(facts, tf, fn, ff)) + list(self._reported_extreme(facts, fn, ff, finals))
            yield from byv
            told = {f.line for f in byv}
            env = tf.env.get(fn.qualname, {})
            lossy_names = s._lossy_info(fn, env)[0]
            scored = s.scored_keys(fn)
            own_scores = {id(x) for x in s.direct(fn)["score"]}

            def lossy(e):  # a loss, by where its value comes from (a name is only a hint)
                return s._lossy_expr(e, lossy_names, env, fn) or bool(LOSSY.search(ast.unparse(e)))

            for n in walk_own(fn.node):
                if getattr(n, "lineno", None) in told:
                    continue
                if isinstance(n, ast.Call) and call_name(n.func).rsplit(".", 1)[-1] in ("minimum", "fmin", "min") and len(n.args) >= 2:
                    if all(lossy(a) for a in n.args[:2]):
                        stmt = _stmt(ff, n)
                        feeds = stmt is not None and (is_score_accum(stmt) or id(stmt) in own_scores or (
                            isinstance(stmt, ast.Assign) and any(_acc_key(t) in scored for t in stmt.targets)))
                        yield code_finding(self, facts, ff, n,
                                           f"`{ff.line_text(n.lineno)[:100]}` takes the minimum of alternative losses"
                                           + (" and accumulates it into the score" if feeds else ""),
                                           severity=None if feeds else Severity.WARNING, path=[f"{fn.qualname}:{n.lineno}"])
                if isinstance(n, ast.If) and isinstance(n.test, ast.Compare) and len(n.test.ops) == 1 \
                        and isinstance(n.test.ops[0], (ast.Lt, ast.Gt, ast.LtE, ast.GtE)):
                    left, right = ast.unparse(n.test.left), ast.unparse(n.test.comparators[0])
                    if lossy(n.test.left) and lossy(n.test.comparators[0]) and _keeps_smaller(n, left, right, scored):
                        yield code_finding(self, facts, ff, n,
                                           f"`{ff.line_text(n.lineno)[:100]}` keeps whichever loss is smaller for the scored "
                                           "token (an oracle \"safety gate\" that looks at the target)",
                                           path=[f"{fn.qualname}:{n.lineno}"])
                        continue
                    if VALSCORE.search(left) and VALSCORE.search(right):
                        yield code_finding(self, facts, ff, n,
                                           f"`{ff.line_text(n.lineno)[:100]}` chooses between runs by their validation score",
                                           severity=Severity.WARNING, path=[f"{fn.qualname}:{n.lineno}"])


    def _reported_extreme(self, facts, fn, ff, finals):
        """The number printed as the final score is the smallest (or largest) entry of a collection of results
        (``best = min(results, key=…)``, ``sorted(results)[0]``): several evaluations ran and the best one is
        reported (PR #1239), whatever the collection and its entries are called."""
        picks = []
        for n in walk_own(fn.node):
            if not isinstance(n, ast.Assign):
                continue
            v = n.value
            if isinstance(v, ast.Subscript) and isinstance(v.slice, (ast.Constant, ast.UnaryOp)):
                v = v.value  # ``sorted(results)[0]``
                if not (isinstance(v, ast.Call) and call_name(v.func) == "sorted"):
                    continue
            if not (isinstance(v, ast.Call) and call_name(v.func) in ("min", "max", "sorted") and len(v.args) == 1
                    and not isinstance(v.args[0], (ast.Tuple, ast.List, ast.Set, ast.GeneratorExp, ast.ListComp))):
                continue
            outs = {x.id for t in n.targets for x in ast_walk(t) if isinstance(x, ast.Name)}
            if outs:
                picks.append((n, outs))
        for n, outs in picks:
            for j in walk_own(fn.node):
                if not (isinstance(j, ast.JoinedStr) and j.lineno > n.lineno):
                    continue
                lit = "".join(x.value for x in j.values if isinstance(x, ast.Constant) and isinstance(x.value, str))
                m = _LABEL.match(lit.strip())
                label = m.group() if m else ""
                shown = {x.id for v in j.values if isinstance(v, ast.FormattedValue) for x in ast_walk(v.value)
                         if isinstance(x, ast.Name)}
                final = label in finals if finals else ("exact" in lit or "final" in lit)
                if final and shown & outs and re.search(r"val_(bpb|loss)", lit):
                    yield code_finding(self, facts, ff, n.value,
                                       f"`{ff.line_text(n.lineno)[:100]}` picks the best of several results and line "
                                       f"{j.lineno} reports it as the final score (the best of several evaluations)",
                                       path=[f"{fn.qualname}:{n.lineno}", f"{fn.qualname}:{j.lineno}"], extra_lines=[j.lineno])
                    break

    def _by_value(self, facts, tf, fn, ff):
        """Selections found by where values come from, whatever they are called: the minimum of two
        per-token scores of the target (S labels), the better of two validation passes, a sweep whose
        best setting is picked by its validation score, a comparison of two validation scores."""
        env = tf.env.get(fn.qualname, {})
        scores = val_score_names(facts, fn)
        containers = {_root(t) for n in walk_own(fn.node) if isinstance(n, ast.Assign)
                      for t in n.targets if isinstance(t, ast.Subscript) and isinstance(n.value, ast.Call)
                      and _is_score_call(facts, fn, n.value, env)}
        done = set()
        for n in walk_own(fn.node):
            if isinstance(n, ast.Call) and call_name(n.func).rsplit(".", 1)[-1] in ("minimum", "fmin", "min", "max", "maximum", "fmax") \
                    and len(n.args) >= 2 and n.lineno not in done:
                per_token = all(has(_labels(a, env, tf, self), "S") for a in n.args[:2])
                passes = all(_names(a) & set(scores) for a in n.args[:2])
                if per_token or passes:
                    done.add(n.lineno)
                    what = ("takes the per-token minimum of two costs of the realized token (an oracle choice per token)"
                            if per_token else "reports the better of two evaluations of the validation set")
                    yield code_finding(self, facts, ff, n, f"`{ff.line_text(n.lineno)[:100]}` {what}", path=[f"{fn.qualname}:{n.lineno}"])
            elif isinstance(n, ast.Call) and call_name(n.func) in ("min", "max", "sorted") and n.args and n.lineno not in done \
                    and _names(n.args[0]) & containers:
                done.add(n.lineno)
                yield code_finding(self, facts, ff, n, f"`{ff.line_text(n.lineno)[:100]}` picks a setting by its validation score "
                                   "(a sweep evaluated on the validation set)", severity=Severity.WARNING, path=[f"{fn.qualname}:{n.lineno}"])
            elif isinstance(n, (ast.If, ast.IfExp)) and n.lineno not in done:
                for c in ast_walk(n.test):
                    if isinstance(c, ast.Compare) and len(c.ops) == 1 and isinstance(c.ops[0], (ast.Lt, ast.Gt, ast.LtE, ast.GtE)) \
                            and _names(c.left) & set(scores) and _names(c.comparators[0]) & (set(scores) | _names_assigned_from(fn, scores)):
                        done.add(n.lineno)
                        yield code_finding(self, facts, ff, n, f"`{ff.line_text(n.lineno)[:100]}` chooses by comparing validation "
                                           "scores (weights, settings or passes picked on the validation set)",
                                           severity=Severity.WARNING, path=[f"{fn.qualname}:{n.lineno}"])
                        break


def _root(t):
    while isinstance(t, (ast.Subscript, ast.Attribute)):
        t = t.value
    return t.id if isinstance(t, ast.Name) else ""


def _names(e) -> set[str]:
    return {x.id for x in ast_walk(e) if isinstance(x, ast.Name)}


def _names_assigned_from(fn, scores) -> set[str]:
    """``best = r`` where ``r`` is a validation score: ``best`` holds one too."""
    out = set()
    for n in walk_own(fn.node):
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.Name) and n.value.id in scores:
            out |= {t.id for t in n.targets if isinstance(t, ast.Name)}
    return out


def _is_score_call(facts, fn, call, env) -> bool:
    from rules._eval_common import _val_args
    from rules.analysis.patterns import summaries

    s = summaries(facts)
    short = call_name(call.func).rsplit(".", 1)[-1]
    return any(s.does(t, "score") for t in facts.resolve(short, call, fn) if t is not fn) and _val_args(call, env)


def _labels(e, env, tf, rule):
    out = set()
    for x in ast_walk(e):
        if isinstance(x, ast.Name):
            out |= set(env.get(x.id, ()))
        if isinstance(x, ast.Call) and call_name(x.func).rsplit(".", 1)[-1] in ("gather", "cross_entropy", "nll_loss",
                                                                              "take_along_dim"):
            out.add(("S", ()))
    return out


def _keeps_smaller(n: ast.If, left: str, right: str, scored: set[str]) -> bool:
    """The branch writes one of the compared losses into a value that reaches the score."""
    for st in n.body:
        if isinstance(st, ast.Assign) and ast.unparse(st.value) in (left, right):
            tgt = ast.unparse(st.targets[0])
            if (_acc_key(st.targets[0]) in scored or LOSSY.search(tgt)) and tgt not in (left, right):
                return True
    return False


def _stmt(ff, node):
    p = ff.parent(node)
    while p is not None and not isinstance(p, ast.stmt):
        p = ff.parent(p)
    return p
