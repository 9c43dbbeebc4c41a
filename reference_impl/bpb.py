"""Exact bits per byte (records.md §4.1).

val_loss = sum NLL (nats) / N_targets;  val_bpb = (val_loss / ln 2) * (N_targets / N_bytes),
with each target's bytes from the tokenizer tables given the token before it. Sums are float64
and all-reduced across ranks, so the result does not depend on the world size.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from reference_impl.data import target_bytes


def bpb_from_sums(nll_sum: float, n_targets: float, n_bytes: float) -> tuple[float, float]:
    val_loss = nll_sum / n_targets
    return val_loss, val_loss / math.log(2.0) * n_targets / n_bytes


def bpb_of_stream(nll: np.ndarray, prev: np.ndarray, tgt: np.ndarray, tables) -> tuple[float, float]:
    """(val_loss, val_bpb) of per-target NLLs in nats, e.g. from an n-gram scorer."""
    nbytes = target_bytes(prev, tgt, tables).sum(dtype=np.float64)
    return bpb_from_sums(float(np.sum(nll, dtype=np.float64)), float(len(nll)), float(nbytes))


def _all_reduce_sums(sums: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(sums)
    return sums


def usable_val_tokens(n: int, seq_len: int) -> int:
    """Non-overlapping eval scores whole windows: a multiple of seq_len targets plus one token."""
    usable = ((n - 1) // seq_len) * seq_len
    if usable <= 0:
        raise ValueError(f"validation split has {n} tokens, fewer than one window of {seq_len}")
    return usable + 1


@torch.no_grad()
def _score(logits_fn, x: torch.Tensor, y: torch.Tensor, tables_t, keep_from: int, sums: torch.Tensor) -> None:
    # Sums only targets [keep_from:] of each row: sliding windows score just their new tail.
    base, space, boundary = tables_t
    logits = logits_fn(x)[:, keep_from:]
    y_k, x_k = y[:, keep_from:], x[:, keep_from:]
    nll = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), y_k.reshape(-1), reduction="none")
    nbytes = base[y_k] + (space[y_k] & ~boundary[x_k]).to(torch.int64)
    sums[0] += nll.double().sum()
    sums[1] += y_k.numel()
    sums[2] += nbytes.double().sum()


def tables_to_torch(tables, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    base, space, boundary = tables
    return (torch.as_tensor(base, device=device), torch.as_tensor(space, device=device),
            torch.as_tensor(boundary, device=device))


@torch.no_grad()
def eval_nonoverlapping(logits_fn, tokens: np.ndarray, tables, seq_len: int, batch_tokens: int,
                        device, rank: int = 0, world: int = 1) -> tuple[float, float]:
    """Windows of seq_len, each target scored once; windows split over ranks in contiguous ranges."""
    n = usable_val_tokens(len(tokens), seq_len)
    n_seq = (n - 1) // seq_len
    lo, hi = n_seq * rank // world, n_seq * (rank + 1) // world
    per_batch = max(1, batch_tokens // seq_len)
    toks = torch.as_tensor(np.asarray(tokens[: n]), dtype=torch.int64)
    tables_t = tables_to_torch(tables, device)
    sums = torch.zeros(3, dtype=torch.float64, device=device)
    for s in range(lo, hi, per_batch):
        e = min(hi, s + per_batch)
        chunk = toks[s * seq_len: e * seq_len + 1].to(device)
        x = chunk[:-1].view(e - s, seq_len)
        y = chunk[1:].view(e - s, seq_len)
        _score(logits_fn, x, y, tables_t, 0, sums)
    sums = _all_reduce_sums(sums)
    return bpb_from_sums(sums[0].item(), sums[1].item(), sums[2].item())


def sliding_windows(n_targets: int, seq_len: int, stride: int) -> list[tuple[int, int]]:
    """(window start, first scored offset in the window): every target exactly once, each with
    up to seq_len tokens of context; the first window scores all its targets."""
    if n_targets < seq_len:
        raise ValueError(f"need at least {seq_len} targets for sliding-window eval, have {n_targets}")
    if not 0 < stride <= seq_len:
        raise ValueError(f"stride must be in 1..{seq_len}")
    out, done = [(0, 0)], seq_len
    while done < n_targets:
        end = min(done + stride, n_targets)
        out.append((end - seq_len, seq_len - (end - done)))
        done = end
    return out


@torch.no_grad()
def eval_sliding(logits_fn, tokens: np.ndarray, tables, seq_len: int, stride: int, batch_seqs: int,
                 device, rank: int = 0, world: int = 1) -> tuple[float, float]:
    toks = torch.as_tensor(np.asarray(tokens), dtype=torch.int64)
    windows = sliding_windows(len(toks) - 1, seq_len, stride)
    mine = windows[len(windows) * rank // world: len(windows) * (rank + 1) // world]
    tables_t = tables_to_torch(tables, device)
    sums = torch.zeros(3, dtype=torch.float64, device=device)
    # Windows that score the same tail length batch together.
    i = 0
    while i < len(mine):
        j = i
        while j < len(mine) and j - i < batch_seqs and mine[j][1] == mine[i][1]:
            j += 1
        starts = torch.tensor([w[0] for w in mine[i:j]])
        idx = starts[:, None] + torch.arange(seq_len + 1)[None, :]
        chunk = toks[idx].to(device)
        _score(logits_fn, chunk[:, :-1], chunk[:, 1:], tables_t, mine[i][1], sums)
        i = j
    sums = _all_reduce_sums(sums)
    return bpb_from_sums(sums[0].item(), sums[1].item(), sums[2].item())
