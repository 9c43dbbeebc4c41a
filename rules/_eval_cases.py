"""Our own example programs for the eval-integrity rules' VALID/INVALID cases (never real
submissions' code). Each is a small ``train_gpt.py``; some come with a README or a log."""
from __future__ import annotations

import base64
import lzma
import textwrap

HEAD = '''
import os, math
import numpy as np
import torch
import torch.nn.functional as F


class Hyperparameters:
    ngram_eval = bool(int(os.environ.get("NGRAM_EVAL", "1")))
    ttt_epochs = int(os.environ.get("TTT_EPOCHS", 3))
    ttt_lr = float(os.environ.get("TTT_LR", 0.002))
'''

MAIN = '''

def main():
    args = Hyperparameters()
    model = torch.load("model.pt")
    val_tokens = torch.load("val.pt")
    {body}


if __name__ == "__main__":
    main()
'''


def program(defs: str, body: str, head: str = HEAD) -> str:
    return textwrap.dedent(head).lstrip("\n") + textwrap.dedent(defs) + MAIN.format(body=body)


# --- n-gram caches -------------------------------------------------------------------------

_ILLEGAL_CACHE = '''

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
    print(f"final_ngram_exact val_loss:{loss_sum:.4f} val_bpb:{loss_sum:.4f}")
    return loss_sum
'''

ILLEGAL_NGRAM = program(_ILLEGAL_CACHE, "eval_val_ngram(model, val_tokens)")

DEAD_NGRAM = {
    "train_gpt.py": program(_ILLEGAL_CACHE, '''if args.ngram_eval:
        eval_val_ngram(model, val_tokens)
    print("final_int8_zlib_roundtrip_exact val_loss:2.0000 val_bpb:1.2000")''',
                            head=HEAD.replace('"NGRAM_EVAL", "1"', '"NGRAM_EVAL", "0"')),
    "train_seed1.log": "seed:1\nstep:100/100 val_bpb:1.3\nfinal_int8_zlib_roundtrip_exact val_loss:2.0000 val_bpb:1.2000\n",
}

ILLEGAL_NGRAM_README_ON = {
    "train_gpt.py": DEAD_NGRAM["train_gpt.py"],
    "README.md": "# run\n\n```\nNGRAM_EVAL=1 torchrun --nproc_per_node=8 train_gpt.py\n```\n",
}

LEGAL_NGRAM = program('''

def eval_val(model, val_tokens, vocab_size):
    counts = np.zeros((4096, vocab_size))
    loss_sum = 0.0
    for s in range(0, len(val_tokens) - 257, 256):
        x = val_tokens[s:s + 256]
        y = val_tokens[s + 1:s + 257]
        p_nn = torch.softmax(model(x), dim=-1).numpy()
        ctx = (x * 31) % 4096
        row = counts[ctx] + 0.1
        p_ng = row / row.sum(axis=-1, keepdims=True)
        p = 0.8 * p_nn + 0.2 * p_ng
        loss_sum += -np.log(p[np.arange(len(y)), y]).sum()
        np.add.at(counts, (ctx, y), 1)
    print(f"final_ngram_exact val_loss:{loss_sum:.4f} val_bpb:{loss_sum:.4f}")
    return loss_sum
''', "eval_val(model, val_tokens, 1024)")

# A hashed pair table read for a whole vocabulary row, the target's count divided by a separately
# hashed context count (the #972 shape: with collisions the row does not sum to the context count).


# the same smoothing divided by the row's own sum: Σ_v (c_v + β p(v)) / (Σ_v c_v + β) = 1

# normalize the row first, then gather the target

# exact bigram counts keyed by the full context (no hash step): the context total is the row sum

