"""Cached evaluation helpers."""
import math

import torch
import torch.nn.functional as F
from torch import Tensor


def count_bytes(prev_ids: Tensor, tgt_ids: Tensor, luts) -> Tensor:
    base_bytes, has_space, is_boundary = luts
    nbytes = base_bytes[tgt_ids].to(torch.float64)
    nbytes += (has_space[tgt_ids] & ~is_boundary[prev_ids]).to(torch.float64)
    return nbytes.sum()

P_CTX, P_PAIR = 1000003, 998244353


def ctx_hash(prev: Tensor, buckets: int) -> Tensor:
    return (prev * P_CTX) % buckets


def eval_val_cached(args, model, device, val_tokens: Tensor, luts):
    """Score-first cached eval: each window is scored, then its counts enter the tables."""
    seq_len = args.train_seq_len
    buckets = args.ngram_buckets
    ctx_tab = torch.zeros(buckets, dtype=torch.float32, device=device)
    pair_tab = torch.zeros(buckets, dtype=torch.float32, device=device)
    nll_sum, n_tok, n_byte = 0.0, 0, 0.0
    model.eval()
    with torch.inference_mode():
        for start in range(0, val_tokens.numel() - 1 - seq_len, seq_len):
            window = val_tokens[start:start + seq_len + 1].to(device=device, dtype=torch.int64)
            inp = window[:-1]
            y = window[1:]
            logp = F.log_softmax(model.logits(inp[None]).float()[0], dim=-1)
            p_nn = logp.gather(1, y[:, None]).squeeze(1).exp()
            ch = ctx_hash(inp, buckets)
            pk = (ch * P_PAIR + y) % buckets
            seen = ctx_tab[ch]
            hit = pair_tab[pk]
            p_ng = torch.minimum(hit, seen) / seen.clamp_min(1.0)
            mix = torch.where(seen > 0, (1 - args.ngram_alpha) * p_nn + args.ngram_alpha * p_ng, p_nn)
            nll_sum += float(-torch.log(mix.clamp_min(1e-12)).sum())
            ctx_tab.index_add_(0, ch, torch.ones_like(ch, dtype=torch.float32))
            pair_tab.index_add_(0, pk, torch.ones_like(ch, dtype=torch.float32))
            n_tok += inp.numel()
            n_byte += float(count_bytes(inp, y, luts))
    model.train()
    val_loss = nll_sum / n_tok
    return val_loss, val_loss / math.log(2.0) * n_tok / n_byte
