"""A legal n-gram cache for evaluation, mixed with a model (`pgolf eval --ngram`).

Legal means, at every scored position t (predicting tokens[t] from tokens[:t]):
  * the cache holds only counts of tokens that were already scored (it is updated after each
    chunk of `chunk_tokens` positions is scored, never before);
  * it gives a distribution over the WHOLE vocabulary, normalised by construction: counts are
    keyed by the exact context (no hashing, so no collisions) and interpolated down the orders
    to a uniform base,  q_l = (c_l + beta * q_{l-1}) / (T_l + beta);
  * the mixture p = (1 - lam) * p_model + lam * q_K uses a weight lam that depends only on the
    prefix (matched order, context count, model entropy), never on the target.
Scoring evaluates that normalised p at the target in closed form; `distribution_at` builds the
full vector, and the tests check that both agree.

API (numpy only; no torch needed):

    cfg = NgramConfig(vocab_size=V, max_order=4, chunk_tokens=2048)
    nll = score_tokens(tokens, logprob_fn, cfg)        # (N-1,) NLL in nats of tokens[1:], in order
    p   = distribution_at(tokens, t, logprob_fn, cfg)  # (V,) distribution for position t (1 <= t < N)
    sweep_sums(distribution_at, tokens, positions, logprob_fn, cfg) -> np.ndarray of sum_v p(v)
    suffix_flip_diff(score_tokens, tokens, k, logprob_fn, cfg) -> max |change| of the scores before k

`logprob_fn(prefix) -> (V,) log-probs` of the next token given the prefix (an int array). For speed
it may also have `.batch(tokens, start, end) -> (end - start, V)` log-probs for targets start..end-1
(each from tokens[:t] only), or better `.target_stats(tokens, start, end) -> (log p(tokens[t]),
entropy)` per target, taken from the model's own pass so no (end - start) x V array is shipped.
`unigram_model` and `bigram_model` build such models from counts.

The cache is exact and vectorised: per context length, counts of contexts and of (context, token)
codes in flat arrays (small ranges) or in sorted runs searched with binary search (large ranges);
one chunk costs a few numpy calls per order, no per-token Python.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class NgramConfig:
    vocab_size: int
    max_order: int = 4  # longest context = max_order - 1 tokens; level 0 is the empty context
    chunk_tokens: int = 2048  # counts are updated after each chunk of this many scored positions
    beta: float = 2.0  # interpolation strength towards the next-shorter context
    lam_max: float = 0.6  # mixture weight when the longest context is matched and well counted
    tau: float = 4.0  # context-count half-saturation for the weight
    entropy_scale: float = 1.0  # nats; the cache is trusted more where the model is unsure


def _batch_logprobs(logprob_fn, tokens: np.ndarray, start: int, end: int) -> np.ndarray:
    batch = getattr(logprob_fn, "batch", None)
    if batch is not None:
        return np.asarray(batch(tokens, start, end), dtype=np.float64)
    return np.stack([np.asarray(logprob_fn(tokens[:t]), dtype=np.float64) for t in range(start, end)])


def _model_stats(logprob_fn, tokens: np.ndarray, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """(log p_model(target), entropy of p_model) for targets start..end-1. A model that has them
    from its own pass (`.target_stats`) saves shipping (end - start) x V log-probs."""
    stats = getattr(logprob_fn, "target_stats", None)
    if stats is not None:
        lp, ent = stats(tokens, start, end)
        return np.asarray(lp, dtype=np.float64), np.asarray(ent, dtype=np.float64)
    logp = _batch_logprobs(logprob_fn, tokens, start, end)
    return logp[np.arange(end - start), tokens[start:end]], _entropy(logp)


# Code ranges up to this size are counted in a flat array; larger ones in sorted runs.
DENSE_CODES = 1 << 21


class _Counts:
    """Exact counts of non-negative int64 codes below `size`.

    Small ranges: a flat array. Large ranges: a log-structured list of sorted runs of unique codes
    with their counts; each update adds one run and merges the newest runs while the older is not
    more than twice as large, so there are O(log n) runs and each code is merged O(log n) times.
    A lookup is one binary search per run."""

    def __init__(self, size: int):
        self.flat = np.zeros(size, dtype=np.int64) if size <= DENSE_CODES else None
        self.runs: list[tuple[np.ndarray, np.ndarray]] = []

    def add(self, codes: np.ndarray) -> None:
        if codes.size == 0:
            return
        u, c = np.unique(codes, return_counts=True)
        if self.flat is not None:
            self.flat[u] += c
            return
        self.runs.append((u, c.astype(np.int64)))
        while len(self.runs) > 1 and self.runs[-2][0].size <= 2 * self.runs[-1][0].size:
            (ka, ca), (kb, cb) = self.runs.pop(), self.runs.pop()
            k, c = np.concatenate((kb, ka)), np.concatenate((cb, ca))
            order = np.argsort(k, kind="stable")  # two sorted runs: timsort merges them in linear time
            k, c = k[order], c[order]
            first = np.flatnonzero(np.concatenate(([True], k[1:] != k[:-1])))
            self.runs.append((k[first], np.add.reduceat(c, first)))

    def get(self, codes: np.ndarray) -> np.ndarray:
        """Counts of codes (0 where a code is negative or unseen)."""
        if self.flat is not None:
            return np.where(codes >= 0, self.flat[np.maximum(codes, 0)], 0)
        if not self.runs:
            return np.zeros(codes.size, dtype=np.int64)
        # Binary search with ascending needles: numpy narrows each search with the previous
        # result, and the probes walk memory in order.
        order = np.argsort(codes)
        needles = codes[order]
        found = np.zeros(codes.size, dtype=np.int64)
        for k, c in self.runs:
            i = np.minimum(np.searchsorted(k, needles), k.size - 1)
            found += np.where(k[i] == needles, c[i], 0)
        out = np.empty_like(found)
        out[order] = found
        return out

    def row(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """(codes, counts) of the seen codes in [lo, hi), codes ascending."""
        if self.flat is not None:
            nz = np.flatnonzero(self.flat[lo:hi])
            return nz + lo, self.flat[lo:hi][nz]
        found: dict[int, int] = {}
        for k, c in self.runs:
            a, b = np.searchsorted(k, [lo, hi])
            for code, n in zip(k[a:b].tolist(), c[a:b].tolist()):
                found[code] = found.get(code, 0) + n
        codes = np.array(sorted(found), dtype=np.int64)
        return codes, np.array([found[x] for x in codes.tolist()], dtype=np.int64)


class _Cache:
    """Counts per context length l = 0..K: totals[l][ctx] and pairs[l][ctx * V + token], exact
    (no hashing), vectorised (sorted arrays and binary search, no per-token Python)."""

    def __init__(self, cfg: NgramConfig):
        self.cfg = cfg
        self.K = cfg.max_order - 1
        V = cfg.vocab_size
        if V ** (self.K + 1) >= 2 ** 62:
            raise ValueError("vocab_size ** max_order must fit in 62 bits for exact (context, token) codes")
        self.totals = [_Counts(V ** l) for l in range(self.K + 1)]
        self.pairs = [_Counts(V ** (l + 1)) for l in range(self.K + 1)]

    def context_keys(self, tokens: np.ndarray, positions: np.ndarray) -> list[np.ndarray]:
        """keys[l][i] = exact id of tokens[t-l:t] for t = positions[i] (-1 where t < l)."""
        V = self.cfg.vocab_size
        keys = [np.zeros(len(positions), dtype=np.int64)]
        acc = np.zeros(len(positions), dtype=np.int64)
        for l in range(1, self.K + 1):
            idx = positions - l
            ok = idx >= 0
            prev = np.where(ok, tokens[np.maximum(idx, 0)], 0).astype(np.int64)
            acc = acc * V + prev
            keys.append(np.where(positions >= l, acc, -1))
        return keys

    def lookup(self, keys: list[np.ndarray], targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        V = self.cfg.vocab_size
        counts = np.zeros((self.K + 1, len(targets)))
        totals = np.zeros((self.K + 1, len(targets)))
        for l in range(self.K + 1):
            T = self.totals[l].get(keys[l])
            seen = np.flatnonzero(T)
            totals[l] = T
            if seen.size:
                counts[l, seen] = self.pairs[l].get(keys[l][seen] * V + targets[seen])
        return counts, totals

    def update(self, keys: list[np.ndarray], targets: np.ndarray) -> None:
        V = self.cfg.vocab_size
        for l in range(self.K + 1):
            ok = keys[l] >= 0
            self.totals[l].add(keys[l][ok])
            self.pairs[l].add(keys[l][ok] * V + targets[ok])

    def dense(self, key_list: list[int]) -> np.ndarray:
        """The cache distribution q_K over the vocabulary for one position."""
        V, beta = self.cfg.vocab_size, self.cfg.beta
        q = np.full(V, 1.0 / V)
        for l, key in enumerate(key_list):
            T = int(self.totals[l].get(np.array([key]))[0]) if key >= 0 else 0
            if not T:
                continue
            q *= beta / (T + beta)
            codes, n = self.pairs[l].row(key * V, key * V + V)
            q[codes - key * V] += n.astype(np.float64) / (T + beta)
        return q


def _cache_prob(counts: np.ndarray, totals: np.ndarray, cfg: NgramConfig) -> np.ndarray:
    q = np.full(counts.shape[1], 1.0 / cfg.vocab_size)
    for l in range(counts.shape[0]):
        T = totals[l]
        q = np.where(T > 0, (counts[l] + cfg.beta * q) / (T + cfg.beta), q)
    return q


def mixture_weight(totals: np.ndarray, model_entropy: np.ndarray, cfg: NgramConfig) -> np.ndarray:
    """lam from the prefix only: the longest matched context length m, its count T_m, and the
    model's entropy. No cache before anything is scored; lam = 0 when no context of length >= 1 matched."""
    K = totals.shape[0] - 1
    matched = totals[1:] > 0 if K else np.zeros((0, totals.shape[1]), bool)
    m = np.where(matched.any(axis=0), K - np.argmax(matched[::-1], axis=0), 0) if K else np.zeros(totals.shape[1], int)
    T_m = np.take_along_axis(totals, m[None, :], axis=0)[0]
    conf = T_m / (T_m + cfg.tau)
    unsure = model_entropy / (model_entropy + cfg.entropy_scale)
    return np.where(m > 0, cfg.lam_max * (m / max(K, 1)) * conf * unsure, 0.0)


