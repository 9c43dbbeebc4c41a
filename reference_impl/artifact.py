"""The stored artifact: quantise the state dict (per-row int8 or packed int6, fp16 scales),
torch.save it, compress (zlib-9 or zstd-22), and read it back. Size = code bytes + compressed
model bytes, against 16,000,000 decimal bytes (records.md §4.2)."""
from __future__ import annotations

import io
import re
import zlib

import torch

SIZE_LIMIT = 16_000_000
CLIP_QUANTILE = 0.9999984
# Small gains and mixing scalars are kept exact: they are few bytes and sensitive to rounding.
CONTROL_TENSOR = re.compile(r"(attn_scale|mlp_scale|resid_mix|q_gain|skip_weight)")


def pack_int6(q: torch.Tensor) -> torch.Tensor:
    """Values in [-32, 31] -> 3 bytes per 4 values."""
    u = (q.flatten().to(torch.int32) + 32)
    pad = (-u.numel()) % 4
    if pad:
        u = torch.cat([u, u.new_zeros(pad)])
    u = u.view(-1, 4)
    word = u[:, 0] | (u[:, 1] << 6) | (u[:, 2] << 12) | (u[:, 3] << 18)
    return torch.stack([word & 255, (word >> 8) & 255, (word >> 16) & 255], dim=1).to(torch.uint8).flatten()


def unpack_int6(packed: torch.Tensor, numel: int) -> torch.Tensor:
    b = packed.view(-1, 3).to(torch.int32)
    word = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
    u = torch.stack([(word >> s) & 63 for s in (0, 6, 12, 18)], dim=1).flatten()[:numel]
    return (u - 32).to(torch.int8)


def quantize_rows(w: torch.Tensor, bits: int, min_clip: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row symmetric quantisation. The step is max(clip, min_clip) / qmax: the official
    script floors its int8 scale at 1/127 (min_clip 1.0), so small-valued rows use few levels
    and compress far better; min_clip 0 gives every row its full range."""
    qmax = (1 << (bits - 1)) - 1
    w = w.float()
    clip = torch.quantile(w.abs(), CLIP_QUANTILE, dim=1) if w.size(1) > 1 else w.abs().amax(dim=1)
    scale = (clip.clamp_min(min_clip) / qmax).clamp_min(1e-12).to(torch.float16)
    q = torch.round(w.clamp(-clip[:, None], clip[:, None]) / scale.float()[:, None]).clamp(-qmax, qmax)
    return q.to(torch.int8), scale


def quantize_state_dict(sd: dict, bits: int = 8, min_numel: int = 65536, min_clip: float = 1.0,
                        keep_fp16: tuple[str, ...] = (), pack6: bool = True) -> dict:
    """2-D float tensors with more than min_numel elements -> per-row intN + fp16 scales;
    other large float tensors -> one scale; small ones fp16 (control tensors fp32)."""
    if bits not in (6, 8):
        raise ValueError("bits must be 8 or 6")
    out: dict = {"__bits__": bits}
    for name, t in sd.items():
        t = t.detach().cpu()
        entry: dict = {"shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", "")}
        if not t.is_floating_point():
            entry["raw"] = t
        elif t.numel() <= min_numel or name in keep_fp16:
            # keep_fp16: the tied embedding is also the output head, the most rounding-sensitive
            # tensor (2026-03-18_FP16Embed_WD3600 keeps it fp16).
            entry["raw"] = t.float() if CONTROL_TENSOR.search(name) else t.half()
        else:
            q, scale = quantize_rows(t.reshape(t.size(0), -1) if t.dim() == 2 else t.reshape(1, -1), bits, min_clip)
            entry["scale"] = scale
            # Unpacked int6 (one value a byte) compresses with zstd to fewer bits than the packed form.
            entry["q"] = pack_int6(q) if bits == 6 and pack6 else q
            entry["packed"] = bits == 6 and pack6
        out[name] = entry
    return out


def dequantize_state_dict(qsd: dict) -> dict:
    bits = qsd["__bits__"]
    sd = {}
    for name, e in qsd.items():
        if name == "__bits__":
            continue
        dtype = getattr(torch, e["dtype"])
        if "raw" in e:
            sd[name] = e["raw"].to(dtype).reshape(e["shape"])
            continue
        scale = e["scale"].float()
        numel = 1
        for d in e["shape"]:
            numel *= d
        q = unpack_int6(e["q"], numel) if e.get("packed", bits == 6) else e["q"]
        q = q.reshape(scale.numel(), -1).float()
        sd[name] = (q * scale[:, None]).reshape(e["shape"]).to(dtype)
    return sd


def compress(data: bytes, method: str) -> bytes:
    if method == "zlib":
        return zlib.compress(data, 9)
    if method == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=22).compress(data)
    raise ValueError(f"unknown compressor {method!r} (zlib | zstd)")


def decompress(blob: bytes, method: str) -> bytes:
    if method == "zlib":
        return zlib.decompress(blob)
    if method == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompress(blob)
    raise ValueError(f"unknown compressor {method!r} (zlib | zstd)")


def save_artifact(sd: dict, path: str, bits: int = 8, method: str = "zlib", min_numel: int = 65536,
                  min_clip: float = 1.0, keep_fp16: tuple[str, ...] = (), pack6: bool = True) -> int:
    buf = io.BytesIO()
    torch.save(quantize_state_dict(sd, bits, min_numel, min_clip, keep_fp16, pack6), buf)
    blob = compress(buf.getvalue(), method)
    with open(path, "wb") as f:
        f.write(blob)
    return len(blob)


def load_artifact(path: str, method: str = "zlib") -> dict:
    with open(path, "rb") as f:
        raw = decompress(f.read(), method)
    return dequantize_state_dict(torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True))


def format_tag(bits: int, method: str) -> str:
    return f"int{bits}+{method}"
