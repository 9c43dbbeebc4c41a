"""The challenge baseline GPT: pre-norm blocks with RMSNorm, RoPE, grouped-query attention,
a ReLU^2 MLP, tied input/output embeddings and a tanh logit softcap. Every size is a field."""
from __future__ import annotations

import math
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


def rms_norm(x: torch.Tensor) -> torch.Tensor:
    return F.rms_norm(x, (x.size(-1),))


def _flash_attn_func():
    # FlashAttention is optional (the `[gpu]` extra); it only runs on CUDA tensors.
    try:
        from flash_attn import flash_attn_func
    except Exception:
        return None
    return flash_attn_func


class Rotary(nn.Module):
    def __init__(self, head_dim: int, base: float):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self._cache: tuple[int, torch.device, torch.Tensor, torch.Tensor] | None = None

    def forward(self, T: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if self._cache is None or self._cache[0] < T or self._cache[1] != device:
            t = torch.arange(T, device=device, dtype=torch.float32)
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
        self.c_q = nn.Linear(cfg.model_dim, cfg.model_dim, bias=False)
        self.c_k = nn.Linear(cfg.model_dim, kv_dim, bias=False)
        self.c_v = nn.Linear(cfg.model_dim, kv_dim, bias=False)
        self.c_proj = nn.Linear(cfg.model_dim, cfg.model_dim, bias=False)
        nn.init.zeros_(self.c_proj.weight)
        self.rotary = Rotary(self.head_dim, cfg.rope_base)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q = self.c_q(x).view(B, T, self.n_head, self.head_dim)
        k = self.c_k(x).view(B, T, self.n_kv, self.head_dim)
        v = self.c_v(x).view(B, T, self.n_kv, self.head_dim)
        q, k = rms_norm(q), rms_norm(k)
        cos, sin = self.rotary(T, x.device)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        flash = _flash_attn_func() if x.is_cuda else None
        if flash is not None:
            y = flash(q, k, v, causal=True)
        else:
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=self.n_kv != self.n_head).transpose(1, 2)
        return self.c_proj(y.reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.model_dim, cfg.mlp_mult * cfg.model_dim, bias=False)
        self.c_proj = nn.Linear(cfg.mlp_mult * cfg.model_dim, cfg.model_dim, bias=False)
        nn.init.zeros_(self.c_proj.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.relu(self.c_fc(x)).square())


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.attn = CausalSelfAttention(cfg)
        self.mlp = MLP(cfg)
        # Per-channel residual gains: cheap scalars trained by Adam and kept in fp32 by the exporter.
        self.attn_scale = nn.Parameter(torch.ones(cfg.model_dim))
        self.mlp_scale = nn.Parameter(torch.ones(cfg.model_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn_scale.to(x.dtype) * self.attn(rms_norm(x))
        return x + self.mlp_scale.to(x.dtype) * self.mlp(rms_norm(x))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.model_dim)
        nn.init.normal_(self.wte.weight, std=0.5 / math.sqrt(cfg.model_dim))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.num_layers))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits (float32, softcapped) for every position of idx (B, T)."""
        x = rms_norm(self.wte(idx))
        for block in self.blocks:
            x = block(x)
        logits = F.linear(rms_norm(x), self.wte.weight.to(x.dtype)).float()
        cap = self.cfg.logit_softcap
        return cap * torch.tanh(logits / cap) if cap > 0 else logits

    def loss(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = self(idx)
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