def _entropy(logp: np.ndarray) -> np.ndarray:
    p = np.exp(logp)
    return -(p * np.where(p > 0, logp, 0.0)).sum(axis=-1)


def score_tokens(tokens, logprob_fn, cfg: NgramConfig, rank: int = 0, world: int = 1) -> np.ndarray:
    """NLL (nats) of tokens[1:] under the model+cache mixture, in scoring order.

    With world > 1 (ranks that all hold the token stream), this rank scores its contiguous share
    of each chunk and leaves 0 at the others' positions (sum the ranks' arrays, e.g. all_reduce);
    every rank then adds the WHOLE chunk to its cache, in lockstep, so each cache is the global
    one and the scores equal the single-process ones exactly."""
    tokens = np.asarray(tokens, dtype=np.int64)
    cache = _Cache(cfg)
    out = np.zeros(max(len(tokens) - 1, 0))
    for s in range(1, len(tokens), cfg.chunk_tokens):
        e = min(len(tokens), s + cfg.chunk_tokens)
        pos = np.arange(s, e)
        tgt = tokens[s:e]
        keys = cache.context_keys(tokens, pos)
        a, b = (e - s) * rank // world, (e - s) * (rank + 1) // world
        if b > a:
            logp_t, entropy = _model_stats(logprob_fn, tokens, s + a, s + b)
            counts, totals = cache.lookup([k[a:b] for k in keys], tgt[a:b])
            lam = mixture_weight(totals, entropy, cfg)
            p_model = np.exp(logp_t)
            p = (1.0 - lam) * p_model + lam * _cache_prob(counts, totals, cfg)
            out[s + a - 1:s + b - 1] = -np.log(p)
        cache.update(keys, tgt)  # only now do these tokens enter the cache
    return out


