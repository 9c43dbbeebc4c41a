"""Helpers shared by the eval-integrity rules (not a rule module)."""
from __future__ import annotations

import ast
import bisect
import itertools
import re

from rules.analysis import CodeFacts, FuncInfo
from rules.analysis.patterns import summaries
from rules.analysis.index import walk as ast_walk  # ast.walk, faster (same nodes, same order)

EVALISH = re.compile(r"(eval|ttt|score|slot|test_time|ngram|valid|rescore|lookup|predict|mix|bpb)", re.I)
NOT_EVAL = re.compile(r"^(main|train\w*|_?warmup\w*|run)$", re.I)


def eval_functions(facts: CodeFacts) -> list[FuncInfo]:
    """Functions that run on validation tokens in the scoring path: eval-ish names (or val-token
    params) that score, and any function (``main`` too) with a loop that reads the validation stream
    by value and scores."""
    from rules.analysis import taint

    out = []
    s = summaries(facts)
    tf = taint(facts)
    for fn in facts.functions.values():
        if not s.direct(fn)["score"]:
            continue
        # handed the validation stream (by value; a ``val`` in a parameter's name is a hint)
        val_param = any(re.search(r"val", p) for p in fn.params) or any(
            any(l[0] == "V" for l in labels) for labels in tf.params.get(fn.qualname, {}).values())
        if not NOT_EVAL.match(fn.short) and (EVALISH.search(fn.qualname) or val_param):
            out.append(fn)
        elif val_loops(facts, fn):
            out.append(fn)
    return out


def training_only(facts, fn) -> bool:
    """``fn`` trains (backward and step, itself or through its calls) and is off the scoring path (neither
    scores the validation stream nor is called from a function that does): a gate or weight there shapes a
    training loss, not a scored probability."""
    def build():
        scoring = {g.qualname for e in eval_functions(facts) for g in facts.reachable_from(e)}
        s = summaries(facts)
        return {f.qualname for f in facts.functions.values() if f.qualname not in scoring and s.does(f, "train")}

    return fn.qualname in facts.cached("training_only", build)


def scoring_loops(facts, fn):
    """The loops of ``fn`` to order score and update in: all of an eval driver's, only the loops that
    read the validation stream in any other function (a training loop is not evaluation)."""
    from rules.analysis.patterns import loops

    if not NOT_EVAL.match(fn.short) and (EVALISH.search(fn.qualname) or any(re.search(r"val", p) for p in fn.params)):
        return list(loops(fn))
    return val_loops(facts, fn)


def val_loops(facts, fn) -> list:
    """Loops of ``fn`` that index or slice the validation stream (a value labelled V by the taint)."""
    from rules.analysis import taint
    from rules.analysis.patterns import loops

    key = ("val_loops", fn.qualname)
    if key in facts._cache:
        return facts._cache[key]
    env = taint(facts).env.get(fn.qualname, {})
    vnames = {k for k, v in env.items() if any(l[0] == "V" for l in v)}
    out = []
    if vnames:
        for loop in loops(fn):
            if any(isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name) and n.value.id in vnames
                   for st in loop.body for n in ast_walk(st)) or (
                    isinstance(loop, (ast.For, ast.AsyncFor)) and any(isinstance(n, ast.Name) and n.id in vnames
                                                                     for n in ast_walk(loop.iter))):
                out.append(loop)  # ... or iterates it (``for a, b in docs``, ``range(len(stream))``)
    facts._cache[key] = out
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


# -- stages the logs show and the shipped code lacks (class 7) -------------------------------------
_STAGES = {
    # family key -> (pattern of a stage line, hint substrings that must be on the line)
    "prequant": (re.compile(r"\bpre_?quant\w*[_ ]?(ttt|adapt\w*|tun\w*|finetun\w*)\b.*?(epoch|start|done|step)", re.I), ("pre",)),
    "ttt": (re.compile(r"(^|[\s\[])\w*ttt\w*\s*[:=]\s*(epoch|chunk|step|start|done|adapt)|\bttt\b.*\bepoch\s*\d+\s*/\s*\d+", re.I), ("ttt",)),
    "ngram": (re.compile(r"(^|[\s\[])\w*(ngram|n_gram|backoff)\w*\s*[:=]\s*(init|chunk|done|start|hits|order|buckets|pass)", re.I),
              ("gram", "backoff")),
}
_STAGE_CODE_LINE = re.compile(r"(\b(print|log\w*)\s*\(|\bf[\"']|\bdef\s|^\s*#)")
_STAGE_HINT = re.compile("|".join(re.escape(h) for _p, hints in _STAGES.values() for h in hints))  # any family's hint


def missing_stages(facts) -> dict[str, list]:
    """Per stage family, log lines printed before a log's final score that show the stage ran,
    when no shipped source can print them (the label before the first ':' appears in no file)."""
    return facts.cached("missing_stages", lambda: _missing_stages(facts))


