"""Shards and exact bits-per-byte against hand computations on a tiny real SentencePiece model
(BOS boundaries, the leading-space rule, byte fallback, multi-byte UTF-8)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from reference_impl import corpus
from reference_impl.bpb import bpb_of_stream, eval_nonoverlapping, eval_sliding, sliding_windows
from reference_impl.data import (HEADER_BYTES, SHARD_MAGIC, ShardError, byte_tables, load_sentencepiece, read_shard,
                                 target_bytes, write_shard)

WORDS = "hello world the quick brown fox jumps over lazy dog and then some more words for a corpus".split()


@pytest.fixture(scope="module")
def sp(tmp_path_factory):
    rng = np.random.default_rng(0)
    docs = [" ".join(rng.choice(WORDS, 12)) + "\nhello world" for _ in range(400)]
    path = tmp_path_factory.mktemp("tok") / "tiny.model"
    corpus.train_tokenizer(docs, 300, path)
    return load_sentencepiece(str(path))


def test_shard_roundtrip_and_header(tmp_path):
    toks = np.array([1, 5, 65535, 0, 7], dtype=np.int64)
    p = tmp_path / "fineweb_val_000000.bin"
    write_shard(str(p), toks)
    raw = p.read_bytes()
    header = np.frombuffer(raw[:HEADER_BYTES], dtype="<i4")
    assert (header[0], header[1], header[2]) == (SHARD_MAGIC, 1, 5) and not header[3:].any()
    assert len(raw) == HEADER_BYTES + 2 * 5
    assert read_shard(str(p)).tolist() == toks.tolist()


def test_bad_shards_name_the_file(tmp_path):
    p = tmp_path / "a.bin"
    write_shard(str(p), [1, 2, 3])
    p.write_bytes(p.read_bytes()[:-2])
    with pytest.raises(ShardError, match="a.bin.*3 tokens"):
        read_shard(str(p))
    q = tmp_path / "b.bin"
    q.write_bytes(b"\0" * 1030)
    with pytest.raises(ShardError, match="b.bin: not a shard"):
        read_shard(str(q))
    with pytest.raises(ShardError):
        write_shard(str(tmp_path / "c.bin"), [70000])


def test_byte_tables_by_hand(sp):
    base, space, boundary = byte_tables(sp, sp.get_piece_size() + 4)
    hello, world = sp.piece_to_id("\u2581hello"), sp.piece_to_id("\u2581world")
    assert sp.id_to_piece(hello) == "\u2581hello" and sp.id_to_piece(world) == "\u2581world"
    assert (base[hello], space[hello], base[world]) == (5, True, 5)
    bos = sp.bos_id()
    assert bos == 1 and boundary[bos] and base[bos] == 0
    assert boundary[sp.unk_id()] and base[sp.unk_id()] == 0
    assert boundary[-4:].all()  # ids beyond the tokenizer are boundaries
    byte_e6 = sp.piece_to_id("<0xE6>")
    assert sp.is_byte(byte_e6) and base[byte_e6] == 1 and not space[byte_e6]
    # After BOS the leading space is not a byte; after a word it is.
    assert target_bytes([bos, hello], [hello, world], (base, space, boundary)).tolist() == [5, 6]


def test_bytes_equal_utf8_length_of_the_documents(sp):
    docs = ["hello world", "héllo 日本 fox", "the lazy dog\nhello"]
    toks = [t for d in docs for t in [1] + sp.encode(d)]
    tables = byte_tables(sp, sp.get_piece_size())
    nbytes = target_bytes(toks[:-1], toks[1:], tables)
    assert nbytes.sum() == sum(len(d.encode("utf-8")) for d in docs)
    # 日 and 本 are not in the vocabulary: 3 byte-fallback pieces each, one byte apiece.
    pieces = sp.encode("日本", out_type=str)
    assert [p for p in pieces if p.startswith("<0x")] == ["<0xE6>", "<0x97>", "<0xA5>", "<0xE6>", "<0x9C>", "<0xAC>"]


def test_bpb_hand_computation(sp):
    toks = np.array([1] + sp.encode("hello world") + [1] + sp.encode("héllo"))
    tables = byte_tables(sp, sp.get_piece_size())
    n_bytes = len("hello world".encode()) + len("héllo".encode())  # the BOS target counts 0
    nll = np.full(len(toks) - 1, math.log(2.0))  # one bit per token
    loss, bpb = bpb_of_stream(nll, toks[:-1], toks[1:], tables)
    assert loss == pytest.approx(math.log(2.0))
    assert bpb == pytest.approx((len(toks) - 1) / n_bytes, rel=1e-15)


class BigramLogits(torch.nn.Module):
    """Logits that depend only on the current input token: window placement cannot change them."""

    def __init__(self, V: int):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.table = torch.randn(V, V, generator=g)

    def forward(self, x):
        return self.table[x]


def _hand(model, toks, tables):
    logp = torch.log_softmax(model.table, -1).double().numpy()
    nll = -logp[toks[:-1], toks[1:]]
    return bpb_of_stream(nll, toks[:-1], toks[1:], tables)


def test_eval_loops_match_the_hand_sum(sp):
    V = sp.get_piece_size()
    rng = np.random.default_rng(1)
    toks = np.concatenate([[1] + sp.encode(" ".join(rng.choice(WORDS, 30))) for _ in range(6)])
    toks = toks[: (len(toks) - 1) // 16 * 16 + 1]
    tables = byte_tables(sp, V)
    model = BigramLogits(V)
    want = _hand(model, toks, tables)
    got = eval_nonoverlapping(model, toks, tables, seq_len=16, batch_tokens=64, device="cpu")
    assert got == pytest.approx(want, rel=1e-12)
    for stride in (1, 5, 16):
        assert eval_sliding(model, toks, tables, 16, stride, 4, "cpu") == pytest.approx(want, rel=1e-12)


def test_sliding_windows_score_every_target_once():
    for n, seq, stride in [(100, 16, 4), (64, 16, 16), (17, 16, 3), (250, 32, 7)]:
        seen = []
        for start, keep in sliding_windows(n, seq, stride):
            assert 0 <= start and start + seq <= n
            seen.extend(range(start + keep + 1, start + seq + 1))
        assert seen == list(range(1, n + 1))
    with pytest.raises(ValueError):
        sliding_windows(10, 16, 4)