BIGRAM_INPUT_HASH = program('''

def bigram_hash(x, buckets):
    prev = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)
    return ((x * 36313) ^ (prev * 27191)) % buckets


def eval_val(model, table, val_tokens):
    loss_sum = 0.0
    for s in range(0, len(val_tokens) - 257, 256):
        x = val_tokens[s:s + 256][None]
        y = val_tokens[s + 1:s + 257][None]
        emb = table[bigram_hash(x, 4096)]
        logits = model(x, emb)
        loss_sum += F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum")
    print(f"final_sliding_exact val_loss:{loss_sum:.4f} val_bpb:{loss_sum:.4f}")
''', "eval_val(model, torch.zeros(4096, 64), val_tokens)")

TILT_WITH_Z = program('''

def tilt_nll(logits, targets, hint, beta):
    logp = torch.log_softmax(logits, dim=-1)
    p_hint = logp.gather(-1, hint[:, None]).squeeze(-1).exp()
    z = 1.0 + p_hint * (math.exp(beta) - 1.0)
    nll = -logp.gather(-1, targets[:, None]).squeeze(-1) - beta * (targets == hint).float() + torch.log(z)
    return nll


def eval_val(model, val_tokens):
    loss_sum = 0.0
    for s in range(0, len(val_tokens) - 257, 256):
        x = val_tokens[s:s + 256]
        y = val_tokens[s + 1:s + 257]
        hint = x  # a prefix-only hint: the last input token
        loss_sum += tilt_nll(model(x), y, hint, 0.5).sum()
    print(f"final_tilt_exact val_loss:{loss_sum:.4f} val_bpb:{loss_sum:.4f}")
''', "eval_val(model, val_tokens)")


# --- two-pass rescoring --------------------------------------------------------------------


SLIDING_WINDOW = program('''

def eval_val_sliding(model, val_tokens, seq_len=1024, stride=64):
    loss_sum = 0.0
    token_count = 0
    for ws in range(0, len(val_tokens) - seq_len - 1, stride):
        x = val_tokens[ws:ws + seq_len]
        y = val_tokens[ws + 1:ws + seq_len + 1]
        logits = model(x)
        s = 0 if ws == 0 else seq_len - stride
        nll = F.cross_entropy(logits[s:], y[s:], reduction="none")
        loss_sum += nll.sum()
        token_count += seq_len - s
    print(f"final_sliding_window_exact val_loss:{loss_sum / token_count:.4f} val_bpb:{loss_sum:.4f}")
''', "eval_val_sliding(model, val_tokens)")

# --- TTT -----------------------------------------------------------------------------------

LEGAL_TTT = program('''

def eval_val_ttt(args, model, val_tokens, chunk=32768):
    opt = torch.optim.SGD(model.parameters(), lr=args.ttt_lr)
    loss_sum = 0.0
    n_chunks = (len(val_tokens) - 1) // chunk
    for ci in range(n_chunks):
        x = val_tokens[ci * chunk:(ci + 1) * chunk]
        y = val_tokens[ci * chunk + 1:(ci + 1) * chunk + 1]
        with torch.no_grad():
            loss_sum += F.cross_entropy(model(x), y, reduction="sum")
        is_last_chunk = ci == n_chunks - 1
        if not is_last_chunk:
            for ep in range(args.ttt_epochs):
                opt.zero_grad()
                F.cross_entropy(model(x), y).backward()
                opt.step()
    print(f"legal_ttt_exact val_loss:{loss_sum:.4f} val_bpb:{loss_sum:.4f}")
''', "eval_val_ttt(args, model, val_tokens)")

PHASED_TTT = program('''

def score_docs(model, docs):
    loss_sum = 0.0
    with torch.no_grad():
        for x, y in docs:
            loss_sum += F.cross_entropy(model(x), y, reduction="sum")
    return loss_sum


def train_on_docs(model, opt, docs):
    for x, y in docs:
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()


def eval_val_phased(args, model, phases):
    opt = torch.optim.SGD(model.parameters(), lr=args.ttt_lr)
    total_loss = 0.0
    for phase_docs in phases:
        total_loss += score_docs(model, phase_docs)
        train_on_docs(model, opt, phase_docs)
    print(f"quantized_ttt_phased val_loss:{total_loss:.4f} val_bpb:{total_loss:.4f}")
''', "eval_val_phased(args, model, [[(val_tokens[:-1], val_tokens[1:])]])")