def _missing_stages(facts) -> dict[str, list]:
    from rules.analysis.logs import LogLine

    code = "\n".join(ff.text for ff in facts.files)
    words: set[str] = set()
    shipped: dict[str, bool] = {}
    finals = {f.file: f.line for f in facts.logs.finals}
    out: dict[str, list] = {}
    for name, text in facts.logs.texts:
        low = text.lower()
        if not any(h in low for _p, hints in _STAGES.values() for h in hints):
            continue
        stop = finals.get(name)
        lines = text.split("\n")
        for i in _hint_lines(lines, low):
            line = lines[i - 1]
            if stop is not None and i >= stop:
                break
            # the hint test first: it is what excludes most lines, and it is cheaper than the code-line regex
            if len(line) > 400 or "val_bpb" in line or not _STAGE_HINT.search(line.lower()) or _STAGE_CODE_LINE.search(line):
                continue
            for fam, (pat, hints) in _STAGES.items():
                ll = line.lower()
                if not any(h in ll for h in hints) or not pat.search(line):
                    continue
                label = line.strip().split()[0] if line.strip() else ""
                sep = ":" if ":" in label else "=" if "=" in label else " "
                label = label.split(sep, 1)[0].strip("[]") + sep
                printed = shipped.get(label)
                if printed is None:  # a log repeats one label thousands of times; search the code once per label
                    printed = shipped[label] = len(label) >= 4 and (
                        label in code or label.strip() in (words or words.update(_words(code)) or words))
                if printed:
                    break  # the shipped code prints this stage
                if len(out.setdefault(fam, [])) < 3:
                    out[fam].append(LogLine(name, i, line.strip()))
                break
    return {k: v for k, v in out.items() if v}


def _hint_lines(lines: list[str], low: str):
    """Numbers (1-based, ascending) of the lines that may hold a stage hint: every line whose lower
    case holds one, found with one regex pass over the log (megabytes, 100k+ lines) instead of a
    Python-level test per line. Falls back to every line when lower-casing changed the text's length."""
    if len(low) != sum(map(len, lines)) + len(lines) - 1:
        return range(1, len(lines) + 1)
    starts = list(itertools.accumulate((len(x) + 1 for x in lines[:-1]), initial=0))
    return sorted({bisect.bisect_right(starts, m.start()) for m in _STAGE_HINT.finditer(low)})


def _words(code: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_][\w]*", code))


# -- values that are validation scores (results of a scoring pass over the validation stream) -------
def val_score_names(facts, fn) -> dict[str, ast.AST]:
    """Names in ``fn`` bound to the result of a call that scores the validation stream (``r =
    evaluate(model, val_tokens)``, ``_, s = eval_val(...)``, ``results[w] = chunked_eval(...)``), by value:
    the callee scores (transitively) and an argument carries the validation stream."""
    from rules.analysis import taint
    from rules.analysis.index import call_name

    key = ("val_scores", fn.qualname)
    got = facts._cache.get(key)
    if got is not None:
        return got
    from rules.analysis.dataflow import accounted_names

    s = summaries(facts)
    tf = taint(facts)
    env = tf.env.get(fn.qualname, {})
    drawn = accounted_names(facts, tf, fn)  # training data or draws, whatever they are called
    out: dict[str, ast.AST] = {}
    for n in _walk_stmts(fn.node):
        if not isinstance(n, ast.Assign) or not isinstance(n.value, ast.Call):
            continue
        call = n.value
        short = call_name(call.func).rsplit(".", 1)[-1]
        cands = [t for t in facts.resolve(short, call, fn) if t is not fn]
        if not any(s.does(t, "score") for t in cands):
            continue
        if not _val_args(call, env, drawn) and not any(_loads_val_itself(facts, tf, t) for t in cands):
            continue
        for t in n.targets:
            for x in ast_walk(t):
                if isinstance(x, ast.Name):
                    out[x.id] = call
    facts._cache[key] = out
    return out


def _loads_val_itself(facts, tf, fn) -> bool:
    """``fn`` (or what it calls) loads the validation stream itself (a call on a validation path): its score is a
    validation score whatever it is handed."""
    from rules.analysis.dataflow import VAL_FILE, VAL_PATH

    key = ("loads_val_itself", fn.qualname)
    got = facts._cache.get(key)
    if got is None:
        # a validation location spelled in the call: a path string, or a configuration field holding one
        got = any(isinstance(x, ast.Constant) and isinstance(x.value, str) and VAL_PATH.search(x.value)
                  or isinstance(x, ast.Attribute) and (VAL_FILE.search(x.attr) or x.attr in tf.val_paths)
                  for f in facts.reachable_from(fn) for _short, c in f.calls
                  for a in list(c.args) + [k.value for k in c.keywords] for x in ast_walk(a))
        facts._cache[key] = got
    return got


def _val_args(call, env, not_val=frozenset()) -> bool:
    """An argument carries the validation stream (labelled V by the taint; a val-ish name is a hint, except
    for the names in ``not_val``, whose values are known to be something else)."""
    return any(mentions_val(a, env, not_val) for a in list(call.args) + [k.value for k in call.keywords])


def mentions_val(node, env, not_val=frozenset()) -> bool:
    """``node`` reads the validation stream: a name the taint labels V (however it is called, wherever it
    was loaded), or a val-ish name or attribute (``args.val_files``)."""
    from rules.analysis.patterns import VAL_NAME

    for x in ast_walk(node):
        if isinstance(x, ast.Name) and ((VAL_NAME.search(x.id) and x.id not in not_val)
                                        or any(l[0] == "V" for l in env.get(x.id, ()))):
            return True
        if isinstance(x, ast.Attribute) and VAL_NAME.search(x.attr):
            return True
    return False


def _walk_stmts(fn_node):
    from rules.analysis.patterns import walk_own

    return walk_own(fn_node)
