"""Probing a whole training script (the record's own eval), when it can run on CPU at tiny size.

The script is instrumented like a scorer module, then run twice under torchrun on one CPU process
with the record's own env, a validation shard cut to 4,097 tokens (4,096 targets: whole windows for
every power-of-two sequence length up to 4,096), and the val-token cap set to that length. The second
run flips the LAST token. Training never reads val, so both runs train the same model; a legal eval
can then change only the score of that last target, which is the last value of its batch in every
pass (non-overlapping or sliding). Any other changed score depends on a token after it.
The first run re-enters the final scoring function (``probe_reentry``) and keeps the ledger of the
record's own run (``probe_ledger``: val positions fed to optimizer steps vs positions scored); the two
whole-script runs complement a passing re-entry, or replace it when re-entry is impossible.
"""
from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import sys
import threading
from pathlib import Path

import numpy as np

from auditor.model import Severity
from auditor.reproduce.cpu_layer import CPU_REASON_TRITON
from auditor.reproduce.cpu_toy import TRAIN_TOKENS as TOY_TRAIN_TOKENS, VAL_TOKENS as TOY_VAL_TOKENS
from auditor.reproduce.cpu_toy import script_defaults, script_vocab, stream, tokenizer, toy_env
from auditor.reproduce.instrument import instrument_source
from auditor.reproduce.plan import Plan
from auditor.reproduce.probe_ledger import line_map, read_ledger
from auditor.reproduce.probe_passes import pass_of as _pass_of
from auditor.reproduce.preflight import SHARD_HEADER_BYTES, find_shards, given_path, readable_regular, shard_tokens
from auditor.reproduce.probe_outcome import ProbeOutcome
from auditor.reproduce.probe_outcome import probe_finding as _f
from auditor.reproduce.run import copy_record, read_capped
from auditor.reproduce.sandbox import allowed_env, bwrap_argv, limits, open_new, run_limited

PROBE_VAL_TOKENS = 4097
_VAL_CAPS = ("VAL_MAX_TOKENS", "MAX_VAL_TOKENS", "VAL_TOKENS_LIMIT", "VAL_TOKEN_LIMIT")


def _write_shard(path: Path, tokens: np.ndarray) -> None:
    header = np.zeros(256, dtype="<i4")
    header[:3] = (20240520, 1, tokens.size)
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(tokens.astype("<u2").tobytes())


def _val_prefix(data: Path, n: int) -> np.ndarray | None:
    out, need = [], n
    for p in find_shards(data, "val"):
        c = shard_tokens(p)
        if not c:
            return None
        arr = np.fromfile(p, dtype="<u2", count=min(c, need), offset=SHARD_HEADER_BYTES)
        out.append(arr)
        need -= arr.size
        if need <= 0:
            break
    return np.concatenate(out) if out else None


