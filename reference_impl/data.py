"""Token shards and the byte tables of a SentencePiece tokenizer.

Shard format (records.md §4.4): a 256 x int32 little-endian header — magic 20240520,
version 1, token count n, the rest zero — then n uint16 little-endian tokens. Each
document is BOS followed by its tokens, no EOS.
"""
from __future__ import annotations

import glob
import os

import numpy as np

SHARD_MAGIC = 20240520
SHARD_VERSION = 1
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4


class ShardError(ValueError):
    """A shard file whose header or size does not match the format."""


def write_shard(path: str, tokens) -> None:
    toks = np.asarray(tokens)
    if toks.size and (toks.min() < 0 or toks.max() >= 1 << 16):
        raise ShardError(f"{path}: token ids must fit in uint16")
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[0], header[1], header[2] = SHARD_MAGIC, SHARD_VERSION, toks.size
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(header.tobytes())
        f.write(toks.astype("<u2").tobytes())
    os.replace(tmp, path)


def read_shard(path: str) -> np.ndarray:
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        header = np.frombuffer(f.read(HEADER_BYTES), dtype="<i4")
        if header.size != HEADER_INTS or header[0] != SHARD_MAGIC or header[1] != SHARD_VERSION:
            raise ShardError(f"{path}: not a shard (magic/version {header[:2].tolist() if header.size >= 2 else header.tolist()})")
        n = int(header[2])
        if size != HEADER_BYTES + 2 * n:
            raise ShardError(f"{path}: header says {n} tokens, file size {size} != {HEADER_BYTES + 2 * n}")
        return np.frombuffer(f.read(2 * n), dtype="<u2").astype(np.int64)


def shard_files(pattern: str) -> list[str]:
    # CaseOps-style byte sidecars share the val prefix; they are not token shards.
    files = sorted(f for f in glob.glob(pattern) if "_bytes_" not in os.path.basename(f))
    if not files:
        raise FileNotFoundError(f"no shards match {pattern}")
    return files


def load_tokens(pattern: str, max_tokens: int = 0) -> np.ndarray:
    parts, have = [], 0
    for f in shard_files(pattern):
        parts.append(read_shard(f))
        have += parts[-1].size
        if max_tokens and have >= max_tokens:
            break
    toks = np.concatenate(parts)
    return toks[:max_tokens] if max_tokens else toks


def byte_tables(sp, vocab_size: int):
    """(base_bytes, has_leading_space, is_boundary) over `vocab_size` ids (records.md §4.1).

    base_bytes: UTF-8 length of the piece without one leading "▁"; byte-fallback pieces 1;
    control/unknown/unused 0. Ids at or beyond the tokenizer's size are boundaries.
    """
    n = sp.get_piece_size()
    base = np.zeros(vocab_size, dtype=np.int64)
    space = np.zeros(vocab_size, dtype=bool)
    boundary = np.ones(vocab_size, dtype=bool)
    for t in range(min(n, vocab_size)):
        if sp.is_control(t) or sp.is_unknown(t) or sp.is_unused(t):
            continue
        boundary[t] = False
        if sp.is_byte(t):
            base[t] = 1
            continue
        piece = sp.id_to_piece(t)
        if piece.startswith("\u2581"):
            space[t] = True
            piece = piece[1:]
        base[t] = len(piece.encode("utf-8"))
    return base, space, boundary


def target_bytes(prev, tgt, tables) -> np.ndarray:
    """Bytes each target token stands for, given the token before it."""
    base, space, boundary = tables
    prev, tgt = np.asarray(prev), np.asarray(tgt)
    return base[tgt] + (space[tgt] & ~boundary[prev]).astype(np.int64)


def load_sentencepiece(path: str):
    import sentencepiece as spm

    if not os.path.isfile(path):
        raise FileNotFoundError(f"tokenizer model not found: {path}")
    return spm.SentencePieceProcessor(model_file=path)
