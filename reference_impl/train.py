"""Training run in the record format: env-configured, torchrun/DDP (gloo on CPU, nccl on GPU),
a wall-clock cap that excludes warm-up and validation, a time-based warm-down, the int8/int6
artifact and the score of its decompressed round trip. Log lines follow records.md §3.2."""
from __future__ import annotations

import copy
import inspect
import math
import os
import platform
import sys
import time
import uuid

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from reference_impl.artifact import SIZE_LIMIT, format_tag, load_artifact, save_artifact
from reference_impl.bpb import bpb_of_stream, eval_nonoverlapping, eval_sliding, usable_val_tokens
from reference_impl.data import byte_tables, load_sentencepiece, load_tokens, read_shard, shard_files
from reference_impl.model import GPT, GPTConfig, is_control_param, to_bf16_body
from reference_impl.muon import Muon, compile_newton_schulz


def _env(name: str, default, cast=None):
    cast = cast or type(default)
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return cast(raw)


class Hyperparameters:
    """Every setting comes from an environment variable of the same name (upper case)."""

    def __init__(self):
        self.data_path = _env("DATA_PATH", "./data/datasets/fineweb10B_sp1024")
        self.tokenizer_path = _env("TOKENIZER_PATH", "./data/tokenizers/fineweb_1024_bpe.model")
        self.run_id = _env("RUN_ID", "") or str(uuid.uuid4())
        self.seed = _env("SEED", 1337)
        self.vocab_size = _env("VOCAB_SIZE", 1024)
        self.num_layers = _env("NUM_LAYERS", 9)
        self.model_dim = _env("MODEL_DIM", 512)
        self.num_heads = _env("NUM_HEADS", 8)
        self.num_kv_heads = _env("NUM_KV_HEADS", 4)
        self.mlp_mult = _env("MLP_MULT", 2)
        self.rope_base = _env("ROPE_BASE", 10000.0)
        self.logit_softcap = _env("LOGIT_SOFTCAP", 30.0)
        self.qk_gain_init = _env("QK_GAIN_INIT", 1.5)
        self.unet_skips = _env("UNET_SKIPS", 1)
        self.resid_mix = _env("RESID_MIX", 1)
        self.tied_embed_init_std = _env("TIED_EMBED_INIT_STD", 0.005)
        self.mlp_neg_slope = _env("MLP_NEG_SLOPE", 0.0)
        self.qat_bits = _env("QAT_BITS", 0)
        self.ema_decay = _env("EMA_DECAY", 0.0)
        self.iterations = _env("ITERATIONS", 20000)
        self.warmup_steps = _env("WARMUP_STEPS", 20)
        self.warmdown_iters = _env("WARMDOWN_ITERS", 1200)
        self.max_wallclock_seconds = _env("MAX_WALLCLOCK_SECONDS", 600.0)
        self.val_loss_every = _env("VAL_LOSS_EVERY", 1000)
        self.train_log_every = _env("TRAIN_LOG_EVERY", 200)
        self.train_batch_tokens = _env("TRAIN_BATCH_TOKENS", 524288)
        self.train_seq_len = _env("TRAIN_SEQ_LEN", 1024)
        self.grad_accum_steps = _env("GRAD_ACCUM_STEPS", 0)  # 0: 8 // world_size
        self.val_batch_size = _env("VAL_BATCH_SIZE", 524288)
        self.val_max_tokens = _env("VAL_MAX_TOKENS", 0)  # 0: the whole split
        self.eval_stride = _env("EVAL_STRIDE", 0)  # >0: also a sliding-window score (the final one)
        self.matrix_lr = _env("MATRIX_LR", 0.04)
        self.embed_lr = _env("EMBED_LR", 0.05)
        self.scalar_lr = _env("SCALAR_LR", 0.04)
        self.muon_momentum = _env("MUON_MOMENTUM", 0.95)
        self.muon_momentum_warmup_start = _env("MUON_MOMENTUM_WARMUP_START", 0.85)
        self.muon_momentum_warmup_steps = _env("MUON_MOMENTUM_WARMUP_STEPS", 500)
        self.muon_backend_steps = _env("MUON_BACKEND_STEPS", 5)
        self.muon_ns_bf16 = _env("MUON_NS_BF16", 1)
        self.beta1 = _env("BETA1", 0.9)
        self.beta2 = _env("BETA2", 0.95)
        self.adam_eps = _env("ADAM_EPS", 1e-8)
        self.grad_clip_norm = _env("GRAD_CLIP_NORM", 0.0)
        self.quant_bits = _env("QUANT_BITS", 8)
        self.compressor = _env("COMPRESSOR", "zlib")
        self.quant_min_numel = _env("QUANT_MIN_NUMEL", 65536)
        self.quant_min_clip = _env("QUANT_MIN_CLIP", 1.0)
        self.quant_fp16_embed = _env("QUANT_FP16_EMBED", 0)
        self.quant_int6_pack = _env("QUANT_INT6_PACK", 1)
        self.compile = _env("COMPILE", -1)  # -1: on for CUDA, off on CPU
        self.bf16_body = _env("BF16_BODY", -1)  # -1: on for CUDA, off on CPU

    def model_config(self) -> GPTConfig:
        return GPTConfig(self.vocab_size, self.num_layers, self.model_dim, self.num_heads, self.num_kv_heads,
                         self.mlp_mult, self.rope_base, self.logit_softcap, self.qk_gain_init, bool(self.unet_skips),
                         bool(self.resid_mix), self.tied_embed_init_std, self.mlp_neg_slope, self.qat_bits)


