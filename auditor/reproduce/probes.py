"""Dynamic probes (rules.md §5): what no static pass can fully prove, tested on tiny inputs on CPU.

(a) suffix flip — change token k; no score committed for an earlier position may change;
(b) final-position vocabulary sweep — Σ_v p(v) at the last position is 1;
(c) ledger — every position fed to a state update (cache add, optimizer step) was already scored.

Per-token scores come from the accumulation statement of an instrumented COPY of the scorer
(``instrument``), executed only in a child process, inside bubblewrap when it is available.
"""
from __future__ import annotations

import ast
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from auditor.model import Measured, RecordResult, Report, Severity
from auditor.reproduce.instrument import instrument_source
from auditor.reproduce.probe_outcome import RULES_URL, ProbeOutcome, probe_finding  # noqa: F401  (RULES_URL: callers' name)
from auditor.reproduce.run import read_capped
from auditor.reproduce.sandbox import allowed_env, bwrap_argv, bwrap_works, limits, run_limited

MAX_PROBE_OUT = 64 << 20

SCORER_FUNCTIONS = ("score_tokens",)
N_TOKENS = 96
VOCAB = 12
EPS_SUM = 1e-4
EPS_SCORE = 1e-9
# A scorer's own config, shrunk to the probe stream: small chunks so the cache is used within 96 tokens.
PROBE_CONFIG = {"chunk_tokens": 4, "max_order": 3}


_f = probe_finding


def probe_stream(n: int = N_TOKENS, vocab: int = VOCAB, seed: int = 0) -> list[int]:
    """A stream with structure (a noisy repeating motif), so n-gram statistics matter."""
    rng = np.random.default_rng(seed)
    motif = rng.integers(0, vocab, 7)
    out = [int(motif[i % 7]) if rng.random() < 0.7 else int(rng.integers(0, vocab)) for i in range(n)]
    return out


def _scores(call: dict) -> list[tuple[int, float, int]]:
    """Flatten score events into (position, nll, line). The position is the innermost loop variable
    when the statement sits in a loop over positions, else the emission index."""
    out = []
    k = 0
    for ev in call["events"]:
        if ev["kind"] != "score":
            continue
        loop = list(ev["loop"].values())
        for j, v in enumerate(ev["values"]):
            pos = loop[0] if (loop and len(ev["values"]) == 1) else k
            out.append((pos, v, ev["line"]))
            k += 1
    return out


def _where(p: int, by_loop: bool) -> str:
    return f"position {p}" if by_loop else f"score #{p} (in scoring order)"


