"""The reference side of the baseline parity check (benchmarks/parity_baseline.py runs the
official script's model and optimizer next to it; tests/test_reference_parity.py compares it with
golden per-step losses recorded from that benchmark).

A small configuration of the baseline, a synthetic token stream written as shards (a sparse
random Markov chain: learnable, so the loss curve moves), and a training loop built from the same
pieces as train.py (GPT, build_optimizers, set_schedule, lr_multiplier, TokenStream), single
process on CPU, no warm-up, no wall-clock cap.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from reference_impl.data import write_shard

# The official script's env names where they differ: its tied-embedding LR is TIED_EMBED_LR.
SMALL_ENV = {
    "VOCAB_SIZE": "128", "NUM_LAYERS": "4", "MODEL_DIM": "64", "NUM_HEADS": "4", "NUM_KV_HEADS": "2", "MLP_MULT": "2",
    "TRAIN_SEQ_LEN": "64", "TRAIN_BATCH_TOKENS": "2048", "GRAD_ACCUM_STEPS": "2", "ITERATIONS": "50",
    "WARMDOWN_ITERS": "20", "MAX_WALLCLOCK_SECONDS": "0", "MUON_MOMENTUM_WARMUP_STEPS": "30", "SEED": "1337",
    "MATRIX_LR": "0.04", "EMBED_LR": "0.05", "SCALAR_LR": "0.04",
}
STREAM_TOKENS = 200_000
STREAM_SEED = 20240520


def markov_stream(vocab: int, n: int, seed: int = STREAM_SEED) -> np.ndarray:
    """Each token has 4 likely successors (90 %) and otherwise a uniform one."""
    rng = np.random.default_rng(seed)
    succ = rng.integers(0, vocab, (vocab, 4))
    out = np.empty(n, dtype=np.int64)
    out[0] = 1
    pick, noise, uni = rng.integers(0, 4, n), rng.random(n), rng.integers(0, vocab, n)
    for i in range(1, n):
        out[i] = succ[out[i - 1], pick[i]] if noise[i] < 0.9 else uni[i]
    return out


def write_stream(folder: Path, vocab: int) -> str:
    """Two train shards (so the loader crosses a file boundary); returns the train glob."""
    folder.mkdir(parents=True, exist_ok=True)
    toks = markov_stream(vocab, STREAM_TOKENS)
    half = len(toks) // 2
    write_shard(str(folder / "fineweb_train_000000.bin"), toks[:half])
    write_shard(str(folder / "fineweb_train_000001.bin"), toks[half:])
    return str(folder / "fineweb_train_*.bin")


@contextmanager
def env_vars(settings: dict[str, str]):
    old = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def reference_run(train_glob: str, env: dict[str, str], steps: int, bf16: bool = False, init_state: dict | None = None):
    """Per-step training losses of the reference at `env`; returns (losses, final state dict)."""
    from reference_impl.model import GPT, to_bf16_body
    from reference_impl.train import Hyperparameters, TokenStream, build_optimizers, lr_multiplier, set_schedule

    with env_vars(env):
        args = Hyperparameters()
    torch.manual_seed(args.seed)
    model = GPT(args.model_config())
    if bf16:
        to_bf16_body(model)
    if init_state is not None:
        model.load_state_dict(init_state)
    opts = build_optimizers(model, args)
    stream = TokenStream(train_glob)
    accum = args.grad_accum_steps or 1
    local = args.train_batch_tokens // accum
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
    losses = []
    for step in range(steps):
        total = 0.0
        for _ in range(accum):
            x, y = stream.next_batch(local, args.train_seq_len, 0, 1, "cpu")
            with autocast:
                loss = model(x, y)
            (loss / accum).backward()
            total += loss.item() / accum
        set_schedule(opts, step, lr_multiplier(step, 0.0, args), args)
        for o in opts:
            o.step()
        for o in opts:
            o.zero_grad(set_to_none=True)
        losses.append(total)
    return losses, model.state_dict()


# Reference parameter name -> the official script's name for the same tensor.
def official_name(name: str) -> str:
    return (name.replace("wte.", "tok_emb.").replace("attn.c_proj.", "attn.proj.")
            .replace("mlp.c_fc.", "mlp.fc.").replace("mlp.c_proj.", "mlp.proj."))
