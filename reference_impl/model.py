"""The challenge baseline GPT: pre-norm blocks with RMSNorm, RoPE, grouped-query attention with a
per-head query gain, a ReLU^2 MLP, U-Net skip connections between the first and second half of the
blocks, a per-block mix of the residual stream with the initial embedding, tied input/output
embeddings and a tanh logit softcap. Every size and every one of those pieces is a field, and with
the defaults the forward, parameter count and initialisation follow the official baseline
(openai/parameter-golf train_gpt.py); benchmarks/parity_baseline.py checks that step for step."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class GPTConfig:
    vocab_size: int = 1024
    num_layers: int = 9
    model_dim: int = 512
    num_heads: int = 8
    num_kv_heads: int = 4
    mlp_mult: int = 2
    rope_base: float = 10000.0
    logit_softcap: float = 30.0
    qk_gain_init: float = 1.5  # 0: no per-head gain (QK-normed logits then stay within +-sqrt(head_dim))
    unet_skips: bool = True
    resid_mix: bool = True
    tied_embed_init_std: float = 0.005
    # Off in the baseline; the record preset's switches (each names its source record).
    mlp_neg_slope: float = 0.0  # >0: LeakyReLU(slope)^2 (2026-03-23_LeakyReLU_LegalTTT_ParallelMuon uses 0.5)
    qat_bits: int = 0  # >0: block matrices see their per-row intN rounding in training, straight-through
    #                    (2026-03-19_MLP3x_QAT_Int6_SlidingWindow: int6 STE fake-quantisation)


def rms_norm(x: torch.Tensor) -> torch.Tensor:
    return F.rms_norm(x, (x.size(-1),))


def _import_flash_attn():
    # FlashAttention is optional (the `[gpu]` extra). Resolved once here: an import inside
    # forward() would break the compiled graph once per layer when the package is absent.
    try:
        from flash_attn import flash_attn_func
    except Exception:
        return None
    return flash_attn_func


FLASH_ATTN_FUNC = _import_flash_attn()


def fake_quantize(w: torch.Tensor, bits: int) -> torch.Tensor:
    """w rounded to per-row symmetric intN (scale = row max / qmax) in the forward pass, identity in
    the backward pass (straight-through), so training sees the export's rounding."""
    qmax = (1 << (bits - 1)) - 1
    scale = w.detach().abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / qmax
    q = torch.round(w / scale).clamp(-qmax, qmax) * scale
    return w + (q - w).detach()


class QATLinear(nn.Linear):
    """nn.Linear (same parameters and state dict) that can fake-quantise its weight."""

    def __init__(self, fan_in: int, fan_out: int, qat_bits: int = 0):
        super().__init__(fan_in, fan_out, bias=False)
        self.qat_bits = qat_bits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = fake_quantize(self.weight, self.qat_bits) if self.qat_bits and self.training else self.weight
        return F.linear(x, w)


