"""Training-loop loss weights from hashed training-batch pair counts"""
from __future__ import annotations

import glob
import io
import math
import os
import random
import time
import uuid
import zlib
from pathlib import Path

import numpy as np
import sentencepiece as spm
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel as DDP


# -----------------------------
# HYPERPARAMETERS
# -----------------------------

class Hyperparameters:
    data_path = os.environ.get("DATA_PATH", "./data/datasets/fineweb10B_sp1024")
    train_files = os.path.join(data_path, "fineweb_train_*.bin")
    val_files = os.path.join(data_path, "fineweb_val_*.bin")
    tokenizer_path = os.environ.get("TOKENIZER_PATH", "./data/tokenizers/fineweb_1024_bpe.model")
    run_id = os.environ.get("RUN_ID", str(uuid.uuid4()))
    seed = int(os.environ.get("SEED", 1337))
    val_batch_size = int(os.environ.get("VAL_BATCH_SIZE", 524_288))
    val_loss_every = int(os.environ.get("VAL_LOSS_EVERY", 1000))
    train_log_every = int(os.environ.get("TRAIN_LOG_EVERY", 200))
    iterations = int(os.environ.get("ITERATIONS", 20000))
    warmdown_iters = int(os.environ.get("WARMDOWN_ITERS", 1200))
    train_batch_tokens = int(os.environ.get("TRAIN_BATCH_TOKENS", 524_288))
    train_seq_len = int(os.environ.get("TRAIN_SEQ_LEN", 1024))
    max_wallclock_seconds = float(os.environ.get("MAX_WALLCLOCK_SECONDS", 600.0))
    vocab_size = int(os.environ.get("VOCAB_SIZE", 1024))
    num_layers = int(os.environ.get("NUM_LAYERS", 9))
    model_dim = int(os.environ.get("MODEL_DIM", 512))
    num_heads = int(os.environ.get("NUM_HEADS", 8))
    num_kv_heads = int(os.environ.get("NUM_KV_HEADS", 4))
    mlp_mult = int(os.environ.get("MLP_MULT", 2))
    rope_base = float(os.environ.get("ROPE_BASE", 10000.0))
    logit_softcap = float(os.environ.get("LOGIT_SOFTCAP", 30.0))
    matrix_lr = float(os.environ.get("MATRIX_LR", 0.04))
    scalar_lr = float(os.environ.get("SCALAR_LR", 0.04))
    embed_lr = float(os.environ.get("EMBED_LR", 0.05))
    muon_momentum = float(os.environ.get("MUON_MOMENTUM", 0.95))
    ema_decay = float(os.environ.get("EMA_DECAY", 0.997))
    weight_buckets = int(os.environ.get("WEIGHT_BUCKETS", 1 << 20))

# -----------------------------
# DATA
# -----------------------------

def load_data_shard(file: Path) -> Tensor:
    header = np.fromfile(file, dtype="<i4", count=256)
    if header.size != 256 or int(header[0]) != 20240520:
        raise ValueError(f"bad shard header: {file}")
    num_tokens = int(header[2])
    tokens = np.fromfile(file, dtype="<u2", count=num_tokens, offset=256 * 4)
    return torch.from_numpy(tokens.astype(np.int64))


class TokenStream:
    def __init__(self, pattern: str):
        self.files = sorted(glob.glob(pattern))
        if not self.files:
            raise FileNotFoundError(pattern)
        self.file_idx = 0
        self.tokens = load_data_shard(Path(self.files[0]))
        self.pos = 0

    def _advance(self) -> None:
        self.file_idx = (self.file_idx + 1) % len(self.files)
        self.tokens = load_data_shard(Path(self.files[self.file_idx]))
        self.pos = 0

    def take(self, n: int) -> Tensor:
        chunks = []
        while n > 0:
            avail = self.tokens.numel() - self.pos
            if avail <= 0:
                self._advance()
                continue
            k = min(n, avail)
            chunks.append(self.tokens[self.pos:self.pos + k])
            self.pos += k
            n -= k
        return torch.cat(chunks)