class TokenStream:
    """Reads the train shards in order, wrapping around; each call hands every rank a disjoint
    contiguous slice of one global chunk (plus one token for the shifted targets)."""

    def __init__(self, pattern: str):
        self.files = shard_files(pattern)
        self.file_idx, self.pos = 0, 0
        self.tokens = read_shard(self.files[0])

    def take(self, n: int) -> np.ndarray:
        parts = []
        while n > 0:
            if self.pos >= self.tokens.size:
                self.file_idx = (self.file_idx + 1) % len(self.files)
                self.tokens, self.pos = read_shard(self.files[self.file_idx]), 0
            k = min(n, self.tokens.size - self.pos)
            parts.append(self.tokens[self.pos:self.pos + k])
            self.pos, n = self.pos + k, n - k
        return np.concatenate(parts)

    def next_batch(self, local_tokens: int, seq_len: int, rank: int, world: int, device):
        chunk = self.take((local_tokens + 1) * world)
        mine = torch.as_tensor(chunk[rank * (local_tokens + 1):(rank + 1) * (local_tokens + 1)], dtype=torch.int64)
        x, y = mine[:-1].view(-1, seq_len), mine[1:].view(-1, seq_len)
        return x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def build_optimizers(model: GPT, args: Hyperparameters) -> list[torch.optim.Optimizer]:
    """The official split: the tied embedding on Adam (EMBED_LR), block matrices on Muon
    (MATRIX_LR), every gain, mix and skip weight on Adam (SCALAR_LR)."""
    named = list(model.blocks.named_parameters())
    matrices = [p for n, p in named if not is_control_param(n, p)]
    scalars = [p for n, p in named if is_control_param(n, p)]
    if model.skip_weights is not None:
        scalars.append(model.skip_weights)
    adam = dict(betas=(args.beta1, args.beta2), eps=args.adam_eps, fused=model.wte.weight.is_cuda)
    ns_dtype = torch.bfloat16 if args.muon_ns_bf16 else torch.float32
    opts: list[torch.optim.Optimizer] = [
        torch.optim.Adam([{"params": [model.wte.weight], "lr": args.embed_lr, "base_lr": args.embed_lr}], **adam),
        Muon(matrices, lr=args.matrix_lr, momentum=args.muon_momentum, ns_steps=args.muon_backend_steps, ns_dtype=ns_dtype),
    ]
    for g in opts[1].param_groups:
        g["base_lr"] = args.matrix_lr
    if scalars:
        opts.append(torch.optim.Adam([{"params": scalars, "lr": args.scalar_lr, "base_lr": args.scalar_lr}], **adam))
    return opts


def muon_momentum(step: int, args: Hyperparameters) -> float:
    """Linear warm-up from MUON_MOMENTUM_WARMUP_START to MUON_MOMENTUM over the first steps: early
    gradients are noisy, and high momentum carries that noise for tens of steps."""
    n = args.muon_momentum_warmup_steps
    frac = min(step / n, 1.0) if n > 0 else 1.0
    return (1 - frac) * args.muon_momentum_warmup_start + frac * args.muon_momentum


def set_schedule(optimizers: list[torch.optim.Optimizer], step: int, lr_mult: float, args: Hyperparameters) -> None:
    for opt in optimizers:
        for g in opt.param_groups:
            g["lr"] = g["base_lr"] * lr_mult
            if isinstance(opt, Muon):
                g["momentum"] = muon_momentum(step, args)