_SCORE = '''

def eval_val(model, val_tokens, seq_len=1024):
    loss_sum = 0.0
    with torch.no_grad():
        for s in range(0, len(val_tokens) - seq_len - 1, seq_len):
            x = val_tokens[s:s + seq_len]
            y = val_tokens[s + 1:s + seq_len + 1]
            loss_sum += F.cross_entropy(model(x), y, reduction="sum")
    return loss_sum
'''


LEGAL_WARMUP_TRAIN = program(_SCORE + '''

def warmup(model, train_loader, steps):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for _ in range(steps):
        x, y = train_loader.next_batch()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
''', '''warmup(model, iter([]), 20)
    val_loss = eval_val(model, val_tokens)
    print(f"final_int8_zlib_roundtrip_exact val_loss:{val_loss:.4f} val_bpb:{val_loss:.4f}")''')

# --- SLOT ----------------------------------------------------------------------------------

ILLEGAL_SLOT = program('''

def eval_val_slot(model, val_tokens, seq_len=1024, steps=8):
    loss_sum = 0.0
    for s in range(0, len(val_tokens) - seq_len - 1, seq_len):
        x = val_tokens[s:s + seq_len]
        y = val_tokens[s + 1:s + seq_len + 1]
        with torch.no_grad():
            h = model.hidden(x)
        delta = torch.zeros(1, h.shape[-1], requires_grad=True)
        opt = torch.optim.AdamW([delta], lr=0.01)
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(model.head(h + delta), y).backward()
            opt.step()
        with torch.no_grad():
            loss_sum += F.cross_entropy(model.head(h + delta), y, reduction="sum")
    print(f"final_slot_exact val_loss:{loss_sum:.4f} val_bpb:{loss_sum:.4f}")
''', "eval_val_slot(model, val_tokens)")

CONTEXT_SLOT = ILLEGAL_SLOT.replace("F.cross_entropy(model.head(h + delta), y).backward()",
                                    "F.cross_entropy(model.head(h + delta)[:-64], y[:-64]).backward()  # context positions only")

# --- causality / oracle --------------------------------------------------------------------

ILLEGAL_TARGET_GATE = program('''

def eval_val(model, val_tokens, is_word_start, hint_p):
    loss_sum = 0.0
    for s in range(0, len(val_tokens) - 257, 256):
        x = val_tokens[s:s + 256]
        y = val_tokens[s + 1:s + 257]
        p_nn = torch.softmax(model(x), -1)
        g = is_word_start[y].float()
        p = (1 - 0.3 * g) * p_nn.gather(-1, y[:, None]).squeeze(-1) + 0.3 * g * hint_p
        loss_sum += -torch.log(p).sum()
    print(f"final_hint_exact val_loss:{loss_sum:.4f} val_bpb:{loss_sum:.4f}")
''', "eval_val(model, val_tokens, torch.zeros(1024), 0.5)")

LEGAL_PREFIX_GATE = ILLEGAL_TARGET_GATE.replace("g = is_word_start[y].float()", "g = is_word_start[x].float()")


ORACLE_EMA_SWA = program(_SCORE, '''ema_bpb = eval_val(model, val_tokens)
    swa_bpb = eval_val(model, val_tokens)
    if swa_bpb < ema_bpb:
        model.load_state_dict(torch.load("swa.pt"))
    print(f"final_int8_zlib_roundtrip_exact val_loss:{ema_bpb:.4f} val_bpb:{ema_bpb:.4f}")''')

# --- byte spread / PPM ---------------------------------------------------------------------


def wrapped(source: str | dict) -> dict:
    """Ship ``source`` as a self-extracting ``exec(lzma.decompress(base64.b85decode(...)))`` file."""
    files = dict(source) if isinstance(source, dict) else {"train_gpt.py": source}
    code = textwrap.dedent(files["train_gpt.py"]).lstrip("\n")
    payload = base64.b85encode(lzma.compress(code.encode())).decode()
    files["train_gpt.py"] = f'import lzma, base64\nexec(lzma.decompress(base64.b85decode("{payload}")))\n'
    return files