class Rotary(nn.Module):
    def __init__(self, head_dim: int, base: float):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self._cache: tuple[int, torch.device, torch.Tensor, torch.Tensor] | None = None

    def forward(self, T: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if self._cache is None or self._cache[0] < T or self._cache[1] != device:
            # Positions in the buffer's dtype, as the official script does: a bf16 body (to_bf16_body
            # casts buffers too) rounds positions above 256, and parity means doing the same.
            t = torch.arange(T, device=device, dtype=self.inv_freq.dtype)
            freqs = torch.outer(t, self.inv_freq.to(device))
            self._cache = (T, device, freqs.cos(), freqs.sin())
        return self._cache[2][:T], self._cache[3][:T]


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x: (B, T, H, D); rotate the two halves of each head.
    half = x.size(-1) // 2
    x1, x2 = x[..., :half], x[..., half:]
    cos, sin = cos[None, :, None, :].to(x.dtype), sin[None, :, None, :].to(x.dtype)
    return torch.cat((x1 * cos + x2 * sin, x2 * cos - x1 * sin), dim=-1)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        if cfg.model_dim % cfg.num_heads or cfg.num_heads % cfg.num_kv_heads:
            raise ValueError("model_dim must divide by num_heads, and num_heads by num_kv_heads")
        self.n_head, self.n_kv = cfg.num_heads, cfg.num_kv_heads
        self.head_dim = cfg.model_dim // cfg.num_heads
        kv_dim = self.n_kv * self.head_dim
        self.c_q = QATLinear(cfg.model_dim, cfg.model_dim, cfg.qat_bits)
        self.c_k = QATLinear(cfg.model_dim, kv_dim, cfg.qat_bits)
        self.c_v = QATLinear(cfg.model_dim, kv_dim, cfg.qat_bits)
        self.c_proj = QATLinear(cfg.model_dim, cfg.model_dim, cfg.qat_bits)
        nn.init.zeros_(self.c_proj.weight)
        # Without a gain, RMS-normed q.k / sqrt(d) is capped at +-sqrt(d): attention cannot get sharp.
        self.q_gain = nn.Parameter(torch.full((cfg.num_heads,), cfg.qk_gain_init)) if cfg.qk_gain_init > 0 else None
        self.rotary = Rotary(self.head_dim, cfg.rope_base)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q = self.c_q(x).view(B, T, self.n_head, self.head_dim)
        k = self.c_k(x).view(B, T, self.n_kv, self.head_dim)
        v = self.c_v(x).view(B, T, self.n_kv, self.head_dim)
        q, k = rms_norm(q), rms_norm(k)
        cos, sin = self.rotary(T, x.device)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if self.q_gain is not None:
            q = q * self.q_gain.to(q.dtype)[None, None, :, None]
        if FLASH_ATTN_FUNC is not None and x.is_cuda and q.dtype in (torch.bfloat16, torch.float16):
            y = FLASH_ATTN_FUNC(q, k, v.to(q.dtype), causal=True)
        else:
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=self.n_kv != self.n_head).transpose(1, 2)
        return self.c_proj(y.reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_fc = QATLinear(cfg.model_dim, cfg.mlp_mult * cfg.model_dim, cfg.qat_bits)
        self.c_proj = QATLinear(cfg.mlp_mult * cfg.model_dim, cfg.model_dim, cfg.qat_bits)
        nn.init.zeros_(self.c_proj.weight)
        self.neg_slope = cfg.mlp_neg_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c_fc(x)
        h = F.leaky_relu(h, self.neg_slope) if self.neg_slope > 0 else F.relu(h)
        return self.c_proj(h.square())


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.attn = CausalSelfAttention(cfg)
        self.mlp = MLP(cfg)
        # Per-channel residual gains: cheap scalars trained by Adam and kept in fp32 by the exporter.
        self.attn_scale = nn.Parameter(torch.ones(cfg.model_dim))
        self.mlp_scale = nn.Parameter(torch.ones(cfg.model_dim))
        # Row 0 weighs the stream, row 1 the initial embedding x0 (starts as the identity mix).
        self.resid_mix = nn.Parameter(torch.stack((torch.ones(cfg.model_dim), torch.zeros(cfg.model_dim)))) \
            if cfg.resid_mix else None

    def forward(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        if self.resid_mix is not None:
            mix = self.resid_mix.to(x.dtype)
            x = mix[0] * x + mix[1] * x0
        x = x + self.attn_scale.to(x.dtype) * self.attn(rms_norm(x))
        return x + self.mlp_scale.to(x.dtype) * self.mlp(rms_norm(x))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.model_dim)
        # U-Net: the first half of the blocks hands its outputs, last first, to the second half.
        self.n_enc = cfg.num_layers // 2 if cfg.unet_skips else 0
        n_skip = min(self.n_enc, cfg.num_layers - self.n_enc)
        self.skip_weights = nn.Parameter(torch.ones(n_skip, cfg.model_dim)) if n_skip else None
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.num_layers))
        # After the blocks, as the official script does, so one seed gives both the same weights.
        nn.init.normal_(self.wte.weight, std=cfg.tied_embed_init_std)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """Softcapped float32 logits (B, T, V) for every position of idx (B, T); with targets, the
        mean cross-entropy instead, in the same (compiled) graph."""
        x = rms_norm(self.wte(idx))
        x0 = x
        skips: list[torch.Tensor] = []
        for i, block in enumerate(self.blocks):
            if i >= self.n_enc and skips:
                x = x + self.skip_weights[i - self.n_enc].to(x.dtype) * skips.pop()
            x = block(x, x0)
            if i < self.n_enc:
                skips.append(x)
        logits = F.linear(rms_norm(x), self.wte.weight.to(x.dtype))
        cap = self.cfg.logit_softcap
        if cap > 0:
            logits = cap * torch.tanh(logits / cap)
        if targets is None:
            return logits.float()
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1))

    def loss(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self(idx, targets)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


# Small parameters that stay fp32 in a bf16 body, go to Adam, and are stored exactly in the artifact.
CONTROL_PARAM_NAMES = ("attn_scale", "mlp_scale", "resid_mix", "q_gain", "skip_weights")


def is_control_param(name: str, p: torch.Tensor) -> bool:
    return p.dim() < 2 or any(s in name for s in CONTROL_PARAM_NAMES)


def to_bf16_body(model: GPT) -> GPT:
    """The official precision split: embedding (and so the residual stream) in bf16; linear
    weights and control parameters in fp32, cast at the matmul by autocast."""
    model.bfloat16()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name != "wte.weight":
                p.data = p.data.float()
    return model
