"""TTT-PREQUANT (rules.md §1.1)."""
from __future__ import annotations

import ast
import re

from auditor.model import Severity
from rules._eval_cases import LEGAL_TTT, LEGAL_WARMUP_TRAIN, PHASED_TTT, WARMUP_ON_VAL_DISCARDED, _SCORE, program, wrapped
from rules._eval_common import _val_args, exclusive, in_loop, mentions_val, missing_stages
from rules.analysis import analyse, taint
from rules.analysis.index import call_name
from rules.analysis.patterns import mentions, summaries, walk_own
from rules.analysis.report import code_finding, log_finding
from rules.base import Invalid, Rule, Valid, register
from rules.data_access import _train_names
from rules.analysis.index import walk as ast_walk  # ast.walk, faster (same nodes, same order)

_VAL_FILES = re.compile(r"^(val_files|val_pattern|val_path|val_shards?)$|fineweb_val", re.I)
WARMUP = re.compile(r"(warmup|warm_up|compile|prime|jit)", re.I)
TRAIN_DATA = re.compile(r"(train_loader|train_files|train_pattern|train_data|train_shard|TokenStream|DistributedTokenLoader|next_batch)")


# This rule's own VALID/INVALID programs (programs several rules share stay in rules/_eval_cases.py).
ILLEGAL_PREQUANT = program(_SCORE + '''

def ttt_adapt(model, val_tokens, epochs, seq_len=1024):
    """Fine-tune on the validation tokens before quantization."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for ep in range(epochs):
        for s in range(0, len(val_tokens) - seq_len - 1, seq_len):
            x = val_tokens[s:s + seq_len]
            y = val_tokens[s + 1:s + seq_len + 1]
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
''', '''ttt_adapt(model, val_tokens, args.ttt_epochs)
    torch.save(model.state_dict(), "final_model.pt")
    val_loss = eval_val(model, val_tokens)
    print(f"final_int8_zlib_roundtrip_exact val_loss:{val_loss:.4f} val_bpb:{val_loss:.4f}")''')

PROBE_ON_VAL = program(_SCORE + '''

def diagnostics(model, val_tokens, seq_len=1024):
    with torch.no_grad():
        h = model.hidden(val_tokens[:seq_len][None])
    probe = torch.nn.Linear(h.shape[-1], 1024)
    opt = torch.optim.Adam(probe.parameters(), lr=1e-3)
    for _ in range(10):
        loss = F.cross_entropy(probe(h[0]), val_tokens[1:seq_len + 1])
        opt.zero_grad(); loss.backward(); opt.step()
    return float(loss)
''', '''diag = diagnostics(model, val_tokens)
    val_loss = eval_val(model, val_tokens)
    print(f"final_int8_zlib_roundtrip_exact val_loss:{val_loss:.4f} val_bpb:{val_loss:.4f}")''')

INLINE_ADAPT_ON_VAL = program(_SCORE, '''opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for s in range(0, len(val_tokens) - 1025, 1024):
        F.cross_entropy(model(val_tokens[s:s + 1024]), val_tokens[s + 1:s + 1025]).backward()
        opt.step()
        opt.zero_grad()
    val_loss = eval_val(model, val_tokens)
    print(f"final_int8_zlib_roundtrip_exact val_loss:{val_loss:.4f} val_bpb:{val_loss:.4f}")''')