def _flip_to(val: np.ndarray, vocab: int) -> int:
    """The new last token: the most frequent other continuation of the same previous token in the
    stream, so a table filled with future tokens (two passes, a cache built ahead) changes for
    earlier positions that share the context; else a distant id."""
    follow = val[1:-1][val[:-2] == val[-2]]
    follow = follow[follow != val[-1]]
    if follow.size:
        vals, counts = np.unique(follow, return_counts=True)
        return int(vals[np.argmax(counts)])
    return (int(val[-1]) + max(1, vocab // 2)) % vocab


def _top_level_import(text: str, module: str) -> int | None:
    """The line of an unconditional import of ``module`` (one inside try/except may fall back)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    for node in tree.body:
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        if any(n.split(".")[0] == module for n in names):
            return node.lineno
    return None


def _log_files(record: Path) -> list[Path]:
    """The record's train logs (top level, or logs/*.log|txt as some PRs ship them), at most three."""
    found = sorted(record.glob("*.log")) or sorted(p for p in record.glob("logs/*") if p.suffix in (".log", ".txt"))
    return found[:3]


def _as_script_parses(env: dict[str, str], defaults: dict[str, str], text: str = "") -> dict[str, str]:
    """Logged hyperparameter dumps print booleans as True/False; a knob whose default in the script is
    0/1, or that the script reads through int(), gets 1/0."""
    import re

    out = dict(env)
    for k, v in env.items():
        if v in ("True", "False") and (defaults.get(k) in ("0", "1")
                                       or re.search(r"int\(\s*os\.environ\.get\(\s*['\"]" + re.escape(k) + r"['\"]", text)):
            out[k] = "1" if v == "True" else "0"
    return out


def _code_it_runs(record: Path, name: str) -> list[tuple[str, str]]:
    """(file of the copy, source) of the code an entry script runs without shipping it as plain source:
    the text its lzma/base85 wrapper decodes to (written over the entry in the copy) and sidecars it
    exec()s. Decoded statically by pgolf's evidence reader, with its size caps; never executed here."""
    from auditor.discover import discover
    from auditor.evidence import read_evidence

    try:
        folder = discover([record]).folders[0]
        files = read_evidence(folder).code.files
    except Exception:
        return []
    # compat_text: the same code with newer f-string quoting rewritten, so this Python runs it
    out = [(name, f.compat_text or f.text) for f in files if f.role == "decoded" and f.decoded_from == name and f.text]
    out += [(f.path, f.compat_text or f.text) for f in files if f.role == "exec" and f.text and "/" not in f.path and not f.path.startswith(".")]
    out += [(name, f.compat_text) for f in files if f.role == "entry" and f.path == name and f.compat_text]
    return out


def probe_script(plan: Plan, work: Path, *, sandbox: str = "none", timeout_s: float = 600.0, tok_cache: Path | None = None,
                 complement: bool = True) -> ProbeOutcome:
    res = ProbeOutcome(f"{plan.entry}")
    entry = plan.record / (plan.entry or "train_gpt.py")
    name = plan.entry or "train_gpt.py"

    def not_run(why: str, evidence=(), line=None) -> ProbeOutcome:
        res.findings.append(_f("PROBE-NOT-RUN", Severity.INFO, name, line, why, list(evidence),
                               "expose the eval scorer as score_tokens(tokens, …) in its own module to make it probeable"))
        return res

    if not readable_regular(entry, plan.record):  # a symlink would let the probe copy a host file into the run
        return not_run("no entry script (or it is not a regular file of the record folder)")
    try:
        text = read_capped(entry, 64 << 20).decode("utf-8")
        inst = instrument_source(text)
    except Exception as exc:
        return not_run(f"cannot instrument {name}: {type(exc).__name__}: {exc}")
    sites = inst.score_sites
    target = name  # the file of the copy that gets the instrumented source
    try:
        compile(text, name, "exec")
        runs_here = True
    except (SyntaxError, ValueError):
        runs_here = False
    if not sites or not runs_here:  # a self-extracting wrapper, an exec'd sidecar, newer syntax: instrument the code it runs
        for rel, code in _code_it_runs(plan.record, name):
            try:
                alt = instrument_source(code)
                compile(alt.source, rel, "exec")
            except Exception:
                continue
            if alt.score_sites:
                text, inst, sites, target = code, alt, alt.score_sites, rel
                res.numbers["instrumented"] = f"{rel}: the code {name} runs ({'decoded from its wrapper' if rel == name else 'an exec’d sidecar'})"
                break
    triton = _top_level_import(text, "triton")
    if triton is not None and importlib.util.find_spec("triton") is None:
        return not_run(f"{target}:{triton}: {CPU_REASON_TRITON}", line=triton)
    if not sites:
        return not_run(f"no per-token or per-batch accumulation statement of a loss in {name} (looked for `loss_sum += …`, "
                       "`nll[i] = …`, `nlls.append(…)`): no score to compare")
    # Any CUDA request (even behind an is_available() check that then refuses) goes through the CPU layer.
    cuda = bool(plan.needs.uses_cuda) or "cuda" in text or "flash_attn" in text
    # the knobs of the code that runs (an exec'd sidecar's, when the entry only exec()s it)
    from auditor.reproduce.imports import scan_script

    try:
        env_reads = set(plan.needs.env_reads) | set(scan_script(text, set()).env_reads)
    except Exception:
        env_reads = set(plan.needs.env_reads)
    res.numbers["cpu_layer"] = cuda
    key, data = given_path(plan, ("DATA_PATH", "DATA_DIR"))  # never a README path outside the folder
    tok_key = next((k for k in ("TOKENIZER_PATH", "TOKENIZER_MODEL", "SP_MODEL") if k in env_reads), None)
    toy = data is None or not data.is_dir() or cuda
    if toy:  # the record's vocabulary, a generated corpus: the probe checks the eval loop, not the score
        vocab = plan.expected_vocab or script_vocab(text)
        try:
            tok = tokenizer(tok_cache or work / "tokenizers", vocab)
        except Exception as exc:
            return not_run(f"cannot build a {vocab}-piece toy tokenizer: {type(exc).__name__}: {exc}")
        val = stream(tok, TOY_VAL_TOKENS, 1)
        train = stream(tok, TOY_TRAIN_TOKENS, 2)
        key = key or ("DATA_DIR" if "DATA_DIR" in env_reads and "DATA_PATH" not in env_reads else "DATA_PATH")
    else:
        tok = None
        val = _val_prefix(data, PROBE_VAL_TOKENS)
        if val is None or val.size < PROBE_VAL_TOKENS:
            return not_run(f"fewer than {PROBE_VAL_TOKENS} validation tokens in {data}")
        vocab = plan.expected_vocab or int(val.max()) + 1
    n_val = int(val.size)
    flipped = val.copy()
    flipped[-1] = _flip_to(val, vocab)
    seed = plan.seeds[0] if plan.seeds else 1337
    logs = "\n".join(read_capped(p, 200_000).decode("utf-8", "replace") for p in _log_files(plan.record)
                     if readable_regular(p, plan.record))
    defaults = script_defaults(text)
    knobs = toy_env(env_reads, logs, defaults) if toy else {}
    res.numbers["toy_env"] = knobs
    runs = {}

    def prepare(tag: str, tokens: np.ndarray, source: str, spec: dict | None = None, ledger: bool = False) -> None:
        d = work / tag
        copy_record(plan.record, d / "record")
        shutil.rmtree(d / "record" / "logs", ignore_errors=True)
        with open_new(d / "record" / target) as f:
            f.write(source)
        (d / "out").mkdir(parents=True, exist_ok=True)
        dd = d / "data"
        dd.mkdir()
        _write_shard(dd / "fineweb_val_000000.bin", tokens)
        if toy:
            _write_shard(dd / "fineweb_train_000000.bin", train)
            if key == "DATA_DIR":  # DATA_DIR-style scripts derive datasets/fineweb10B_sp<V>/ and tokenizers/ below it
                sub = dd / "datasets" / f"fineweb10B_sp{vocab}"
                sub.mkdir(parents=True)
                _write_shard(sub / "fineweb_val_000000.bin", tokens)
                _write_shard(sub / "fineweb_train_000000.bin", train)
                (dd / "tokenizers").mkdir()
                shutil.copyfile(tok, dd / "tokenizers" / f"fineweb_{vocab}_bpe.model")
        else:
            for p in find_shards(data, "train"):
                os.symlink(p, dd / p.name)
        env = allowed_env({**_as_script_parses(plan.env_for(seed), defaults, text), **knobs}, home=d / "out")
        env.update({key: str(dd), "PGOLF_PROBE_OUT": str(d / "out" / "events.json"), "CUDA_VISIBLE_DEVICES": "", "PYTHONUNBUFFERED": "1",
                    "PYTHONDONTWRITEBYTECODE": "1", "XDG_CACHE_HOME": str(d / "out" / "cache"), "OMP_NUM_THREADS": "1"})
        if spec is not None:
            (d / "spec").mkdir()
            (d / "spec" / "reenter.json").write_text(json.dumps({**spec, "out": str(d / "out" / "reentry.json")}))
            env["PGOLF_PROBE_REENTER"] = str(d / "spec" / "reenter.json")
        if ledger:  # the ledger follows the stream's positions in this run (probe_ledger_runtime)
            (d / "spec").mkdir(exist_ok=True)
            (d / "spec" / "ledger.json").write_text(json.dumps({"n_val": n_val, "head": [int(x) for x in tokens[:32]], "last": int(tokens[-1]),
                                                                "script": target, "out": str(d / "out" / "ledger.json")}))
            env["PGOLF_PROBE_LEDGER"] = str(d / "spec" / "ledger.json")
        if tok is not None and tok_key:
            env[tok_key] = str(tok)
        for cap in _VAL_CAPS:
            if cap in env_reads or cap in plan.env:
                env[cap] = str(n_val)
        readable = [dd, plan.record] + ([data] if data is not None and data.is_dir() and not toy else []) + ([tok.parent] if tok else []) \
            + ([d / "spec"] if spec is not None or ledger else [])
        if cuda:  # one CPU process, no torchrun: the record sees no RANK and stays single-process
            for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
                env.pop(k, None)
            argv = [sys.executable, "-m", "auditor.reproduce.cpu_layer", name]
        else:
            argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", name]
        if sandbox == "bwrap":  # the run writes its copy and out/ only; console.txt, the spec and the data are pgolf's
            argv = bwrap_argv(argv, workdir=d / "record", writable=[d / "record", d / "out"], readable=readable)
        runs[tag] = (d, argv, env)

    def run_all(tags: list[str]) -> dict:
        outcomes = {}
        threads = [threading.Thread(target=lambda t=t, d=d, argv=argv, env=env: outcomes.__setitem__(
            t, run_limited(argv, cwd=d / "record", env=env, limit_s=timeout_s, log_path=d / "console.txt",
                           rlimits=limits(gpu=False) if sandbox == "bwrap" else None)))
            for t, (d, argv, env) in runs.items() if t in tags]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        return outcomes

    def load(tag: str, out) -> list | None:
        d = runs[tag][0]
        try:  # written inside the sandbox: read without following a link, capped
            raw = None if out.timed_out or out.returncode != 0 else read_capped(d / "out" / "events.json", 256 << 20)
            loaded = json.loads(raw) if raw is not None else None
        except (OSError, ValueError):
            loaded = None
        return loaded if isinstance(loaded, list) else None

    def failed(tag: str, out) -> ProbeOutcome:
        d = runs[tag][0]
        tail = [x[:300] for x in read_capped(d / "console.txt").decode("utf-8", "replace").splitlines() if x.strip()][-3:]
        why = f"timed out after {timeout_s:.0f} s" if out.timed_out else f"exit status {out.returncode}"
        where = " through pgolf's CPU layer" if cuda else ""
        return not_run(f"{name} did not run on one CPU process{where} with a {n_val}-token val shard ({why})", tail)

    # First: one run whose final scoring function is re-entered on mutated streams (flips at three
    # positions, the partial sweep). Only when that is impossible: two more whole runs (again, flip).
    import time as _time

    from auditor.reproduce.probe_reentry import mutations, read_reentry, sweep_spec

    try:
        reinst = instrument_source(text, reentry=True)
    except Exception:
        reinst = inst
    spec = {"n_val": n_val, "head": [int(x) for x in val[:32]], "last": int(val[-1]), "mutations": mutations(val, vocab), "sweep": sweep_spec(val, vocab),
            "deadline": _time.time() + 0.8 * timeout_s}
    prepare("base", val, reinst.source, spec if reinst.reentered else None, ledger=True)
    out = run_all(["base"])["base"]
    base = load("base", out)
    if base is None:
        return failed("base", out)
    if not any(isinstance(e, dict) and e.get("kind") == "score" for e in base):
        return not_run(f"{name} ran{' through the CPU layer' if cuda else ''} but none of its accumulation statements executed "
                       f"(lines {', '.join(str(x.line) for x in sites[:5])}): the eval loop was not reached at toy size")
    records: list = []
    if reinst.reentered:
        try:  # written by the record's process: hostile until read
            records = json.loads(read_capped(runs["base"][0] / "out" / "reentry.json", 256 << 20))
        except (OSError, ValueError):
            records = []
        records = records if isinstance(records, list) else []
    # the ledger scopes to the call the re-entry chose (the last record with calls)
    chosen = [r.get("function") for r in records if isinstance(r, dict) and r.get("calls")]
    kept = list(res.findings)
    try:  # written by the record's process: hostile until read
        read_ledger(res, target, json.loads(read_capped(runs["base"][0] / "out" / "ledger.json", 256 << 20)), n_val,
                    line_map(text, reinst.source), scope=chosen[-1] if chosen and isinstance(chosen[-1], str) else None)
    except (OSError, KeyError, TypeError, ValueError, AttributeError, IndexError, StopIteration) as exc:
        res.findings[:] = kept
        res.findings.append(_f("PROBE-LEDGER", Severity.INFO, target, None,
                               f"ledger not run: its report from the run is missing or malformed ({type(exc).__name__})", [], ""))
    why_not = "no function other than main() holds a score site" if not reinst.reentered else None
    if reinst.reentered:
        base_scores = [e for e in base if isinstance(e, dict) and e.get("kind") == "score"]
        if base_scores:
            res.numbers.update({"score_sites": [f"{name}:{s.line}: {s.code}" for s in sites], "score_events": len(base_scores),
                                "scores": sum(len(e["values"]) for e in base_scores)})
        try:  # written by the record's process: hostile until read
            kept = list(res.findings)
            why_not = read_reentry(res, target, records, val, vocab)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
            res.findings[:] = kept
            why_not = f"its re-entry report is malformed ({type(exc).__name__})"
        if why_not is None:
            res.numbers["mode"] = "re-entered"
            # The snapshot is taken at the final scoring call: state the stream shaped BEFORE it (TTT on val,
            # then quantize, then score; a cache filled by an earlier pass) is already in it. The whole-script
            # flip re-runs everything, so it complements a passing re-entry.
            if any(f.severity is Severity.ERROR for f in res.findings) or not complement:
                return res
            res.numbers["mode"] = "re-entered + whole-script flip"
    if res.numbers.get("mode") != "re-entered + whole-script flip":
        res.numbers["mode"] = "whole script"
        res.findings.append(_f("PROBE-NOT-RUN", Severity.INFO, name, None,
                               f"re-entering the scoring function not possible ({why_not}): fell back to flipping the last token by re-running "
                               "the whole script", [], ""))
    both = res.numbers["mode"] == "re-entered + whole-script flip"
    res.numbers["flip"] = [int(val[-1]), int(flipped[-1])]
    # "again" repeats "base": only two runs of the same stream can tell a non-deterministic run from an
    # eval that reads the flipped token (TTT on the whole stream moves even the first score)
    prepare("again", val, inst.source)
    prepare("flip", flipped, inst.source)
    outcomes = run_all(["again", "flip"])
    events = {"base": [e for e in base if isinstance(e, dict) and e.get("kind") == "score"]}
    for tag in ("again", "flip"):
        loaded = load(tag, outcomes[tag])
        if loaded is None:
            return failed(tag, outcomes[tag])
        events[tag] = [e for e in loaded if isinstance(e, dict) and e.get("kind") == "score"]
    a, b = events["base"], events["flip"]
    again = events["again"]
    if a != again:
        first = next(((j, i, u, v, x["line"]) for j, (x, y) in enumerate(zip(a, again))
                      for i, (u, v) in enumerate(zip(x["values"], y["values"])) if u != v), None)
        where = f" ({name}:{first[4]}: {first[2]:.6f} vs {first[3]:.6f} nats)" if first else ""
        return not_run(f"two runs on the same val stream scored differently{where}: the run is not deterministic at toy size, "
                       "so the flip cannot be read", [], line=first[4] if first else None)
    if not a:
        return not_run(f"{name} ran{' through the CPU layer' if cuda else ''} but none of its accumulation statements executed "
                       f"(lines {', '.join(str(x.line) for x in sites[:5])}): the eval loop was not reached at toy size")
    res.numbers.update({"score_sites": [f"{name}:{s.line}: {s.code}" for s in sites], "score_events": len(a),
                        "scores": sum(len(e["values"]) for e in a), "flipped_token": n_val - 1})
    if len(a) != len(b) or any(len(x["values"]) != len(y["values"]) for x, y in zip(a, b)):
        res.findings.append(_f("PROBE-SUFFIX-FLIP", Severity.WARNING, target, sites[0].line,
                               f"flipping the last val token changed how many scores were committed ({len(a)} vs {len(b)} batches)", [],
                               "the number of scored tokens must not depend on token values"))
        return res
    # A legal eval scores the last target once per pass: one changed value, the last of its batch (evals
    # that reorder documents put that batch anywhere in the pass). Any other change reads the future.
    changed: dict[tuple[int, int], list] = {}
    passes = _pass_of(a)
    for j, (x, y) in enumerate(zip(a, b)):
        n = len(x["values"])
        for i, (u, v) in enumerate(zip(x["values"], y["values"])):
            if u != v:
                changed.setdefault(passes[j], []).append((j, i, u, v, x["line"], i == n - 1))
    # Per-token batches hold contiguous targets, so the last target is the last value of any batch that
    # scores it (tail windows of a sliding eval may score it twice). A per-batch sum cannot show which
    # target moved: one changed sum per pass is the last target's, more read the future.
    legit, bad = 0, []
    for ch in changed.values():
        per_token = [c for c in ch if len(a[c[0]]["values"]) > 1]
        sums = [c for c in ch if len(a[c[0]]["values"]) == 1]
        ok_tok = [c for c in per_token if c[5]]
        if len(ok_tok) == len(per_token) and len(sums) <= (0 if per_token else 1):
            legit += len(ch)
        else:
            bad += [c[:5] for c in ch]
    res.numbers["changed_last_target"] = legit
    if bad:
        j, i, u, v, line = bad[0]
        res.findings.append(_f("PROBE-SUFFIX-FLIP", Severity.ERROR, target, line,
                               f"flipping the last val token (position {n_val - 1}) changed {len(bad)} score(s) of earlier targets "
                               f"(first: batch {j + 1}, value {i + 1} of {len(a[j]['values'])}: {u:.6f} → {v:.6f} nats): the eval reads the future",
                               [f"batch {jj + 1} value {ii + 1}: {uu:.6f} → {vv:.6f}" for jj, ii, uu, vv, _ in bad[:5]],
                               "score each token from its prefix only, in one pass"))
    elif not both:  # with re-entry, its pass finding already says pass
        res.findings.append(_f("PROBE-SUFFIX-FLIP", Severity.INFO, name, None,
                               f"pass: flipping the last val token changed only the last target's score, in {legit} eval pass(es); "
                               f"all other {res.numbers['scores'] - legit} scores identical", [], ""))
    swept = _two_token_sum(res, target, a, changed, passes, _final_loss(runs["base"][0] / "console.txt"), int(val[-1]), int(flipped[-1]),
                           n_val, vocab)
    if both:
        res.numbers["whole_script_flip"] = "flagged" if bad else f"pass ({legit} last-target changes)"
        return res
    if not swept:
        res.findings.append(_f("PROBE-NOT-RUN", Severity.INFO, name, None,
                               "vocabulary sweep not run on a whole script that cannot be re-entered: it needs one full run per vocabulary "
                               f"entry ({vocab})", [], ""))
    return res


def _final_loss(console: Path) -> float | None:
    """val_loss of the run's final score line, read as the audit reads a log."""
    from auditor.evidence.logs import final_line

    try:
        final = final_line(read_capped(console, 16 << 20).decode("utf-8", "replace"))
    except (OSError, ValueError):
        return None
    return final.val_loss if final is not None else None


def _two_token_sum(res: ProbeOutcome, target: str, a: list, changed: dict, passes: list, final_loss: float | None,
                   old: int, new: int, n_val: int, vocab: int) -> bool:
    """The whole-script runs already hold two candidates at the last position: the stream's own last token and the
    flipped one (the most frequent other continuation of its context). In the reported pass (its per-token mean is
    the final line's val_loss, so the values are nats of single targets), exp(-score) of the two summing above 1
    proves the distribution is not normalized: a two-token vocabulary sweep at no extra cost. True when read."""
    import math

    if final_loss is None or final_loss <= 0:
        return False
    for key, ch in changed.items():
        last = [c for c in ch if len(a[c[0]]["values"]) > 1 and c[5]]
        vals = [v for j, e in enumerate(a) if passes[j] == key and len(e["values"]) > 1 for v in e["values"]]
        if not last or not vals or abs(float(np.mean(vals)) - final_loss) > 0.25 * final_loss + 0.02:
            continue
        j, i, u, v, line, _ = last[-1]
        total = math.exp(-u) + math.exp(-v)
        res.numbers["two_token_sum"] = {"position": n_val - 1, "site": f"{target}:{line}", "nll": {str(old): round(u, 6), str(new): round(v, 6)},
                                        "sum_p": round(total, 6)}
        if total > 1 + 1e-3:
            res.findings.append(_f("PROBE-NORMALIZATION", Severity.ERROR, target, line,
                                   f"at the last position ({n_val - 1}) of the reported eval pass, 2 of {vocab} tokens already carry "
                                   f"Σ p = {total:.6f} > 1 (p = exp(-score) of {target}:{line}, from the whole-script run and its flip): "
                                   "the scored distribution is not normalized",
                                   [f"token {old}: score {u:.6f} nats → p = {math.exp(-u):.6f}", f"token {new}: score {v:.6f} nats → p = {math.exp(-v):.6f}",
                                    f"pass mean {float(np.mean(vals)):.4f} nats ≈ final val_loss {final_loss:.4f}"],
                                   "score with a distribution normalized over the whole vocabulary (mix full distributions, not the "
                                   "target's count alone)"))
        else:
            res.findings.append(_f("PROBE-NORMALIZATION", Severity.INFO, target, None,
                                   f"pass (partial sweep from the whole-script runs): 2 of {vocab} tokens at the last position sum to "
                                   f"{total:.6f} ≤ 1; a partial sweep can prove a broken distribution, not a normalized one (a full sweep "
                                   "needs one run per token)", [], ""))
        return True
    return False