def distribution_at(tokens, t: int, logprob_fn, cfg: NgramConfig) -> np.ndarray:
    """The full mixture distribution over the vocabulary used to score position t."""
    tokens = np.asarray(tokens, dtype=np.int64)
    if not 1 <= t < len(tokens):
        raise IndexError(f"position {t} is outside 1..{len(tokens) - 1}")
    cache = _Cache(cfg)
    chunk_start = 1 + ((t - 1) // cfg.chunk_tokens) * cfg.chunk_tokens
    if chunk_start > 1:
        seen = np.arange(1, chunk_start)
        cache.update(cache.context_keys(tokens, seen), tokens[1:chunk_start])
    keys = cache.context_keys(tokens, np.array([t]))
    key_list = [int(k[0]) for k in keys]
    logp = np.asarray(logprob_fn(tokens[:t]), dtype=np.float64)
    _, totals = cache.lookup(keys, np.array([0]))
    lam = mixture_weight(totals, _entropy(logp[None, :]), cfg)[0]
    return (1.0 - lam) * np.exp(logp) + lam * cache.dense(key_list)


# ---------------------------------------------------------------- checks (also used by probes)

def sweep_sums(distribution_fn, tokens, positions, logprob_fn, cfg) -> np.ndarray:
    """sum_v p(v) at each position; a legal scorer gives 1 everywhere."""
    return np.array([float(np.sum(distribution_fn(tokens, int(t), logprob_fn, cfg), dtype=np.float64)) for t in positions])


def suffix_flip_diff(score_fn, tokens, k: int, logprob_fn, cfg, new_token: int | None = None) -> float:
    """Change token k and rescore: the largest change of any score before position k (must be 0)."""
    tokens = np.asarray(tokens, dtype=np.int64)
    flipped = tokens.copy()
    flipped[k] = new_token if new_token is not None else (tokens[k] + 1) % cfg.vocab_size
    a, b = score_fn(tokens, logprob_fn, cfg), score_fn(flipped, logprob_fn, cfg)
    return float(np.max(np.abs(a[:k - 1] - b[:k - 1]))) if k > 1 else 0.0


# ---------------------------------------------------------------- toy models for tests and benchmarks

class unigram_model:
    """log-probs from add-one token counts; ignores the prefix."""

    def __init__(self, train_tokens, vocab_size: int):
        c = np.bincount(np.asarray(train_tokens), minlength=vocab_size)[:vocab_size] + 1.0
        self.logp = np.log(c / c.sum())

    def __call__(self, prefix):
        return self.logp

    def batch(self, tokens, start, end):
        return np.broadcast_to(self.logp, (end - start, len(self.logp)))

    def target_stats(self, tokens, start, end):
        ent = _entropy(self.logp[None, :])[0]
        return self.logp[np.asarray(tokens)[start:end]], np.full(end - start, ent)


class bigram_model:
    """log-probs from add-alpha bigram counts of a training stream."""

    def __init__(self, train_tokens, vocab_size: int, alpha: float = 0.1):
        t = np.asarray(train_tokens, dtype=np.int64)
        c = np.full((vocab_size, vocab_size), alpha)
        np.add.at(c, (t[:-1], t[1:]), 1.0)
        self.logp = np.log(c / c.sum(axis=1, keepdims=True))

    def __call__(self, prefix):
        return self.logp[int(prefix[-1])] if len(prefix) else np.full(self.logp.shape[1], -math.log(self.logp.shape[1]))

    def batch(self, tokens, start, end):
        return self.logp[np.asarray(tokens)[start - 1:end - 1]]

    def target_stats(self, tokens, start, end):
        # Entropy per context row, computed once: each position's depends on its prefix only.
        if not hasattr(self, "_row_entropy"):
            self._row_entropy = _entropy(self.logp)
        t = np.asarray(tokens)
        return self.logp[t[start - 1:end - 1], t[start:end]], self._row_entropy[t[start - 1:end - 1]]