def _run_child(module: Path, function: str, calls: list[list[int]], vocab: int, work: Path, sandbox: str, timeout_s: float,
               extra_path: list[str]) -> dict:
    spec = {"module": str(module), "module_dir": str(module.parent), "function": function, "calls": calls, "vocab": vocab,
            "path": extra_path, "config": PROBE_CONFIG}
    spec_path, out_path = work / "spec.json", work / "out.json"
    spec_path.write_text(json.dumps(spec))
    argv = [sys.executable, "-m", "auditor.reproduce.probe_child", str(spec_path), str(out_path)]
    rlimits = None
    if sandbox == "bwrap":
        argv = bwrap_argv(argv, workdir=work, writable=[work], readable=[Path(p) for p in extra_path])
        rlimits = limits(gpu=False)
    env = allowed_env({"PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}, home=work)  # no secret of ours reaches the scorer
    out = run_limited(argv, cwd=work, env=env, limit_s=timeout_s, log_path=work.parent / f"{work.name}.child.log", rlimits=rlimits)
    if out.timed_out:
        return {"error": f"timed out after {timeout_s:.0f} s", "calls": []}
    try:  # written by the sandboxed child: never through a link, capped
        text = read_capped(out_path, MAX_PROBE_OUT).decode("utf-8", errors="replace")
    except OSError:
        tail = (work.parent / f"{work.name}.child.log").read_text(errors="replace").strip().splitlines()[-3:]
        return {"error": f"the probe child exited with status {out.returncode}: {' | '.join(tail)}", "calls": []}
    try:
        return json.loads(text)
    except ValueError as exc:
        return {"error": f"the probe child wrote unreadable output ({exc})", "calls": []}


def probe_file(path: Path, function: str = "score_tokens", *, sandbox: str = "none", work: Path, timeout_s: float = 300.0,
               display: str | None = None, accumulator: str | None = None) -> ProbeOutcome:
    display = display or path.name
    res = ProbeOutcome(f"{display}:{function}")
    try:
        src = read_capped(path, MAX_PROBE_OUT).decode("utf-8")  # never through a symlink
        inst = instrument_source(src, accumulator)
    except Exception as exc:  # unparsable source is one line, not a trace
        res.findings.append(_f("PROBE-NOT-RUN", Severity.WARNING, display, None, f"cannot instrument {display}: {type(exc).__name__}: {exc}", [], ""))
        return res
    fn_line = next((n.lineno for n in ast.walk(ast.parse(src)) if isinstance(n, ast.FunctionDef) and n.name == function), None)
    if fn_line is None:
        res.findings.append(_f("PROBE-NOT-RUN", Severity.WARNING, display, None, f"{display} defines no {function}()", [], "name the scorer with --function"))
        return res
    if not inst.score_sites:
        res.findings.append(_f("PROBE-NOT-RUN", Severity.WARNING, display, fn_line,
                               f"no accumulation statement found in {display} (looked for `NLL += …`, `nll[i] = …`, `nlls.append(…)`)",
                               [], "name the accumulator with --accumulator REGEX"))
        return res
    work.mkdir(parents=True, exist_ok=True)
    copy = work / f"instrumented_{path.stem}.py"
    copy.write_text(inst.source, encoding="utf-8")
    res.numbers["score_sites"] = [f"{display}:{s.line}: {s.code}" for s in inst.sites if s.kind == "score"]
    res.numbers["update_sites"] = [f"{display}:{s.line}: {s.code}" for s in inst.sites if s.kind == "update"]

    base = probe_stream()
    n, k = len(base), len(base) // 2
    flipped = list(base)
    flipped[k] = (base[k] + 1) % VOCAB
    sweep = []
    for v in range(VOCAB):
        t = list(base)
        t[-1] = v
        sweep.append(t)
    t0 = time.monotonic()
    out = _run_child(copy, function, [base, flipped] + sweep, VOCAB, work, sandbox, timeout_s, [str(path.parent.resolve())] + _repo_path())
    res.numbers["seconds"] = round(time.monotonic() - t0, 2)
    if out.get("error"):
        res.findings.append(_f("PROBE-NOT-RUN", Severity.WARNING, display, fn_line, f"{function}() could not run on a tiny CPU input: {out['error']}",
                               (out.get("trace") or "").strip().splitlines()[-3:], "make the scorer runnable on CPU with a small vocabulary"))
        return res
    calls = out["calls"]
    res.numbers["called_with"] = out.get("called_with")
    a, b = _scores(calls[0]), _scores(calls[1])
    res.numbers.update({"tokens": n, "vocab": VOCAB, "flip_position": k, "scored": len(a)})
    if not a:
        res.findings.append(_f("PROBE-NOT-RUN", Severity.WARNING, display, fn_line, f"{function}() ran but its accumulation statement never executed", [], ""))
        return res
    _suffix_flip(res, display, a, b, k, base[k], flipped[k])
    _sweep(res, display, [_scores(c) for c in calls[2:]], n)
    _ledger(res, display, calls[0], {site.line: site.function for site in inst.sites})
    return res


def _suffix_flip(res: ProbeOutcome, display: str, a, b, k: int, old: int, new: int) -> None:
    # A score at position p belongs to target p (or p+1 when the loop runs over contexts), so
    # positions < k−1 were committed before token k could be read.
    by_loop = len({p for p, _, _ in a}) == len(a) and any(p != i for i, (p, _, _) in enumerate(a))
    changed = [(pa, va, vb, line) for (pa, va, line), (_, vb, _) in zip(a, b) if pa < k - 1 and abs(va - vb) > EPS_SCORE]
    res.numbers["suffix_flip_changed_before_k"] = len(changed)
    if len(a) != len(b):
        changed = changed or [(-1, float(len(a)), float(len(b)), a[0][2])]
    if changed:
        ev = [f"{_where(p, by_loop)}: {va:.6f} → {vb:.6f} nats" for p, va, vb, _ in changed[:5]]
        res.findings.append(_f("PROBE-SUFFIX-FLIP", Severity.ERROR, display, changed[0][3],
                               f"flipping token {k} ({old} → {new}) changed {len(changed)} score(s) committed for earlier positions "
                               f"(first: {_where(changed[0][0], by_loop)}, {changed[0][1]:.6f} → {changed[0][2]:.6f} nats, "
                               f"max |Δ| {max(abs(x[1] - x[2]) for x in changed):.6f}): the score depends on the future",
                               ev, "score each token from the prefix only, in one left-to-right pass"))
    else:
        res.findings.append(_f("PROBE-SUFFIX-FLIP", Severity.INFO, display, None,
                               f"pass: flipping token {k} ({old} → {new}) left all {sum(1 for p, _, _ in a if p < k - 1)} earlier scores unchanged", [], ""))


def _sweep(res: ProbeOutcome, display: str, runs, n: int) -> None:
    finals = []
    for v, sc in enumerate(runs):
        if not sc:
            return
        finals.append((v, sc[-1][1], sc[-1][0], sc[-1][2]))
    probs = [math.exp(-nll) if nll < 700 else 0.0 for _, nll, _, _ in finals]
    total = sum(probs)
    res.numbers["sweep_sum"] = total
    top = sorted(zip(finals, probs), key=lambda x: -x[1])[:6]
    ev = [f"p({v}) = {p:.6f} (nll {nll:.6f})" for (v, nll, _, _), p in top] + [f"Σ over all {len(finals)} values = {total:.6f}"]
    if abs(total - 1.0) > EPS_SUM:
        res.findings.append(_f("PROBE-NORMALIZATION", Severity.ERROR, display, finals[0][3],
                               f"at the final position {n - 1}, Σ_v p(v) over the {len(finals)} vocabulary values = {total:.6f}, not 1: "
                               "the scored probability is not a normalised distribution over the vocabulary", ev,
                               "score with a distribution over the whole vocabulary that does not look at the target"))
    else:
        res.findings.append(_f("PROBE-NORMALIZATION", Severity.INFO, display, None,
                               f"pass: Σ_v p(v) at the final position {n - 1} = {total:.8f} over {len(finals)} values", [], ""))


def _ledger(res: ProbeOutcome, display: str, call: dict, fn_of: dict[int, str]) -> None:
    """Positions come from the loop variable both statements share (``for t …: score t; update t``);
    an update outside such a loop is checked by count: the tokens fed so far may not outnumber the
    scores committed so far."""
    scored: set[int] = set()
    n_scored = n_updates = fed = 0
    first = None
    # (function, loop variable) pairs that index scores: an update in the same loop is matched by position
    score_loops = {(fn_of.get(ev["line"]), next(iter(ev["loop"]))) for ev in call["events"] if ev["kind"] == "score" and ev["loop"]}
    for i, ev in enumerate(call["events"]):
        loop = list(ev["loop"].values())
        if ev["kind"] == "score":
            n_scored += len(ev["values"])
            if loop:
                scored.add(loop[0])
            continue
        n_updates += 1
        if first is not None:
            continue
        if loop and (fn_of.get(ev["line"]), next(iter(ev["loop"]))) in score_loops:
            if loop[0] not in scored:
                first = (i, f"position {loop[0]}", ev["line"], n_scored, loop[0])
        else:
            fed += ev.get("fed") or 1
            if fed > n_scored:
                first = (i, f"{fed} token(s)", ev["line"], n_scored, None)
    res.numbers["ledger_updates"] = n_updates
    if first:
        i, what, line, before, u = first
        later = None
        if u is not None:
            later = next((j for j, ev in enumerate(call["events"]) if ev["kind"] == "score" and list(ev["loop"].values())[:1] == [u]), None)
        res.findings.append(_f("PROBE-LEDGER", Severity.ERROR, display, line,
                               f"{what} fed to a state update (event #{i + 1}, line {line}) when only {before} score(s) had been committed"
                               + (f"; position {u} is scored later, at event #{later + 1}" if later is not None else ""),
                               [f"event #{i + 1}: update of {what} at line {line}; scores committed before it: {before}"],
                               "score every token before any update (cache add, optimizer step) that uses it"))
    elif n_updates:
        res.findings.append(_f("PROBE-LEDGER", Severity.INFO, display, None, f"pass: all {n_updates} state updates came after the scores of the tokens they used", [], ""))
    else:
        res.findings.append(_f("PROBE-LEDGER", Severity.INFO, display, None, "no state update found in the scorer (nothing to order)", [], ""))


def _repo_path() -> list[str]:
    """The checkout that holds auditor/ (so probed code can import reference_impl)."""
    import auditor

    return [str(Path(auditor.__file__).resolve().parents[1])]


def scorer_files(folder: Path) -> list[tuple[Path, str]]:
    out = []
    for p in sorted(folder.glob("*.py")):
        try:
            tree = ast.parse(read_capped(p, MAX_PROBE_OUT).decode("utf-8", "replace"))
        except (SyntaxError, ValueError, OSError):
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name in SCORER_FUNCTIONS:
                out.append((p, node.name))
    return out


def probe_record(target: Path, *, sandbox: str = "none", work: Path, function: str | None = None, timeout_s: float = 300.0,
                 accumulator: str | None = None, plan=None, whole_script: bool = True, tok_cache: Path | None = None) -> ProbeOutcome:
    """Probe a scorer file, or the scorer modules of a record folder; without one, the record's
    whole script when it runs on CPU (``probe_script``); say why when nothing can run."""
    target = Path(target)
    agg = ProbeOutcome(str(target))
    if target.is_file():
        targets = [(target, function or "score_tokens")]
        root = target.parent
    else:
        targets = [(p, function or f) for p, f in scorer_files(target)]
        root = target
    # the whole script: train_gpt.py, or the entry the record's own files name (train_gpt_v5.py, run_*.sh → *.py)
    if not targets and whole_script and target.is_dir() and any(p.suffix == ".py" and not p.is_symlink() for p in target.iterdir()):
        from auditor.reproduce.plan import PlanError, build_plan
        from auditor.reproduce.probe_script import probe_script

        try:
            plan = plan or build_plan(target, run_dir=work / "plan", sandbox=sandbox)
        except PlanError as exc:
            plan = None
            agg.findings.append(_f("PROBE-NOT-RUN", Severity.INFO, "", None, f"cannot plan a run of {target}: {exc}", [], ""))
        if plan is not None:
            one = probe_script(plan, work / "script", sandbox=sandbox, timeout_s=timeout_s, tok_cache=tok_cache)
            agg.findings += one.findings
            agg.numbers[one.target] = one.numbers
        return agg
    if not targets:
        entry = target / "train_gpt.py"
        why = (f"no scorer module here (a .py defining {', '.join(SCORER_FUNCTIONS)}()); {entry.name}'s evaluation runs inside the whole "
               "training script, which the probes cannot drive at tiny size yet" if entry.is_file() else "no Python scorer found")
        sites = []
        if entry.is_file():
            try:
                sites = [s for s in instrument_source(read_capped(entry, MAX_PROBE_OUT).decode("utf-8", "replace")).sites if s.kind == "score"]
            except Exception:
                sites = []
        agg.findings.append(_f("PROBE-NOT-RUN", Severity.INFO, entry.name if entry.is_file() else "", sites[0].line if sites else None,
                               why, [f"accumulation statement: line {s.line}: {s.code}" for s in sites[:3]],
                               "expose the eval scorer as score_tokens(tokens, vocab_size) to make it probeable"))
        return agg
    for path, fn in targets:
        rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
        one = probe_file(path, fn, sandbox=sandbox, work=work / f"{path.stem}_{fn}", timeout_s=timeout_s, display=rel, accumulator=accumulator)
        agg.findings += one.findings
        agg.numbers[one.target] = one.numbers
    return agg


def probe_main(target: str, *, fmt: str = "text", output: str | None = None, no_sandbox: bool = False, timeout_s: float = 300.0,
               quiet: bool = False, function: str | None = None, accumulator: str | None = None, work: str | None = None) -> int:
    from auditor.model import VERDICT_FAIL, VERDICT_PASS, VERDICT_REVIEW
    from auditor.pipeline import tool_info
    from auditor.report import render

    p = Path(target)
    if not p.exists():
        print(f"pgolf: {target}: no such file or folder", file=sys.stderr)
        return 2
    sandbox = "none"
    if not no_sandbox:
        ok, why = bwrap_works()
        if not ok:
            print(f"pgolf: no sandbox available: {why}. The probes execute the scorer's code; pass --no-sandbox to run it unconfined.",
                  file=sys.stderr)
            return 2
        sandbox = "bwrap"
    import tempfile

    tmp = Path(work) if work else Path(tempfile.mkdtemp(prefix="pgolf-probe-"))
    try:
        out = probe_record(p, sandbox=sandbox, work=tmp, function=function, timeout_s=timeout_s, accumulator=accumulator)
    finally:
        if not work:
            shutil.rmtree(tmp, ignore_errors=True)
    rec = RecordResult(path=str(target), findings=sorted(out.findings, key=lambda f: (-f.severity.rank, f.rule)),
                       measured=Measured(extra={"probes": out.numbers, "sandbox": sandbox}))
    worst = rec.worst()
    rec.verdict = VERDICT_FAIL if worst is Severity.ERROR else VERDICT_REVIEW if worst is Severity.WARNING else VERDICT_PASS
    text = render(Report(records=[rec], tool=tool_info()), fmt)
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 1 if worst is Severity.ERROR else 0
