"""Throughput of the legal n-gram cache (reference_impl.ngram) on CPU.

Scores N tokens (default 1,000,000) of the stdlib corpus tokenised with a 1024-piece tokenizer,
mixing a bigram model's full-vocabulary log-probs with the cache. Each position uses the model's
whole distribution (entropy for the weight) and the cache's normalised distribution evaluated at
the target. A sample of positions also builds the full distribution vector and checks it sums to 1.

    python benchmarks/bench_reference_ngram.py [--tokens 1000000] [--order 4] [--vocab 1024]
    python benchmarks/bench_reference_ngram.py --against 8eadecc   # also score with ngram.py at that git
                                                                  # revision (the dict cache) and compare NLL

Throughput is reported per wall second and per CPU second of this (single-threaded) process: on a
shared machine the second is the one-thread figure. The model side uses `target_stats` (log p of the
target and the entropy from the model pass); the mixture and cache are the same code either way.
"""
from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from reference_impl import corpus
from reference_impl.data import load_tokens
from reference_impl.ngram import NgramConfig, bigram_model, distribution_at, score_tokens


def _module_at(rev: str):
    root = Path(__file__).resolve().parents[1]
    src = subprocess.run(["git", "-C", str(root), "show", f"{rev}:reference_impl/ngram.py"], capture_output=True, text=True,
                         check=True).stdout
    tmp = Path(tempfile.mkdtemp()) / "ngram_at_rev.py"
    tmp.write_text(src, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("ngram_at_rev", tmp)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["ngram_at_rev"] = mod
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=1_000_000)
    ap.add_argument("--order", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--chunk", type=int, default=2048)
    ap.add_argument("--dense-samples", type=int, default=200)
    ap.add_argument("--against", help="a git revision whose reference_impl/ngram.py to score with too (exact-NLL check)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        docs = corpus.read_docs(corpus.stdlib_files(max_bytes=12_000_000))
        res = corpus.build(docs, Path(tmp), "stdlib", a.vocab, val_fraction=0.5)
        train = load_tokens(str(res.dataset_dir / "fineweb_train_*.bin"))
        val = load_tokens(str(res.dataset_dir / "fineweb_val_*.bin"))
        print(f"data: {len(train):,} train / {len(val):,} val tokens, vocab {a.vocab} ({time.perf_counter() - t0:.1f}s to build)")
    stream = np.concatenate([val, train])[: a.tokens + 1]
    model = bigram_model(train[len(train) // 2:], a.vocab)
    cfg = NgramConfig(a.vocab, max_order=a.order, chunk_tokens=a.chunk)
    t0, c0 = time.perf_counter(), time.process_time()
    nll = score_tokens(stream, model, cfg)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    base = -model.batch(stream, 1, len(stream))[np.arange(len(stream) - 1), stream[1:]]
    print(f"scored {len(nll):,} tokens in {dt:.1f}s wall / {dc:.1f}s CPU: {len(nll) / dt:,.0f} tokens/s wall, "
          f"{len(nll) / dc:,.0f} tokens per CPU second (order {a.order}, chunk {a.chunk}); "
          f"mean NLL model {base.mean():.4f} -> mixture {nll.mean():.4f} nats")
    if a.against:
        old = _module_at(a.against)
        t0, c0 = time.perf_counter(), time.process_time()
        ref = old.score_tokens(stream, old.bigram_model(train[len(train) // 2:], a.vocab),
                               old.NgramConfig(a.vocab, max_order=a.order, chunk_tokens=a.chunk))
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        print(f"{a.against}:reference_impl/ngram.py: {len(ref) / dt:,.0f} tokens/s wall, {len(ref) / dc:,.0f} per CPU second; "
              f"NLL bit-identical: {np.array_equal(ref, nll)} (max |diff| {np.abs(ref - nll).max():.3e}, "
              f"sums {ref.sum():.9f} / {nll.sum():.9f})")
    rng = np.random.default_rng(0)
    pos = rng.integers(1, len(stream), a.dense_samples)
    t0 = time.perf_counter()
    worst = 0.0
    for t in pos:
        p = distribution_at(stream, int(t), model, cfg)
        worst = max(worst, abs(p.sum() - 1.0), abs(-np.log(p[stream[t]]) - nll[t - 1]))
    print(f"full-vocab check at {len(pos)} positions: max |sum p - 1| or |score mismatch| = {worst:.2e} "
          f"({(time.perf_counter() - t0) / len(pos) * 1000:.0f} ms per position, cache rebuilt each time)")


if __name__ == "__main__":
    main()
