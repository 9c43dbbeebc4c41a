"""Throughput of the legal n-gram cache (reference_impl.ngram) on CPU.

Scores N tokens (default 1,000,000) of the stdlib corpus tokenised with a 1024-piece tokenizer,
mixing a bigram model's full-vocabulary log-probs with the cache. Each position uses the model's
whole distribution (entropy for the weight) and the cache's normalised distribution evaluated at
the target. A sample of positions also builds the full distribution vector and checks it sums to 1.

    python benchmarks/bench_reference_ngram.py [--tokens 1000000] [--order 4] [--vocab 1024]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from reference_impl import corpus
from reference_impl.data import load_tokens
from reference_impl.ngram import NgramConfig, bigram_model, distribution_at, score_tokens


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=1_000_000)
    ap.add_argument("--order", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--chunk", type=int, default=2048)
    ap.add_argument("--dense-samples", type=int, default=200)
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
    t0 = time.perf_counter()
    nll = score_tokens(stream, model, cfg)
    dt = time.perf_counter() - t0
    base = -model.batch(stream, 1, len(stream))[np.arange(len(stream) - 1), stream[1:]]
    print(f"scored {len(nll):,} tokens in {dt:.1f}s: {len(nll) / dt:,.0f} tokens/s "
          f"(order {a.order}, chunk {a.chunk}); mean NLL model {base.mean():.4f} -> mixture {nll.mean():.4f} nats")
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
