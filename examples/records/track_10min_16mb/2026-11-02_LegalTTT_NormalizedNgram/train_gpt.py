import os, math
import numpy as np
import torch
import torch.nn.functional as F


class Hyperparameters:
    ngram_eval = bool(int(os.environ.get("NGRAM_EVAL", "1")))
    ttt_epochs = int(os.environ.get("TTT_EPOCHS", 3))
    ttt_lr = float(os.environ.get("TTT_LR", 0.002))


def eval_val_ttt_ngram(args, model, val_tokens, vocab_size=1024, chunk=32768):
    """Score-first TTT with a normalized n-gram mixture: each chunk is scored under no_grad with
    p = 0.8 softmax + 0.2 normalized counts row, then the cache and the model adapt on it."""
    opt = torch.optim.SGD(model.parameters(), lr=args.ttt_lr)
    counts = np.zeros((4096, vocab_size))
    loss_sum = 0.0
    n_chunks = (len(val_tokens) - 1) // chunk
    for ci in range(n_chunks):
        x = val_tokens[ci * chunk:(ci + 1) * chunk]
        y = val_tokens[ci * chunk + 1:(ci + 1) * chunk + 1]
        ctx = (x * 31) % 4096
        with torch.no_grad():
            p_nn = torch.softmax(model(x), dim=-1).numpy()
            row = counts[ctx] + 0.1
            p = 0.8 * p_nn + 0.2 * row / row.sum(axis=-1, keepdims=True)
            loss_sum += -np.log(p[np.arange(len(y)), y]).sum()
        np.add.at(counts, (ctx, y), 1)
        if ci < n_chunks - 1:
            for _ in range(args.ttt_epochs):
                opt.zero_grad()
                F.cross_entropy(model(x), y).backward()
                opt.step()
    print(f"legal_ttt_exact val_loss:{loss_sum:.8f} val_bpb:{loss_sum:.8f}")
    return loss_sum


def main():
    args = Hyperparameters()
    model = torch.load("model.pt")
    val_tokens = torch.load("val.pt")
    eval_val_ttt_ngram(args, model, val_tokens)


if __name__ == "__main__":
    main()
