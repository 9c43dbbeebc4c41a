"""`pgolf eval`: score a stored artifact on the val split — non-overlapping windows, sliding
windows, or the model mixed with the legal n-gram cache — with the exact byte accounting."""
from __future__ import annotations

import os
import re
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from reference_impl.artifact import load_artifact
from reference_impl.bpb import bpb_of_stream, eval_nonoverlapping, eval_sliding, usable_val_tokens
from reference_impl.data import byte_tables, load_sentencepiece, load_tokens
from reference_impl.model import GPT
from reference_impl.ngram import NgramConfig, score_tokens
from reference_impl.train import Hyperparameters

DUMP_RE = re.compile(r"^  ([a-z0-9_]+): (.*)$", re.M)


class EvalError(RuntimeError):
    pass


def settings_from_log(path: Path) -> dict[str, str]:
    """The `Hyperparameters:` dump of a reference log, as env settings."""
    text = path.read_text(encoding="utf-8", errors="replace")
    return {k.upper(): v for k, v in DUMP_RE.findall(text)}


@contextmanager
def _env(settings: dict[str, str]):
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


class WindowModel:
    """A causal LM as an n-gram `logprob_fn`: each target sees up to seq_len tokens before it."""

    def __init__(self, model: GPT, seq_len: int):
        self.model, self.seq_len = model, seq_len

    @torch.no_grad()
    def __call__(self, prefix):
        x = torch.as_tensor(np.asarray(prefix[-self.seq_len:], dtype=np.int64))[None]
        return F.log_softmax(self.model(x)[0, -1].double(), -1).numpy()

    @torch.no_grad()
    def batch(self, tokens, start: int, end: int) -> np.ndarray:
        if end - start > self.seq_len:
            raise ValueError("n-gram chunk must not exceed the model window")
        w = max(0, end - 1 - self.seq_len)
        x = torch.as_tensor(np.asarray(tokens[w:end - 1], dtype=np.int64))[None]
        logp = F.log_softmax(self.model(x)[0].double(), -1)
        return logp[start - w - 1:end - w - 1].numpy()

    @torch.no_grad()
    def target_stats(self, tokens, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """log p(target) and the entropy per target, reduced here so only 2 numbers a token leave the model."""
        if end - start > self.seq_len:
            raise ValueError("n-gram chunk must not exceed the model window")
        w = max(0, end - 1 - self.seq_len)
        x = torch.as_tensor(np.asarray(tokens[w:end - 1], dtype=np.int64))[None]
        logp = F.log_softmax(self.model(x)[0].double(), -1)[start - w - 1:end - w - 1]
        tgt = torch.as_tensor(np.asarray(tokens[start:end], dtype=np.int64))
        ent = -(logp.exp() * logp).sum(-1)
        return logp.gather(1, tgt[:, None])[:, 0].numpy(), ent.numpy()


def run_eval(artifact: Path, data_path: Path, tokenizer_path: Path, log: Path | None, sets: dict[str, str],
             stride: int = 0, ngram: bool = False, ngram_order: int = 4, ngram_chunk: int = 256,
             max_tokens: int = 0, echo=print) -> dict[str, float]:
    settings = settings_from_log(log) if log else {}
    settings.update(sets)
    settings.update(DATA_PATH=str(data_path), TOKENIZER_PATH=str(tokenizer_path))
    with _env(settings):
        args = Hyperparameters()
    try:
        sp = load_sentencepiece(str(tokenizer_path))
        tables = byte_tables(sp, args.vocab_size)
        val = load_tokens(str(Path(data_path) / "fineweb_val_*.bin"), max_tokens or args.val_max_tokens)
        val = val[: usable_val_tokens(len(val), args.train_seq_len)]
        model = GPT(args.model_config())
        model.load_state_dict(load_artifact(str(artifact), args.compressor))
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        raise EvalError(f"{artifact}: {e}") from None
    model.eval()
    out: dict[str, float] = {}
    device = torch.device("cpu")
    t0 = time.perf_counter()
    if stride:
        loss, bpb = eval_sliding(model, val, tables, args.train_seq_len, stride, 8, device)
        label = f"eval_sliding_window stride:{stride}"
    else:
        loss, bpb = eval_nonoverlapping(model, val, tables, args.train_seq_len, args.val_batch_size, device)
        label = "eval_roundtrip"
    echo(f"{label} val_loss:{loss:.8f} val_bpb:{bpb:.8f} eval_time:{(time.perf_counter() - t0) * 1000:.0f}ms")
    out["val_bpb"] = bpb
    if ngram:
        lm = WindowModel(model, args.train_seq_len)
        chunk = min(ngram_chunk, args.train_seq_len)
        for name, lam in (("model_only", 0.0), ("ngram_eval", NgramConfig(args.vocab_size).lam_max)):
            cfg = NgramConfig(args.vocab_size, max_order=ngram_order, chunk_tokens=chunk, lam_max=lam)
            t0 = time.perf_counter()
            nll = score_tokens(val, lm, cfg)
            loss, bpb = bpb_of_stream(nll, val[:-1], val[1:], tables)
            echo(f"{name}_exact val_loss:{loss:.8f} val_bpb:{bpb:.8f} order:{ngram_order} chunk:{chunk} "
                 f"eval_time:{(time.perf_counter() - t0) * 1000:.0f}ms")
            out[f"{name}_bpb"] = bpb
    return out
