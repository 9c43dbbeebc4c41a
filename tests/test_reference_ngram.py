"""The legal n-gram cache: normalised over the whole vocabulary, causal (score-first), exact
contexts; and the same checks catch the deliberately broken variants in tests/fixtures."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from reference_impl.ngram import (NgramConfig, bigram_model, distribution_at, mixture_weight, score_tokens,
                                  suffix_flip_diff, sweep_sums, unigram_model)

V = 48


def _broken():
    path = Path(__file__).parent / "fixtures" / "broken_ngram.py"
    spec = importlib.util.spec_from_file_location("broken_ngram", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def stream():
    rng = np.random.default_rng(7)
    # Repeated phrases give the cache real long-context matches; noise keeps every order in play.
    phrases = [rng.integers(2, V, rng.integers(3, 9)) for _ in range(12)]
    parts = [np.array([1])]
    for _ in range(70):
        parts.append(phrases[rng.integers(len(phrases))] if rng.random() < 0.7 else rng.integers(0, V, 4))
        if rng.random() < 0.1:
            parts.append(np.array([1]))  # BOS
    return np.concatenate(parts)


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(3)
    return bigram_model(rng.integers(0, V, 3000), V)


CFG = NgramConfig(V, max_order=4, chunk_tokens=16)


def test_vocabulary_sweep_sums_to_one(stream, model):
    rng = np.random.default_rng(0)
    positions = np.concatenate([[1, 2, 16, 17, len(stream) - 1], rng.integers(1, len(stream), 30)])
    sums = sweep_sums(distribution_at, stream, positions, model, CFG)
    assert np.all(np.abs(sums - 1.0) < 1e-9), sums


def test_score_is_the_distribution_at_the_target(stream, model):
    nll = score_tokens(stream, model, CFG)
    assert nll.shape == (len(stream) - 1,)
    for t in [1, 15, 16, 17, 33, 100, len(stream) - 1]:
        p = distribution_at(stream, t, model, CFG)
        assert -np.log(p[stream[t]]) == pytest.approx(nll[t - 1], abs=1e-12)


def test_suffix_flip_leaves_earlier_scores_bit_identical(stream, model):
    base = score_tokens(stream, model, CFG)
    for k in [5, 40, 41, len(stream) // 2, len(stream) - 2]:
        flipped = stream.copy()
        flipped[k] = (stream[k] + 7) % V
        other = score_tokens(flipped, model, CFG)
        assert np.array_equal(base[:k - 1], other[:k - 1]), k  # bit-identical, not approximately equal
        assert suffix_flip_diff(score_tokens, stream, k, model, CFG) == 0.0


def test_cache_helps_on_repetitive_text(stream, model):
    mixed = score_tokens(stream, model, CFG).mean()
    alone = score_tokens(stream, model, NgramConfig(V, chunk_tokens=16, lam_max=0.0)).mean()
    model_nll = -model.batch(stream, 1, len(stream))[np.arange(len(stream) - 1), stream[1:]].mean()
    assert alone == pytest.approx(model_nll)
    assert mixed < alone - 0.3


def test_counts_enter_only_after_their_chunk(model):
    # A token repeated inside one chunk gets no help from the cache; in the next chunk it does.
    toks = np.array([1] + [5] * 40)
    cfg = NgramConfig(V, max_order=2, chunk_tokens=20)
    nll = score_tokens(toks, model, cfg)
    plain = -model.batch(toks, 1, len(toks))[np.arange(40), toks[1:]]
    assert np.allclose(nll[:20], plain[:20])
    assert np.all(nll[20:] < plain[20:] - 0.1)


def test_weight_depends_on_prefix_only():
    totals = np.array([[10.0, 10.0, 0.0], [3.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    lam = mixture_weight(totals, np.array([2.0, 2.0, 2.0]), NgramConfig(V, max_order=3))
    assert lam[0] > 0 and lam[1] == 0 and lam[2] == 0
    assert "target" not in mixture_weight.__code__.co_varnames


def test_unigram_model_protocol(stream):
    m = unigram_model(stream, V)
    assert np.allclose(np.exp(m(stream[:3])).sum(), 1.0)
    assert m.batch(stream, 1, 5).shape == (4, V)


def test_broken_target_in_key_fails_the_sweep(stream, model):
    score, dist = _broken().VARIANTS["target_in_key"]
    sums = sweep_sums(dist, stream, [40, 80, 120, len(stream) - 1], model, CFG)
    assert np.any(np.abs(sums - 1.0) > 1e-3), sums


def test_broken_two_pass_fails_the_suffix_flip(stream, model):
    score, dist = _broken().VARIANTS["two_pass"]
    assert suffix_flip_diff(score, stream, len(stream) // 2, model, CFG) > 1e-6
    # It is normalised, so only the flip test can catch it.
    assert np.all(np.abs(sweep_sums(dist, stream, [10, 60], model, CFG) - 1.0) < 1e-9)


_VEC_CONTEXT_KEYS = __import__("reference_impl.ngram", fromlist=["_Cache"])._Cache.context_keys


class _DictCache:
    """The per-token dict cache the vectorised one replaced: the oracle for exact equality."""

    def __init__(self, cfg):
        from collections import defaultdict

        self.cfg, self.K = cfg, cfg.max_order - 1
        self.totals = [defaultdict(int) for _ in range(self.K + 1)]
        self.pairs = [defaultdict(lambda: defaultdict(int)) for _ in range(self.K + 1)]

    def context_keys(self, tokens, positions):
        return _VEC_CONTEXT_KEYS(self, tokens, positions)

    def lookup(self, keys, targets):
        counts, totals = np.zeros((self.K + 1, len(targets))), np.zeros((self.K + 1, len(targets)))
        for l in range(self.K + 1):
            for i, key in enumerate(keys[l].tolist()):
                if key >= 0 and self.totals[l].get(key):
                    totals[l, i] = self.totals[l][key]
                    counts[l, i] = self.pairs[l][key].get(int(targets[i]), 0)
        return counts, totals

    def update(self, keys, targets):
        for l in range(self.K + 1):
            for key, y in zip(keys[l].tolist(), targets.tolist()):
                if key >= 0:
                    self.totals[l][key] += 1
                    self.pairs[l][key][y] += 1

    def dense(self, key_list):
        V, beta = self.cfg.vocab_size, self.cfg.beta
        q = np.full(V, 1.0 / V)
        for l, key in enumerate(key_list):
            T = self.totals[l].get(key, 0) if key >= 0 else 0
            if T:
                q *= beta / (T + beta)
                row = self.pairs[l][key]
                q[np.fromiter(sorted(row), dtype=np.int64)] += np.array([row[k] for k in sorted(row)], dtype=np.float64) / (T + beta)
        return q


@pytest.mark.parametrize("dense_codes", [0, 1 << 21])  # 0: every order in sorted runs (the large-vocabulary path)
@pytest.mark.parametrize("order, chunk", [(2, 1), (4, 16), (5, 7)])
def test_vectorised_cache_is_bit_identical_to_the_dict_cache(stream, model, monkeypatch, dense_codes, order, chunk):
    import reference_impl.ngram as ng

    cfg = NgramConfig(V, max_order=order, chunk_tokens=chunk)
    monkeypatch.setattr(ng, "DENSE_CODES", dense_codes)
    fast = score_tokens(stream, model, cfg)
    fast_dist = distribution_at(stream, len(stream) - 3, model, cfg)
    monkeypatch.setattr(ng, "_Cache", _DictCache)
    slow = score_tokens(stream, model, cfg)
    assert np.array_equal(fast, slow)
    assert np.array_equal(fast_dist, distribution_at(stream, len(stream) - 3, model, cfg))


def test_target_stats_give_the_same_scores_as_full_rows(stream, model):
    class RowsOnly:  # the same model without its target_stats shortcut
        def __call__(self, prefix):
            return model(prefix)

        def batch(self, tokens, start, end):
            return model.batch(tokens, start, end)

    assert np.array_equal(score_tokens(stream, model, CFG), score_tokens(stream, RowsOnly(), CFG))


def test_counts_merge_runs_exactly():
    from reference_impl.ngram import _Counts

    rng = np.random.default_rng(5)
    c = _Counts(1 << 40)
    want: dict[int, int] = {}
    for _ in range(40):
        codes = rng.integers(0, 300, rng.integers(1, 50)) * 1_000_003
        c.add(codes)
        for x in codes.tolist():
            want[x] = want.get(x, 0) + 1
    assert len(c.runs) <= 8
    q = np.array(sorted(want) + [5, -1, 1_000_003 * 301])
    assert c.get(q).tolist() == [want[x] for x in sorted(want)] + [0, 0, 0]
    codes, n = c.row(0, 1_000_003 * 100)
    assert codes.tolist() == [x for x in sorted(want) if x < 1_000_003 * 100] and n.tolist() == [want[x] for x in codes.tolist()]


def test_ranks_share_each_chunk_and_keep_a_global_cache(stream, model):
    # Three ranks each score a third of every chunk; summed, their scores are the one-process scores.
    one = score_tokens(stream, model, CFG)
    parts = [score_tokens(stream, model, CFG, rank=r, world=3) for r in range(3)]
    assert np.array_equal(np.sum(parts, axis=0), one)
    assert all(np.count_nonzero(p) < len(one) for p in parts)