def lr_multiplier(step: int, elapsed_ms: float, args: Hyperparameters) -> float:
    """1 until the warm-down, then linear to 0. With a wall-clock cap the warm-down is measured
    in time only (as the official script does): WARMDOWN_ITERS times the average step time so far,
    ending at the cap; ITERATIONS then only stops the run."""
    if args.warmdown_iters <= 0:
        return 1.0
    if args.max_wallclock_seconds <= 0:
        start = max(args.iterations - args.warmdown_iters, 0)
        return 1.0 if step < start else max(args.iterations - step, 0) / args.warmdown_iters
    step_ms = elapsed_ms / max(step, 1)
    warmdown_ms = args.warmdown_iters * step_ms
    remaining_ms = max(args.max_wallclock_seconds * 1000.0 - elapsed_ms, 0.0)
    return remaining_ms / max(warmdown_ms, 1e-9) if remaining_ms <= warmdown_ms else 1.0


def unigram_bpb(train_pattern: str, val_tokens: np.ndarray, tables, vocab_size: int) -> float:
    """A model-free yardstick: add-one-smoothed train-split token frequencies (first shard: 1e8
    tokens on FineWeb are plenty), scored on val."""
    counts = np.ones(vocab_size, dtype=np.float64)
    for f in shard_files(train_pattern)[:1]:
        counts += np.bincount(read_shard(f), minlength=vocab_size)[:vocab_size]
    logp = np.log(counts / counts.sum())
    nll = -logp[val_tokens[1:]]
    return bpb_of_stream(nll, val_tokens[:-1], val_tokens[1:], tables)[1]


def code_file() -> str:
    return os.path.abspath(__file__)


