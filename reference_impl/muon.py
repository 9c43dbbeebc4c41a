"""Muon: SGD-momentum (Nesterov) whose update for each weight matrix is replaced by the nearest
semi-orthogonal matrix, found with five Newton–Schulz iterations. Used for the 2-D block weights;
embeddings and scalars go to Adam (see `build_optimizers` in train.py)."""
from __future__ import annotations

import torch
import torch.distributed as dist

# Quintic iteration coefficients chosen to push every singular value of a normalised matrix
# towards 1 quickly (they overshoot a little: the result's singular values sit around 0.7–1.2).
NS_COEFFS = (3.4445, -4.7750, 2.0315)


def newton_schulz(g: torch.Tensor, steps: int = 5, eps: float = 1e-7, dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    a, b, c = NS_COEFFS
    x = g.to(dtype)
    x = x / (x.norm() + eps)  # Frobenius norm >= spectral norm, so every singular value starts <= 1
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.T
    for _ in range(steps):
        A = x @ x.T
        x = a * x + (b * A + c * A @ A) @ x
    return x.T if tall else x


# Eager Newton–Schulz is ~15 small kernel launches per matrix and iteration; train.py swaps in
# the compiled version on CUDA (one fused graph per matrix shape), as the official script does.
NS_IMPL = {"fn": newton_schulz}


def compile_newton_schulz() -> None:
    NS_IMPL["fn"] = torch.compile(newton_schulz)


class Muon(torch.optim.Optimizer):
    """ns_dtype: the iteration's precision. bfloat16 (the official script's, on every device)
    or float32."""

    def __init__(self, params, lr: float = 0.02, momentum: float = 0.95, nesterov: bool = True, ns_steps: int = 5,
                 ns_dtype: torch.dtype = torch.bfloat16):
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov, ns_steps=ns_steps))
        self.ns_dtype = ns_dtype

    @torch.no_grad()
    def step(self):
        distributed = dist.is_available() and dist.is_initialized()
        world = dist.get_world_size() if distributed else 1
        rank = dist.get_rank() if distributed else 0
        ns = NS_IMPL["fn"]
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            # Each rank orthogonalises every world-th matrix; one all-reduce (in the iteration's
            # precision: the values are already rounded to it) shares the results.
            flat = torch.zeros(sum(p.numel() for p in params), device=params[0].device, dtype=self.ns_dtype)
            offset = 0
            for i, p in enumerate(params):
                if i % world == rank:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = torch.zeros_like(p.grad)
                    buf.mul_(group["momentum"]).add_(p.grad)
                    g = p.grad.add(buf, alpha=group["momentum"]) if group["nesterov"] else buf
                    u = ns(g.view(g.size(0), -1), steps=group["ns_steps"], dtype=self.ns_dtype)
                    u = u * max(1.0, u.size(0) / u.size(1)) ** 0.5  # same RMS for tall and wide matrices
                    flat[offset:offset + p.numel()] = u.flatten()
                offset += p.numel()
            if world > 1:
                dist.all_reduce(flat)
            offset = 0
            for p in params:
                p.add_(flat[offset:offset + p.numel()].view_as(p).to(p.dtype), alpha=-group["lr"])
                offset += p.numel()
