"""Probing a whole training script (the record's own eval), when it can run on CPU at tiny size.

The script is instrumented like a scorer module, then run twice under torchrun on one CPU process
with the record's own env, a validation shard cut to 4,097 tokens (4,096 targets: whole windows for
every power-of-two sequence length up to 4,096), and the val-token cap set to that length. The second
run flips the LAST token. Training never reads val, so both runs train the same model; a legal eval
can then change only the score of that last target, which is the last value of its batch in every
pass (non-overlapping or sliding). Any other changed score depends on a token after it.
The vocabulary sweep (V whole runs) and the ledger (token positions at update sites) need a scorer
module; for a whole script they are reported as not run, with the reason.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import threading
from pathlib import Path

import numpy as np

from auditor.model import Severity
from auditor.reproduce.instrument import instrument_source
from auditor.reproduce.plan import Plan
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


def probe_script(plan: Plan, work: Path, *, sandbox: str = "none", timeout_s: float = 600.0) -> ProbeOutcome:
    res = ProbeOutcome(f"{plan.entry}")
    entry = plan.record / (plan.entry or "train_gpt.py")
    name = plan.entry or "train_gpt.py"

    def not_run(why: str, evidence=(), line=None) -> ProbeOutcome:
        res.findings.append(_f("PROBE-NOT-RUN", Severity.INFO, name, line, why, list(evidence),
                               "expose the eval scorer as score_tokens(tokens, …) in its own module to make it probeable"))
        return res

    if not readable_regular(entry, plan.record):  # a symlink would let the probe copy a host file into the run
        return not_run("no entry script (or it is not a regular file of the record folder)")
    if plan.needs.uses_cuda and not plan.needs.cpu_fallback:
        line, what = plan.needs.uses_cuda[0]
        return not_run(f"the script needs CUDA ({name}:{line} uses {what!r} with no CPU fallback); the probes run on CPU", line=line)
    try:
        inst = instrument_source(read_capped(entry, 64 << 20).decode("utf-8"))
    except Exception as exc:
        return not_run(f"cannot instrument {name}: {type(exc).__name__}: {exc}")
    sites = inst.score_sites
    if not sites:
        return not_run(f"no per-token accumulation statement in {name} (a batch-mean accumulator cannot show per-token scores)")
    key, data = given_path(plan, ("DATA_PATH", "DATA_DIR"))  # never a README path outside the folder
    if data is None or not data.is_dir():
        return not_run("the record's data folder is not available here (pass --data)")
    val = _val_prefix(data, PROBE_VAL_TOKENS)
    if val is None or val.size < PROBE_VAL_TOKENS:
        return not_run(f"fewer than {PROBE_VAL_TOKENS} validation tokens in {data}")
    vocab = plan.expected_vocab or int(val.max()) + 1
    flipped = val.copy()
    flipped[-1] = (int(val[-1]) + max(1, vocab // 2)) % vocab
    seed = plan.seeds[0] if plan.seeds else 1337
    runs = {}
    for tag, tokens in (("base", val), ("flip", flipped)):
        d = work / tag
        copy_record(plan.record, d / "record")
        shutil.rmtree(d / "record" / "logs", ignore_errors=True)
        with open_new(d / "record" / name) as f:
            f.write(inst.source)
        (d / "out").mkdir(parents=True, exist_ok=True)
        dd = d / "data"
        dd.mkdir()
        _write_shard(dd / "fineweb_val_000000.bin", tokens)
        for p in find_shards(data, "train"):
            os.symlink(p, dd / p.name)
        env = allowed_env(plan.env_for(seed), home=d / "out")
        env.update({key: str(dd), "PGOLF_PROBE_OUT": str(d / "out" / "events.json"), "CUDA_VISIBLE_DEVICES": "", "PYTHONUNBUFFERED": "1",
                    "PYTHONDONTWRITEBYTECODE": "1", "XDG_CACHE_HOME": str(d / "out" / "cache")})
        for cap in _VAL_CAPS:
            if cap in plan.needs.env_reads or cap in plan.env:
                env[cap] = str(PROBE_VAL_TOKENS)
        argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", name]
        if sandbox == "bwrap":  # the run writes its copy and out/ only; console.txt and the data are pgolf's
            argv = bwrap_argv(argv, workdir=d / "record", writable=[d / "record", d / "out"], readable=[data, dd, plan.record])
        runs[tag] = (d, argv, env)
    # The two runs are independent: run them side by side.
    outcomes = {}
    threads = [threading.Thread(target=lambda t=t, d=d, argv=argv, env=env: outcomes.__setitem__(
        t, run_limited(argv, cwd=d / "record", env=env, limit_s=timeout_s, log_path=d / "console.txt",
                       rlimits=limits(gpu=False) if sandbox == "bwrap" else None)))
        for t, (d, argv, env) in runs.items()]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    events = {}
    for tag, (d, _, _) in runs.items():
        out = outcomes[tag]
        try:  # written inside the sandbox: read without following a link, capped
            raw = None if out.timed_out or out.returncode != 0 else read_capped(d / "out" / "events.json", 256 << 20)
            loaded = json.loads(raw) if raw is not None else None
        except (OSError, ValueError):
            loaded = None
        if not isinstance(loaded, list):
            tail = [x for x in (d / "console.txt").read_text(errors="replace").splitlines() if x.strip()][-3:]
            why = f"timed out after {timeout_s:.0f} s" if out.timed_out else f"exit status {out.returncode}"
            return not_run(f"{name} did not run on one CPU process with a {PROBE_VAL_TOKENS}-token val shard ({why})", tail)
        events[tag] = [e for e in loaded if isinstance(e, dict) and e.get("kind") == "score"]
    a, b = events["base"], events["flip"]
    res.numbers.update({"score_sites": [f"{name}:{s.line}: {s.code}" for s in sites], "score_events": len(a),
                        "scores": sum(len(e["values"]) for e in a), "flipped_token": PROBE_VAL_TOKENS - 1})
    if len(a) != len(b) or any(len(x["values"]) != len(y["values"]) for x, y in zip(a, b)):
        res.findings.append(_f("PROBE-SUFFIX-FLIP", Severity.WARNING, name, sites[0].line,
                               f"flipping the last val token changed how many scores were committed ({len(a)} vs {len(b)} batches)", [],
                               "the number of scored tokens must not depend on token values"))
        return res
    legit, bad = 0, []
    for j, (x, y) in enumerate(zip(a, b)):
        n = len(x["values"])
        for i, (u, v) in enumerate(zip(x["values"], y["values"])):
            if u != v:
                if i == n - 1:
                    legit += 1
                else:
                    bad.append((j, i, u, v, x["line"]))
    res.numbers["changed_last_target"] = legit
    if bad:
        j, i, u, v, line = bad[0]
        res.findings.append(_f("PROBE-SUFFIX-FLIP", Severity.ERROR, name, line,
                               f"flipping the last val token (position {PROBE_VAL_TOKENS - 1}) changed {len(bad)} score(s) of earlier targets "
                               f"(first: batch {j + 1}, value {i + 1} of {len(a[j]['values'])}: {u:.6f} → {v:.6f} nats): the eval reads the future",
                               [f"batch {jj + 1} value {ii + 1}: {uu:.6f} → {vv:.6f}" for jj, ii, uu, vv, _ in bad[:5]],
                               "score each token from its prefix only, in one pass"))
    else:
        res.findings.append(_f("PROBE-SUFFIX-FLIP", Severity.INFO, name, None,
                               f"pass: flipping the last val token changed only the last target's score, in {legit} eval pass(es); "
                               f"all other {res.numbers['scores'] - legit} scores identical", [], ""))
    res.findings.append(_f("PROBE-NOT-RUN", Severity.INFO, name, None,
                           "vocabulary sweep and ledger not run on a whole script: the sweep needs one full run per vocabulary entry "
                           f"({vocab}), and the ledger needs token positions at the update sites", [], ""))
    return res