def main() -> None:
    args = Hyperparameters()
    distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    rank = int(os.environ.get("RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if distributed:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    master = rank == 0
    grad_accum = args.grad_accum_steps or max(1, 8 // world)
    if args.train_batch_tokens % (world * grad_accum * args.train_seq_len):
        raise ValueError("TRAIN_BATCH_TOKENS must divide by world_size * grad_accum_steps * TRAIN_SEQ_LEN")
    local_tokens = args.train_batch_tokens // (world * grad_accum)

    logfile = None
    if master:
        os.makedirs("logs", exist_ok=True)
        logfile = f"logs/{args.run_id}.txt"
        print(logfile)

    def log0(msg: str, console: bool = True) -> None:
        if not master:
            return
        if console:
            print(msg, flush=True)
        with open(logfile, "a", encoding="utf-8") as f:
            print(msg, file=f)

    code = open(code_file(), "rb").read()
    log0("=" * 100, console=False)
    log0(f"Running Python {platform.python_version()}", console=False)
    log0(f"Running PyTorch {torch.__version__}", console=False)
    log0("=" * 100, console=False)
    log0("Hyperparameters:")
    for k, v in vars(args).items():
        log0(f"  {k}: {v}")

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    sp = load_sentencepiece(args.tokenizer_path)
    if sp.get_piece_size() != args.vocab_size:
        raise ValueError(f"VOCAB_SIZE={args.vocab_size} but {args.tokenizer_path} has {sp.get_piece_size()} pieces")
    tables = byte_tables(sp, args.vocab_size)
    train_pattern = os.path.join(args.data_path, "fineweb_train_*.bin")
    val_pattern = os.path.join(args.data_path, "fineweb_val_*.bin")
    val_tokens = load_tokens(val_pattern, args.val_max_tokens)
    val_tokens = val_tokens[: usable_val_tokens(len(val_tokens), args.train_seq_len)]
    log0(f"val_bpb:enabled tokenizer_kind=sentencepiece tokenizer_path={args.tokenizer_path}")
    log0(f"train_loader:dataset:{os.path.basename(os.path.normpath(args.data_path))} train_shards:{len(shard_files(train_pattern))}")
    log0(f"val_loader:shards pattern={val_pattern} tokens:{len(val_tokens) - 1}")
    if master:
        log0(f"unigram_bpb:{unigram_bpb(train_pattern, val_tokens, tables, args.vocab_size):.4f}")

    if device.type == "cuda":
        # The official script's fast-math settings: TF32 matmuls, flash SDPA (math stays as a fallback).
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cuda.enable_cudnn_sdp(False)
        torch.backends.cuda.enable_flash_sdp(True)
        torch.backends.cuda.enable_mem_efficient_sdp(False)
    base_model = GPT(args.model_config()).to(device)
    bf16 = args.bf16_body if args.bf16_body >= 0 else int(device.type == "cuda")
    if bf16:
        to_bf16_body(base_model)
    log0(f"model_params:{base_model.num_params()}")
    log0(f"world_size:{world} grad_accum_steps:{grad_accum}")
    log0(f"train_batch_tokens:{args.train_batch_tokens} train_seq_len:{args.train_seq_len} iterations:{args.iterations} "
         f"warmup_steps:{args.warmup_steps} max_wallclock_seconds:{args.max_wallclock_seconds:.3f}")
    log0(f"seed:{args.seed}")

    use_compile = args.compile if args.compile >= 0 else int(device.type == "cuda")
    fwd_model = torch.compile(base_model, dynamic=False, fullgraph=True) if use_compile else base_model
    if use_compile:
        compile_newton_schulz()
    # No buffer sync on every forward (the official script's broadcast_buffers=False; newer torch
    # names it forward_sync_buffers): the only buffers are RoPE frequencies, equal on every rank.
    no_sync = "forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(DDP.__init__).parameters \
        else "broadcast_buffers"
    model = DDP(fwd_model, device_ids=[local_rank] if device.type == "cuda" else None, **{no_sync: False}) \
        if distributed else fwd_model
    optimizers = build_optimizers(base_model, args)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def train_step(stream: TokenStream, step: int, lr_mult: float) -> torch.Tensor:
        # The loss stays on the device: a .item() per micro-step would stall the GPU queue.
        total = torch.zeros((), device=device)
        for micro in range(grad_accum):
            x, y = stream.next_batch(local_tokens, args.train_seq_len, rank, world, device)
            if distributed:
                model.require_backward_grad_sync = micro == grad_accum - 1
            with autocast:
                loss = model(x, y)
            (loss / grad_accum).backward()
            total += loss.detach() / grad_accum
        if args.grad_clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(base_model.parameters(), args.grad_clip_norm)
        set_schedule(optimizers, step, lr_mult, args)
        for opt in optimizers:
            opt.step()
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        return total

    # Warm-up primes compilation and kernels; it is outside the clock and its effect is undone.
    if args.warmup_steps > 0:
        saved_model = copy.deepcopy(base_model.state_dict())
        saved_opts = [copy.deepcopy(o.state_dict()) for o in optimizers]
        stream = TokenStream(train_pattern)
        for i in range(args.warmup_steps):
            train_step(stream, 0, 1.0)
            log0(f"warmup_step:{i + 1}/{args.warmup_steps}")
        base_model.load_state_dict(saved_model)
        for o, s in zip(optimizers, saved_opts):
            o.load_state_dict(s)

    def logits_fn(x: torch.Tensor) -> torch.Tensor:
        with autocast:
            return fwd_model(x)

    def evaluate() -> tuple[float, float]:
        base_model.eval()
        out = eval_nonoverlapping(logits_fn, val_tokens, tables, args.train_seq_len,
                                  args.val_batch_size // (world * grad_accum), device, rank, world)
        base_model.train()
        return out

    # EMA of the weights, used for the artifact (2026-03-20_11L_XSA4_EMA_Int6_MLP3x_WD04_1.1271: decay 0.997).
    ema = [p.detach().float().clone() for p in base_model.parameters()] if args.ema_decay > 0 else None

    stream = TokenStream(train_pattern)
    cap_ms = args.max_wallclock_seconds * 1000.0
    train_ms, step, stop_after = 0.0, 0, None
    sync()
    t0 = time.perf_counter()
    while True:
        last = step == args.iterations or (stop_after is not None and step >= stop_after)
        if last or (args.val_loss_every > 0 and step % args.val_loss_every == 0):
            sync()
            train_ms += 1000.0 * (time.perf_counter() - t0)
            val_loss, val_bpb = evaluate()
            log0(f"step:{step}/{args.iterations} val_loss:{val_loss:.4f} val_bpb:{val_bpb:.4f} "
                 f"train_time:{train_ms:.0f}ms step_avg:{train_ms / max(step, 1):.2f}ms")
            sync()
            t0 = time.perf_counter()
        if last:
            if stop_after is not None and step < args.iterations:
                log0(f"stopping_early: wallclock_cap train_time:{train_ms:.0f}ms step:{step}/{args.iterations}")
            break
        elapsed = train_ms + 1000.0 * (time.perf_counter() - t0)
        train_loss = train_step(stream, step, lr_multiplier(step, elapsed, args))
        if ema is not None:
            with torch.no_grad():
                torch._foreach_lerp_(ema, [p.detach().float() for p in base_model.parameters()], 1.0 - args.ema_decay)
        step += 1
        logging = args.train_log_every > 0 and (step <= 10 or step % args.train_log_every == 0)
        if cap_ms > 0 or logging:
            sync()  # the clock must include the queued GPU work of this step
        elapsed = train_ms + 1000.0 * (time.perf_counter() - t0)
        if logging:
            log0(f"step:{step}/{args.iterations} train_loss:{train_loss.item():.4f} train_time:{elapsed:.0f}ms "
                 f"step_avg:{elapsed / step:.2f}ms")
        if cap_ms > 0 and stop_after is None:
            reached = torch.tensor(int(elapsed >= cap_ms), device=device)
            if distributed:
                dist.all_reduce(reached, op=dist.ReduceOp.MAX)
            if reached.item():
                stop_after = step

    if device.type == "cuda":
        log0(f"peak memory allocated: {torch.cuda.max_memory_allocated() // 2**20} MiB "
             f"reserved: {torch.cuda.max_memory_reserved() // 2**20} MiB")

    if ema is not None:
        with torch.no_grad():
            for p, e in zip(base_model.parameters(), ema):
                p.copy_(e.to(p.dtype))
        ema_loss, ema_bpb = evaluate()
        log0(f"ema:applied decay:{args.ema_decay} val_loss:{ema_loss:.4f} val_bpb:{ema_bpb:.4f}")

    tag = format_tag(args.quant_bits, args.compressor)
    artifact_path = f"final_model.int{args.quant_bits}.ptz"
    if master:
        torch.save(base_model.state_dict(), "final_model.pt")
        raw_bytes = os.path.getsize("final_model.pt")
        log0(f"Serialized model: {raw_bytes} bytes")
        log0(f"Code size: {len(code)} bytes")
        log0(f"Total submission size: {raw_bytes + len(code)} bytes")
        model_bytes = save_artifact(base_model.state_dict(), artifact_path, args.quant_bits, args.compressor, args.quant_min_numel,
                                    args.quant_min_clip, ("wte.weight",) if args.quant_fp16_embed else (),
                                    bool(args.quant_int6_pack))
        total = model_bytes + len(code)
        log0(f"Serialized model {tag}: {model_bytes} bytes")
        log0(f"Total submission size {tag}: {total} bytes")
        if total > SIZE_LIMIT:
            log0(f"WARNING: total submission size {total} bytes exceeds the {SIZE_LIMIT}-byte cap")
    if distributed:
        dist.barrier()

    # The score is the score of the stored artifact: decompress, dequantise, load, evaluate.
    base_model.load_state_dict(load_artifact(artifact_path, args.compressor))
    label = f"final_int{args.quant_bits}_{args.compressor}_roundtrip"
    t_eval = time.perf_counter()
    q_loss, q_bpb = evaluate()
    eval_ms = 1000.0 * (time.perf_counter() - t_eval)
    log0(f"{label} val_loss:{q_loss:.4f} val_bpb:{q_bpb:.4f} eval_time:{eval_ms:.0f}ms")
    log0(f"{label}_exact val_loss:{q_loss:.8f} val_bpb:{q_bpb:.8f}")
    if args.eval_stride > 0:
        base_model.eval()
        t_eval = time.perf_counter()
        s_loss, s_bpb = eval_sliding(logits_fn, val_tokens, tables, args.train_seq_len, args.eval_stride,
                                     max(1, args.val_batch_size // (world * grad_accum * args.train_seq_len)), device, rank, world)
        eval_ms = 1000.0 * (time.perf_counter() - t_eval)
        label = f"final_int{args.quant_bits}_sliding_window"
        log0(f"{label} val_loss:{s_loss:.4f} val_bpb:{s_bpb:.4f} stride:{args.eval_stride} eval_time:{eval_ms:.0f}ms")
        log0(f"{label}_exact val_loss:{s_loss:.8f} val_bpb:{s_bpb:.8f}")
    if distributed:
        # Every rank reaches the same point before the group goes away: a rank that tears down
        # while its peer still holds a gloo connection can abort at exit ("terminate called
        # without an active exception"), and torchrun then fails the whole run.
        dist.barrier()
        dist.destroy_process_group()