class DistributedTokenLoader:
    def __init__(self, pattern: str, rank: int, world_size: int, device):
        self.rank, self.world_size, self.device = rank, world_size, device
        self.stream = TokenStream(pattern)

    def next_batch(self, global_tokens: int, seq_len: int, grad_accum_steps: int):
        local = global_tokens // (self.world_size * grad_accum_steps)
        span = local + 1
        chunk = self.stream.take(span * self.world_size)
        piece = chunk[self.rank * span:(self.rank + 1) * span]
        x = piece[:-1].reshape(-1, seq_len)
        y = piece[1:].reshape(-1, seq_len)
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)


def load_validation_tokens(pattern: str, seq_len: int) -> Tensor:
    files = sorted(glob.glob(pattern))
    if not files:
        raise FileNotFoundError(pattern)
    tokens = torch.cat([load_data_shard(Path(f)) for f in files])
    usable = ((tokens.numel() - 1) // seq_len) * seq_len
    return tokens[:usable + 1]


def build_sentencepiece_luts(sp, vocab_size: int, device):
    n = max(int(sp.vocab_size()), vocab_size)
    base_bytes = np.zeros(n, dtype=np.int16)
    has_space = np.zeros(n, dtype=np.bool_)
    is_boundary = np.ones(n, dtype=np.bool_)
    for tid in range(int(sp.vocab_size())):
        if sp.is_control(tid) or sp.is_unknown(tid) or sp.is_unused(tid):
            continue
        is_boundary[tid] = False
        if sp.is_byte(tid):
            base_bytes[tid] = 1
            continue
        piece = sp.id_to_piece(tid)
        if piece.startswith("\u2581"):
            has_space[tid] = True
            piece = piece[1:]
        base_bytes[tid] = len(piece.encode("utf-8"))
    return (torch.tensor(base_bytes, dtype=torch.int16, device=device),
            torch.tensor(has_space, dtype=torch.bool, device=device),
            torch.tensor(is_boundary, dtype=torch.bool, device=device))


def count_bytes(prev_ids: Tensor, tgt_ids: Tensor, luts) -> Tensor:
    base_bytes, has_space, is_boundary = luts
    nbytes = base_bytes[tgt_ids].to(torch.float64)
    nbytes += (has_space[tgt_ids] & ~is_boundary[prev_ids]).to(torch.float64)
    return nbytes.sum()


# -----------------------------
# MODEL
# -----------------------------

class RMSNorm(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.rms_norm(x, (x.size(-1),))


class Rotary(nn.Module):
    def __init__(self, dim: int, base: float = 10000.0):
        super().__init__()
        inv = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
        self.register_buffer("inv_freq", inv, persistent=False)

    def forward(self, seq_len: int, device, dtype):
        t = torch.arange(seq_len, device=device, dtype=self.inv_freq.dtype)
        freqs = torch.outer(t, self.inv_freq.to(device))
        return freqs.cos()[None, None].to(dtype), freqs.sin()[None, None].to(dtype)


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    half = x.size(-1) // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos + x2 * sin, x2 * cos - x1 * sin), dim=-1)


class CausalSelfAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int, num_kv_heads: int, rope_base: float):
        super().__init__()
        self.num_heads, self.num_kv_heads = num_heads, num_kv_heads
        self.head_dim = dim // num_heads
        kv_dim = num_kv_heads * self.head_dim
        self.c_q = nn.Linear(dim, dim, bias=False)
        self.c_k = nn.Linear(dim, kv_dim, bias=False)
        self.c_v = nn.Linear(dim, kv_dim, bias=False)
        self.proj = nn.Linear(dim, dim, bias=False)
        self.rotary = Rotary(self.head_dim, rope_base)

    def forward(self, x: Tensor) -> Tensor:
        bsz, seqlen, dim = x.shape
        q = self.c_q(x).reshape(bsz, seqlen, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.c_k(x).reshape(bsz, seqlen, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = self.c_v(x).reshape(bsz, seqlen, self.num_kv_heads, self.head_dim).transpose(1, 2)
        q, k = F.rms_norm(q, (q.size(-1),)), F.rms_norm(k, (k.size(-1),))
        cos, sin = self.rotary(seqlen, x.device, q.dtype)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           enable_gqa=self.num_kv_heads != self.num_heads)
        return self.proj(y.transpose(1, 2).contiguous().reshape(bsz, seqlen, dim))


class MLP(nn.Module):
    def __init__(self, dim: int, mult: int):
        super().__init__()
        self.fc = nn.Linear(dim, mult * dim, bias=False)
        self.proj = nn.Linear(mult * dim, dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(torch.relu(self.fc(x)).square())


class Block(nn.Module):
    def __init__(self, args: Hyperparameters):
        super().__init__()
        self.attn_norm, self.mlp_norm = RMSNorm(), RMSNorm()
        self.attn = CausalSelfAttention(args.model_dim, args.num_heads, args.num_kv_heads, args.rope_base)
        self.mlp = MLP(args.model_dim, args.mlp_mult)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.attn_norm(x))
        return x + self.mlp(self.mlp_norm(x))


class GPT(nn.Module):
    def __init__(self, args: Hyperparameters):
        super().__init__()
        self.softcap = args.logit_softcap
        self.tok_emb = nn.Embedding(args.vocab_size, args.model_dim)
        self.blocks = nn.ModuleList([Block(args) for _ in range(args.num_layers)])
        self.final_norm = RMSNorm()

    def logits(self, input_ids: Tensor) -> Tensor:
        x = F.rms_norm(self.tok_emb(input_ids), (self.tok_emb.embedding_dim,))
        for block in self.blocks:
            x = block(x)
        x = self.final_norm(x)
        raw = F.linear(x, self.tok_emb.weight)
        return self.softcap * torch.tanh(raw / self.softcap)

    def forward(self, input_ids: Tensor, target_ids: Tensor) -> Tensor:
        logits = self.logits(input_ids).float()
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), target_ids.reshape(-1))