@register
class TttPrequant(Rule):
    """Fine-tuning the model (or adapters) on validation tokens before the pass that scores them is
    illegal, even "before quantization". A compile warmup on val tokens with a throwaway optimizer
    whose state is discarded (#1530) is contested: warning.

    Ruling: valerio-oai closed PR #1376 (pre-quant TTT on val), as recorded in Issue #677;
    cocohearts on #1972 (2026-05-02).
    """

    id = "TTT-PREQUANT"
    code = "PG106"
    title = "the model is trained on validation tokens before they are scored"
    family = "ttt"
    ruling = "https://github.com/openai/parameter-golf/issues/677#issuecomment-4229813460"
    fix = "Remove the pre-eval adaptation on val tokens; adapt only inside a score-first TTT loop on already-scored chunks."
    default_severity = Severity.ERROR

    VALID = [Valid(LEGAL_TTT), Valid(PHASED_TTT), Valid(LEGAL_WARMUP_TRAIN, note="warmup on training batches"),
             Valid(PROBE_ON_VAL, note="a diagnostic probe trained on val: no scoring state changes (info)")]
    INVALID = [Invalid(ILLEGAL_PREQUANT, note="AdamW epochs on val_tokens, then save, then score"),
               Invalid(wrapped(ILLEGAL_PREQUANT), note="inside an lzma wrapper"),
               Invalid(INLINE_ADAPT_ON_VAL, note="inline AdamW steps on the model over val tokens, then scoring"),
               Invalid(WARMUP_ON_VAL_DISCARDED, expect=Severity.WARNING,
                       note="compile warmup on val tokens with a discarded adapter: contested (#1530), warning")]

    def check(self, ctx):
        facts = analyse(ctx)
        stage = missing_stages(facts).get("prequant")
        if stage:
            yield log_finding(self, stage, "the logs show a pre-quantization adaptation stage that the shipped code does not "
                              "contain: the reported model was tuned by code that was not shipped (pre-quant TTT on validation "
                              "tokens is ruled out, #1376)",
                              fix="Ship the code that produced the logs, or re-run the shipped code and ship its logs.")
        s = summaries(facts)
        train_held = _train_names(facts)  # per function, the names holding training data (by value)
        for drv in list(facts.functions.values()):
            ff = facts.file_of(drv)
            yield from self._inline_adaptation(facts, s, drv, ff, train_held)
            env = taint(facts).env.get(drv.qualname, {})
            calls = sorted((n for n in walk_own(drv.node) if isinstance(n, ast.Call)), key=lambda n: (n.lineno, n.col_offset))
            trainers, scorers = [], []
            for c in calls:
                short = call_name(c.func).rsplit(".", 1)[-1]
                cands = list(facts.resolve(short, c, drv))
                for a in c.args:  # functions passed as values: timed_eval("x", eval_val, ...)
                    if isinstance(a, ast.Name):
                        cands += [f for f in facts.by_short.get(a.id, []) if not f.cls]
                if not _val_args(c, env):
                    continue
                for t in cands:
                    if t is drv:
                        continue
                    trains = s.does(t, "train")
                    if s.does(t, "score"):
                        scorers.append(c)
                        break
                    if trains and not TRAIN_DATA.search(" ".join(sorted(t.refs))):
                        if not in_loop(ff, c, drv.node):
                            trainers.append((c, t))
                        break
            for c, t in trainers:
                later = [sc.lineno for sc in scorers if sc.lineno > c.lineno and not exclusive(ff, c, sc)]
                if not later:
                    continue
                first = min(later)
                if _throwaway_optimizer(t, facts, s):
                    yield code_finding(self, facts, ff, c,
                                       f"`{ff.line_text(c.lineno)[:100]}` takes gradient steps on validation tokens in {t.qualname}, "
                                       "but only on parameters it creates itself (a probe or throwaway adapter): nothing that "
                                       "scores survives", severity=Severity.INFO, path=[f"{drv.qualname}:{c.lineno}", f"{t.qualname}:{t.line}"])
                    continue
                doc = ast.get_docstring(t.node) or ""
                warm = bool(WARMUP.search(t.short) or WARMUP.search(doc[:200]))
                msg = (f"`{ff.line_text(c.lineno)[:100]}` runs gradient steps on validation tokens ({t.qualname}) "
                       f"before they are scored at line {first}")
                if warm:
                    msg += "; it looks like a compile warmup (contested if no surviving state is changed, rules.md §2)"
                yield code_finding(self, facts, ff, c, msg, severity=Severity.WARNING if warm else None,
                                   path=[f"{drv.qualname}:{c.lineno}", f"{t.qualname}:{t.line}", f"{drv.qualname}:{first}"],
                                   extra_lines=[first])


    def _inline_adaptation(self, facts, s, drv, ff, train_held):
        for loop, step, root, first in _inline_adapt_loops(facts, s, drv, ff, train_held):
            src = _loop_local(loop, root) if root else None
            fresh = src is not None and _fresh(src)
            msg = (f"the loop at line {loop.lineno} takes optimizer steps (`{ff.line_text(step.lineno)[:60]}`) on validation "
                   f"tokens before they are scored at line {first}")
            if fresh:
                msg += (f"; it trains a throwaway {root} created in the loop (a compile warmup): contested when no "
                        "surviving state changes (#1530, rules.md §2)")
            yield code_finding(self, facts, ff, loop, msg, severity=Severity.WARNING if fresh else None,
                               path=[f"{drv.qualname}:{loop.lineno}", f"{drv.qualname}:{step.lineno}", f"{drv.qualname}:{first}"],
                               extra_lines=[step.lineno, first])