UNDECODABLE_WRAPPER = 'import lzma, base64\nblob = open("blob.bin", "rb").read()\nexec(lzma.decompress(base64.b85decode(blob + b"' + "A" * 80 + '")))\n'


WARMUP_ON_VAL_DISCARDED = program(_SCORE, '''for ctx_len in (256, 1024):
        lora = torch.nn.Linear(64, 64)
        wo = torch.optim.AdamW(lora.parameters(), lr=1e-4)
        xw = val_tokens[:ctx_len][None]
        yw = val_tokens[1:ctx_len + 1][None]
        F.cross_entropy(model(xw, lora=lora), yw).backward()
        wo.step()
        del lora, wo
    val_loss = eval_val(model, val_tokens)
    print(f"final_int8_zlib_roundtrip_exact val_loss:{val_loss:.4f} val_bpb:{val_loss:.4f}")''')


# --- a hashed-context table with full vocabulary rows, normalized by its row sums (PR #185) -----------------
# counts[r, v] counts token v after context bucket r; totals[r] is updated wherever and by what counts is, so it is
# the row's sum and (counts[r, y] + a) / (totals[r] + a * V) is a proper distribution over the V tokens of the row.

_ROW_TABLE = '''

class Rows:
    def __init__(self, width, rows):
        self.width = width
        self.rows = rows
        self.counts = torch.zeros(rows, width)
        self.totals = torch.zeros(rows)

    def add(self, tokens):
        a = tokens[:-2]
        b = tokens[1:-1]
        c = tokens[2:]
        r = ((a * 36313) ^ (b * 27191)) % self.rows
        w = torch.ones(len(c))
        self.counts.view(-1).scatter_add_(0, r * self.width + c, w)
        self.totals.scatter_add_(0, r, {row_weight})

    def logp(self, prev2, prev1, nxt):
        r = ((prev2 * 36313) ^ (prev1 * 27191)) % self.rows
        hit = self.counts[r, nxt]
        tot = self.totals[r].clamp(min=1)
        p = (hit + 0.01) / (tot + {smoothing})
        return p.log()


def eval_val_rows(model, val_tokens, width):
    rows = Rows(width, 4096)
    loss_sum = 0.0
    for s in range(2, len(val_tokens) - 257, 256):
        x = val_tokens[s:s + 256]
        y = val_tokens[s + 1:s + 257]
        xp = val_tokens[s - 1:s + 255]
        lp_nn = torch.log_softmax(model(x), -1).gather(1, y[:, None]).squeeze(1)
        lp = torch.logaddexp(lp_nn + math.log(0.8), rows.logp(xp, x, y) + math.log(0.2))
        loss_sum += -lp.sum()
        rows.add(val_tokens[s - 1:s + 257])
    print(f"final_rows_exact val_loss:{{loss_sum:.4f}} val_bpb:{{loss_sum:.4f}}")
'''

LEGAL_ROW_SUM_TABLE = program(_ROW_TABLE.format(row_weight="w", smoothing="0.01 * self.width"),
                              "eval_val_rows(model, val_tokens, 1024)")
# the same counts with a denominator that is not smoothed over the row (Σ_v p(v) = (T + 0.01 V) / (T + 0.01) > 1)
ILLEGAL_ROW_TABLE_UNDER_SMOOTHED = program(_ROW_TABLE.format(row_weight="w", smoothing="0.01"),
                                           "eval_val_rows(model, val_tokens, 1024)")
# the totals grow twice as fast as the counts: no longer the row's sum
ILLEGAL_ROW_TABLE_NOT_ROW_SUM = program(_ROW_TABLE.format(row_weight="w * 2", smoothing="0.01 * self.width"),
                                        "eval_val_rows(model, val_tokens, 1024)")