# -----------------------------
# OPTIMIZER
# -----------------------------

def zeropower_via_newtonschulz5(G: Tensor, steps: int = 5, eps: float = 1e-7) -> Tensor:
    a, b, c = (3.4445, -4.7750, 2.0315)
    X = G.bfloat16()
    X = X / (X.norm() + eps)
    transposed = G.size(0) > G.size(1)
    if transposed:
        X = X.T
    for _ in range(steps):
        A = X @ X.T
        B = b * A + c * A @ A
        X = a * X + B @ X
    return X.T if transposed else X


class Muon(torch.optim.Optimizer):
    def __init__(self, params, lr: float, momentum: float, backend_steps: int = 5):
        super().__init__(params, dict(lr=lr, momentum=momentum, backend_steps=backend_steps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                buf = state.setdefault("momentum_buffer", torch.zeros_like(p.grad))
                buf.mul_(group["momentum"]).add_(p.grad)
                g = p.grad.add(buf, alpha=group["momentum"])
                g = zeropower_via_newtonschulz5(g, steps=group["backend_steps"])
                g *= max(1, g.size(0) / g.size(1)) ** 0.5
                p.add_(g.to(p.dtype), alpha=-group["lr"])


# -----------------------------
# QUANTIZATION
# -----------------------------

def quantize_state_dict_int8(state_dict):
    out, scales = {}, {}
    for name, t in state_dict.items():
        t = t.detach().float().cpu()
        if t.ndim < 2 or t.numel() < 65536:
            out[name] = t.half()
            continue
        s = t.abs().amax(dim=1, keepdim=True).clamp_min(1e-8) / 127.0
        out[name] = torch.clamp(torch.round(t / s), -127, 127).to(torch.int8)
        scales[name] = s.squeeze(1).half()
    return {"w": out, "s": scales}


def dequantize_state_dict_int8(obj):
    sd = {}
    for name, q in obj["w"].items():
        if name in obj["s"]:
            sd[name] = q.float() * obj["s"][name].float()[:, None]
        else:
            sd[name] = q.float()
    return sd


# -----------------------------
# EVALUATION
# -----------------------------

def eval_val(args, model, rank: int, world_size: int, device, val_tokens: Tensor, luts):
    seq_len = args.train_seq_len
    total_seqs = (val_tokens.numel() - 1) // seq_len
    seq_start = total_seqs * rank // world_size
    seq_end = total_seqs * (rank + 1) // world_size
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    token_count = torch.zeros((), device=device, dtype=torch.float64)
    byte_count = torch.zeros((), device=device, dtype=torch.float64)
    batch_seqs = max(1, args.val_batch_size // (world_size * seq_len))
    model.eval()
    with torch.inference_mode():
        for bs in range(seq_start, seq_end, batch_seqs):
            be = min(bs + batch_seqs, seq_end)
            local = val_tokens[bs * seq_len:be * seq_len + 1].to(device=device, dtype=torch.int64)
            x = local[:-1].reshape(-1, seq_len)
            y = local[1:].reshape(-1, seq_len)
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
                batch_loss = model(x, y).detach()
            n = float(y.numel())
            loss_sum += batch_loss.to(torch.float64) * n
            token_count += n
            byte_count += count_bytes(x.reshape(-1), y.reshape(-1), luts)
    if dist.is_available() and dist.is_initialized():
        for t in (loss_sum, token_count, byte_count):
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
    val_loss = loss_sum / token_count
    bits_per_token = val_loss.item() / math.log(2.0)
    model.train()
    return float(val_loss.item()), float(bits_per_token * token_count.item() / byte_count.item())


class PairFrequency:
    """Hashed (context, next) counts over the training stream; a token's loss weight falls with how
    often its pair was seen in TRAINING batches."""

    def __init__(self, buckets: int, device):
        self.buckets = buckets
        self.ctx = torch.zeros(buckets, device=device)
        self.pair = torch.zeros(buckets, device=device)

    def weights(self, x: Tensor, y: Tensor) -> Tensor:
        c = (x * 1000003) % self.buckets
        k = (c * 998244353 + y) % self.buckets
        self.ctx.index_add_(0, c.reshape(-1), torch.ones(c.numel(), device=c.device))
        self.pair.index_add_(0, k.reshape(-1), torch.ones(k.numel(), device=k.device))
        return 1.5 - 0.5 * self.pair[k] / self.ctx[c].clamp_min(1.0)


def weighted_train_loss(model, x: Tensor, y: Tensor, freq: PairFrequency) -> Tensor:
    logits = model.logits(x).float()
    per_tok = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="none")
    w = freq.weights(x, y).reshape(-1)
    return (w * per_tok).sum() / w.sum()


# -----------------------------
# TRAINING
# -----------------------------

def main():
    args = Hyperparameters()
    distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    rank = int(os.environ.get("RANK", "0"))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    grad_accum_steps = 8 // world_size
    device = torch.device("cuda", local_rank)
    torch.cuda.set_device(device)
    if distributed:
        dist.init_process_group(backend="nccl", device_id=device)
        dist.barrier()
    master_process = rank == 0
    logfile = f"logs/{args.run_id}.txt"
    if master_process:
        os.makedirs("logs", exist_ok=True)

    def log0(msg: str, console: bool = True) -> None:
        if not master_process:
            return
        if console:
            print(msg)
        with open(logfile, "a", encoding="utf-8") as f:
            print(msg, file=f)

    code = Path(__file__).read_text(encoding="utf-8")
    log0(f"world_size:{world_size} grad_accum_steps:{grad_accum_steps}")
    log0(f"seed:{args.seed}")
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    sp = spm.SentencePieceProcessor(model_file=args.tokenizer_path)
    val_tokens = load_validation_tokens(args.val_files, args.train_seq_len)
    luts = build_sentencepiece_luts(sp, args.vocab_size, device)
    log0(f"val_loader:tokens:{val_tokens.numel() - 1}")

    base_model = GPT(args).to(device).bfloat16()
    model = DDP(base_model, device_ids=[local_rank]) if distributed else base_model
    matrix_params = [p for _, p in base_model.blocks.named_parameters() if p.ndim == 2]
    scalar_params = [p for _, p in base_model.blocks.named_parameters() if p.ndim < 2]
    opt_muon = Muon(matrix_params, lr=args.matrix_lr, momentum=args.muon_momentum)
    opt_adam = torch.optim.Adam([{"params": [base_model.tok_emb.weight], "lr": args.embed_lr},
                                 {"params": scalar_params, "lr": args.scalar_lr}], betas=(0.9, 0.95))
    optimizers = [opt_muon, opt_adam]
    for opt in optimizers:
        for group in opt.param_groups:
            group["base_lr"] = group["lr"]
    log0(f"model_params:{sum(p.numel() for p in base_model.parameters())}")
    train_loader = DistributedTokenLoader(args.train_files, rank, world_size, device)
    freq = PairFrequency(args.weight_buckets, device)
    ema = {k: v.detach().float().clone() for k, v in base_model.state_dict().items()}
    max_ms = 1000.0 * args.max_wallclock_seconds
    training_ms = 0.0
    stop_after = None
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    step = 0
    while True:
        last = step == args.iterations or (stop_after is not None and step >= stop_after)
        if last or (args.val_loss_every > 0 and step % args.val_loss_every == 0):
            torch.cuda.synchronize()
            training_ms += 1000.0 * (time.perf_counter() - t0)
            val_loss, val_bpb = eval_val(args, model, rank, world_size, device, val_tokens, luts)
            log0(f"step:{step}/{args.iterations} val_loss:{val_loss:.4f} val_bpb:{val_bpb:.4f} "
                 f"train_time:{training_ms:.0f}ms")
            torch.cuda.synchronize()
            t0 = time.perf_counter()
        if last:
            if stop_after is not None and step < args.iterations:
                log0(f"stopping_early: wallclock_cap train_time:{training_ms:.0f}ms step:{step}/{args.iterations}")
            break
        elapsed = training_ms + 1000.0 * (time.perf_counter() - t0)
        remaining = max(0.0, max_ms - elapsed)
        step_ms = elapsed / max(step, 1)
        scale = min(1.0, remaining / max(args.warmdown_iters * step_ms, 1e-9))
        for opt in optimizers:
            for group in opt.param_groups:
                group["lr"] = group["base_lr"] * scale
        for _ in range(grad_accum_steps):
            x, y = train_loader.next_batch(args.train_batch_tokens, args.train_seq_len, grad_accum_steps)
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
                loss = weighted_train_loss(model, x, y, freq)
            (loss / grad_accum_steps).backward()
        for opt in optimizers:
            opt.step()
        base_model.zero_grad(set_to_none=True)
        with torch.no_grad():
            for k, v in base_model.state_dict().items():
                ema[k].mul_(args.ema_decay).add_(v.float(), alpha=1 - args.ema_decay)
        step += 1
        approx_ms = training_ms + 1000.0 * (time.perf_counter() - t0)
        if step % args.train_log_every == 0:
            log0(f"step:{step}/{args.iterations} train_loss:{loss.item():.4f} "
                 f"train_time:{approx_ms:.0f}ms step_avg:{approx_ms / step:.2f}ms")
        if stop_after is None and approx_ms >= max_ms:
            stop_after = step

    # the EMA weights are the ones exported
    base_model.load_state_dict({k: v.to(base_model.state_dict()[k].dtype) for k, v in ema.items()}, strict=True)

    quant = quantize_state_dict_int8(base_model.state_dict())
    buf = io.BytesIO()
    torch.save(quant, buf)
    blob = zlib.compress(buf.getvalue(), level=9)
    if master_process:
        with open("final_model.int8.ptz", "wb") as f:
            f.write(blob)
        code_bytes = len(code.encode("utf-8"))
        log0(f"Serialized model int8+zlib: {len(blob)} bytes")
        log0(f"Code size: {code_bytes} bytes")
        log0(f"Total submission size int8+zlib: {len(blob) + code_bytes} bytes")
    if distributed:
        dist.barrier()
    with open("final_model.int8.ptz", "rb") as f:
        restored = torch.load(io.BytesIO(zlib.decompress(f.read())), map_location="cpu")
    base_model.load_state_dict(dequantize_state_dict_int8(restored), strict=True)
    t_eval = time.perf_counter()
    q_val_loss, q_val_bpb = eval_val(args, model, rank, world_size, device, val_tokens, luts)
    log0(f"final_int8_zlib_roundtrip val_loss:{q_val_loss:.4f} val_bpb:{q_val_bpb:.4f} "
         f"eval_time:{1000.0 * (time.perf_counter() - t_eval):.0f}ms")
    log0(f"final_int8_zlib_roundtrip_exact val_loss:{q_val_loss:.8f} val_bpb:{q_val_bpb:.8f}")

    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