def _inline_adapt_loops(facts, s, drv, ff, train_held):
    """Outermost loops in ``drv`` that take optimizer steps on val tokens (not training batches)
    and come before a scoring call in the same function: (loop, step_call, opt_root, first_score_line)."""
    from rules._eval_common import ancestors

    env = taint(facts).env.get(drv.qualname, {})
    score_lines = []
    for c in walk_own(drv.node):
        if isinstance(c, ast.Call):
            short = call_name(c.func).rsplit(".", 1)[-1]
            if any(t is not drv and s.does(t, "score") for t in facts.resolve(short, c, drv)):
                if _val_args(c, env):
                    score_lines.append(c.lineno)
    for x in s.direct(drv)["score"]:  # scored inline (``main`` sums the val losses itself), in a loop over the val stream
        encl = next((a for a in ancestors(ff, x, drv.node) if isinstance(a, (ast.For, ast.While))), None)
        if encl is not None and mentions_val(encl, env):
            score_lines.append(x.lineno)
    if not score_lines:
        return
    held = train_held.get(drv.qualname, set())
    assigns = {}
    val_loaders = set()  # ``warm_loader = DistributedTokenLoader(args.val_files, …)``: a loader over validation data
    for n in walk_own(drv.node):
        if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
            assigns.setdefault(n.targets[0].id, n.value)
            if isinstance(n.value, ast.Call) and re.search(r"(Loader|Stream|Dataset|loader)", call_name(n.value.func)) \
                    and any(mentions_val(a, env) or mentions(a, _VAL_FILES) for a in list(n.value.args) + [k.value for k in n.value.keywords]):
                val_loaders.add(n.targets[0].id)
    for loop in walk_own(drv.node):
        if not isinstance(loop, (ast.For, ast.While)):
            continue
        if any(isinstance(a, (ast.For, ast.While)) for a in ancestors(ff, loop, drv.node)):
            continue
        text = ast.unparse(loop)
        on_val_loader = any(isinstance(x, ast.Name) and x.id in val_loaders for x in ast_walk(loop))
        # batches sliced from training data, by value (``chunk = train[pos:…]`` whatever the names): the training loop
        on_train = any(isinstance(x, ast.Name) and x.id in held for x in ast_walk(loop))
        if not on_val_loader and (on_train or TRAIN_DATA.search(text) or not mentions_val(loop, env)):
            continue
        steps = [n for n in ast_walk(loop) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                 and n.func.attr == "step" and isinstance(n.func.value, ast.Name)]
        backs = [n for n in ast_walk(loop) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "backward"]
        if not steps or not backs:
            continue
        if s.stmt_does(loop, "score", drv) is not None:
            continue  # the loop scores as it adapts: a TTT eval loop, ordered by TTT-SCORE-FIRST
        end = getattr(loop, "end_lineno", loop.lineno)
        later = [ln for ln in score_lines if ln > end]
        if not later:
            continue
        opt = steps[0].func.value.id
        ctor = assigns.get(opt)
        root = None
        if ctor is None:
            for n in ast_walk(loop):
                if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == opt for t in n.targets):
                    ctor = n.value
        if isinstance(ctor, ast.Call) and ctor.args:
            names = [x.id for x in ast_walk(ctor.args[0]) if isinstance(x, ast.Name)]
            root = names[0] if names else None
        yield loop, steps[0], root, min(later)


def _fresh(v) -> bool:
    """A value built here from scratch: a new module or tensor (its shape may come from the model)."""
    if isinstance(v, ast.Call):
        name = call_name(v.func)
        if isinstance(v.func, ast.Attribute) and v.func.attr in ("to", "cuda", "float", "requires_grad_"):
            return _fresh(v.func.value)
        return name.startswith(("nn.", "torch.nn.")) or bool(re.search(
            r"(zeros|ones|randn|rand|empty|full|Linear|Embedding|LoRA|Lora|Adapter|Parameter)$", name))
    return False


def _loop_local(loop, name):
    for n in ast_walk(loop):
        if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in n.targets):
            return n.value
    return None


def _throwaway_optimizer(t, facts=None, s=None, seen=None) -> bool:
    """Every optimizer in ``t`` updates parameters built inside ``t`` (``probe = nn.Linear(...)``),
    none derived from its arguments (the model). A function without an optimizer of its own is judged
    by the functions it calls that train (a wrapper around the probe is still a probe)."""
    if facts is not None and not any(isinstance(n, ast.Call) and re.search(r"(Adam\w*|SGD|RMSprop|LBFGS|Lion|Muon)$", call_name(n.func))
                                     for n in walk_own(t.node)):
        seen = seen if seen is not None else {t.qualname}
        trainers = [c for c in facts.callees(t) if c.qualname not in seen and s.does(c, "train")]
        seen |= {c.qualname for c in trainers}
        return bool(trainers) and all(_throwaway_optimizer(c, facts, s, seen) for c in trainers)
    local: dict[str, ast.AST] = {}
    opts = []
    for n in walk_own(t.node):
        if isinstance(n, ast.Assign):
            for tg in n.targets:
                for x in ast_walk(tg):
                    if isinstance(x, ast.Name):
                        local.setdefault(x.id, n.value)
        if isinstance(n, ast.Call) and re.search(r"(Adam\w*|SGD|RMSprop|LBFGS|Lion|Muon)$", call_name(n.func)) and n.args:
            opts.append(n.args[0])
    if not opts:
        return False
    params = set(t.params)

    def from_params(expr, depth=0) -> bool:
        if depth > 6:
            return True
        for x in ast_walk(expr):
            if isinstance(x, ast.Name):
                if x.id in params or x.id == "self":
                    return True
                v = local.get(x.id)
                if v is not None and v is not expr and not _fresh(v) and from_params(v, depth + 1):
                    return True
        return False

    return not any(from_params(o) for o in opts)
