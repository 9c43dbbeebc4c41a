"""Model shape and causality, Muon's orthogonalised update, and the int8/int6 artifact."""
from __future__ import annotations

import os

import pytest
import torch

from reference_impl.artifact import (dequantize_state_dict, format_tag, load_artifact, pack_int6, quantize_state_dict,
                                     save_artifact, unpack_int6)
from reference_impl.model import GPT, GPTConfig
from reference_impl.muon import Muon, newton_schulz

SMALL = GPTConfig(vocab_size=64, num_layers=2, model_dim=32, num_heads=4, num_kv_heads=2, mlp_mult=2)


def test_baseline_shape_and_parameter_count():
    cfg = GPTConfig()
    assert (cfg.num_layers, cfg.model_dim, cfg.num_heads, cfg.num_kv_heads, cfg.vocab_size, cfg.logit_softcap) == (9, 512, 8, 4, 1024, 30.0)
    d, kv = 512, 4 * 64
    # q, k+v, proj, mlp in/out, two gains, the x0 mix (2 x d), the per-head query gain
    per_block = d * d + 2 * d * kv + d * d + 2 * (2 * d * d) + 2 * d + 2 * d + 8
    with torch.device("meta"):
        m = GPT(cfg)
    # tied: one embedding matrix; U-Net: 4 skip weight vectors (9 // 2 encoder blocks)
    assert m.num_params() == 1024 * d + 9 * per_block + 4 * d == 17_059_912  # the official script's count
    with torch.device("meta"):
        bare = GPT(GPTConfig(qk_gain_init=0, unet_skips=False, resid_mix=False))
    assert bare.num_params() == 17_048_576


def test_unet_skips_and_x0_mix_are_wired():
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=64, num_layers=4, model_dim=32, num_heads=4, num_kv_heads=2)
    m = GPT(cfg)
    for p in m.parameters():
        torch.nn.init.normal_(p, std=0.3)
    x = torch.randint(0, 64, (2, 12))
    a = m(x)
    with torch.no_grad():
        m.skip_weights.zero_()
    b = m(x)
    with torch.no_grad():
        for blk in m.blocks:
            blk.resid_mix[1].zero_()
    c = m(x)
    assert not torch.allclose(a, b) and not torch.allclose(b, c)
    assert m.skip_weights.shape == (2, 32) and m.blocks[0].attn.q_gain.shape == (4,)


def test_causal_and_softcapped():
    torch.manual_seed(0)
    m = GPT(SMALL)
    for p in m.parameters():
        torch.nn.init.normal_(p, std=2.0)  # big weights so the softcap matters
    x = torch.randint(0, 64, (2, 12))
    y = x.clone()
    y[:, 7] = (y[:, 7] + 1) % 64
    a, b = m(x), m(y)
    assert a.shape == (2, 12, 64)
    assert torch.equal(a[:, :7], b[:, :7]) and not torch.equal(a[:, 7:], b[:, 7:])
    assert a.abs().max() <= 30.0 and a.abs().max() > 20.0


def test_newton_schulz_singular_values_near_one():
    torch.manual_seed(0)
    for shape in [(96, 32), (32, 128), (64, 48)]:
        s = torch.linalg.svdvals(newton_schulz(torch.randn(*shape)).float())
        assert s.min() > 0.6 and s.max() < 1.25, (shape, s.min(), s.max())


def test_muon_update_is_orthogonalised():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(48, 96))
    opt = Muon([w], lr=0.1, momentum=0.0)
    w.grad = torch.randn(48, 8) @ torch.randn(8, 96) + 0.1 * torch.randn(48, 96)  # ill-conditioned
    before = w.detach().clone()
    opt.step()
    s = torch.linalg.svdvals((before - w.detach()) / 0.1)
    assert s.min() > 0.5 and s.max() < 1.25, s
    # Nesterov momentum: the step is orthogonalised too.
    opt2 = Muon([w], lr=0.1, momentum=0.95)
    for _ in range(3):
        w.grad = torch.randn_like(w)
        before = w.detach().clone()
        opt2.step()
    s = torch.linalg.svdvals((before - w.detach()) / 0.1)
    assert s.min() > 0.6 and s.max() < 1.25, s


def test_muon_keeps_a_low_rank_gradient_low_rank():
    w = torch.nn.Parameter(torch.zeros(48, 96))
    w.grad = torch.randn(48, 8) @ torch.randn(8, 96)
    Muon([w], lr=1.0, momentum=0.0, ns_dtype=torch.float32).step()  # bf16 rounding would fill the null space at ~1e-2
    s = torch.linalg.svdvals(w.detach())
    assert s[:8].min() > 0.6 and s[:8].max() < 1.25 and s[8:].max() < 1e-3


def test_int6_packing_roundtrip():
    q = torch.randint(-32, 32, (1003,), dtype=torch.int8)
    packed = pack_int6(q)
    assert packed.dtype == torch.uint8 and packed.numel() == 3 * 251
    assert torch.equal(unpack_int6(packed, 1003), q)


@pytest.mark.parametrize("bits,method", [(8, "zlib"), (8, "zstd"), (6, "zlib"), (6, "zstd")])
def test_artifact_roundtrip(tmp_path, bits, method):
    torch.manual_seed(0)
    m = GPT(SMALL)
    for p in m.parameters():
        torch.nn.init.normal_(p, std=0.05)
    sd = m.state_dict()
    path = tmp_path / f"m.int{bits}.ptz"
    n = save_artifact(sd, str(path), bits, method, min_numel=512, min_clip=0.0)
    assert n == os.path.getsize(path)
    back = load_artifact(str(path), method)
    assert back.keys() == sd.keys()
    w = sd["blocks.0.mlp.c_fc.weight"]
    err = (back["blocks.0.mlp.c_fc.weight"] - w).abs().max() / w.abs().max()
    assert err < (0.01 if bits == 8 else 0.04)
    assert torch.equal(back["blocks.0.attn_scale"], sd["blocks.0.attn_scale"])  # control tensors exact
    m.load_state_dict(back)
    assert format_tag(bits, method) == f"int{bits}+{method}"


def test_int8_scale_floor_is_the_official_one():
    # The official script: scale = max(clip / 127, 1 / 127). Rows with small values get few levels.
    w = torch.linspace(-0.05, 0.05, 200).repeat(3, 1)
    q = quantize_state_dict({"w": w}, 8, min_numel=10)["w"]
    assert torch.allclose(q["scale"].float(), torch.full((3,), 1 / 127), rtol=1e-3)
    assert q["q"].abs().max() == round(0.05 * 127)
    full = quantize_state_dict({"w": w}, 8, min_numel=10, min_clip=0.0)["w"]
    assert full["q"].abs().max() == 127


def test_quantisation_layout():
    sd = {"big": torch.randn(40, 100), "small": torch.randn(10), "blocks.0.mlp_scale": torch.randn(5), "ids": torch.arange(3)}
    q = quantize_state_dict(sd, 8, min_numel=1000)
    assert q["big"]["q"].dtype == torch.int8 and q["big"]["scale"].dtype == torch.float16 and q["big"]["scale"].shape == (40,)
    assert q["small"]["raw"].dtype == torch.float16 and q["blocks.0.mlp_scale"]["raw"].dtype == torch.float32
    assert torch.equal(dequantize_state_dict(q)["ids"], sd["ids"])
    with pytest.raises(ValueError):
        quantize_state_dict(sd, 4)


def _args(**env):
    from reference_impl.train import Hyperparameters

    old = {k: os.environ.get(k) for k in env}
    os.environ.update({k: str(v) for k, v in env.items()})
    try:
        return Hyperparameters()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k)
            else:
                os.environ[k] = v


def test_warmdown_is_time_based_under_a_cap():
    from reference_impl.train import lr_multiplier

    a = _args(MAX_WALLCLOCK_SECONDS=100, WARMDOWN_ITERS=10, ITERATIONS=100000)
    # 1 s per step so far: the warm-down covers the last 10 s of the 100 s budget.
    assert lr_multiplier(50, 50_000, a) == 1.0
    assert lr_multiplier(95, 95_000, a) == pytest.approx(0.5)
    assert lr_multiplier(100, 100_000, a) == 0.0
    # Slower steps (2 s) start the warm-down earlier: 20 s before the cap.
    assert lr_multiplier(40, 85_000, a) == pytest.approx(15 / 21.25)
    # Under a cap ITERATIONS only stops the run (the official schedule): 80 steps of 100 ms keep LR 1.
    c = _args(MAX_WALLCLOCK_SECONDS=600, WARMDOWN_ITERS=1200, ITERATIONS=80)
    assert lr_multiplier(79, 7_900, c) == 1.0
    b = _args(MAX_WALLCLOCK_SECONDS=0, WARMDOWN_ITERS=10, ITERATIONS=100)
    assert lr_multiplier(89, 1e9, b) == 1.0 and lr_multiplier(95, 0, b) == pytest.approx(0.5)


def test_token_stream_gives_ranks_disjoint_contiguous_slices(tmp_path):
    from reference_impl.data import write_shard
    from reference_impl.train import TokenStream

    write_shard(str(tmp_path / "fineweb_train_000000.bin"), list(range(50)))
    write_shard(str(tmp_path / "fineweb_train_000001.bin"), list(range(100, 130)))
    pattern = str(tmp_path / "fineweb_train_*.bin")
    a, b = TokenStream(pattern), TokenStream(pattern)
    x0, y0 = a.next_batch(8, 4, 0, 2, "cpu")
    x1, y1 = b.next_batch(8, 4, 1, 2, "cpu")
    assert x0.flatten().tolist() == list(range(0, 8)) and y0.flatten().tolist() == list(range(1, 9))
    assert x1.flatten().tolist() == list(range(9, 17))
    for _ in range(4):  # 18 tokens a call: crosses into the second shard, then wraps to the first
        x0, y0 = a.next_batch(8, 4, 0, 2, "cpu")
    assert x0.flatten().tolist() == list(range(122, 130)) and y0.flatten().tolist()[-1] == 0


def test_loss_and_newton_schulz_compile_to_one_graph_each():
    # The training loss (forward, softcap and cross-entropy) is one compiled graph with no breaks:
    # a break (e.g. an import inside forward) would split it once per layer.
    import torch._dynamo as dynamo

    m = GPT(GPTConfig(vocab_size=64, num_layers=4, model_dim=32, num_heads=4, num_kv_heads=2))
    x, y = torch.randint(0, 64, (2, 16)), torch.randint(0, 64, (2, 16))
    e = dynamo.explain(m)(x, y)
    assert (e.graph_count, e.graph_break_count) == (1, 0), e.break_reasons
    e = dynamo.explain(newton_schulz)(torch.randn(32, 64))
    assert (e.graph_count, e.graph_break_count) == (1, 0), e.break_reasons


def test_qat_forward_sees_int6_rounding_and_backward_passes_straight_through():
    from reference_impl.model import QATLinear, fake_quantize

    torch.manual_seed(0)
    w = torch.randn(8, 40, requires_grad=True)
    q = fake_quantize(w, 6)
    step = w.detach().abs().amax(dim=1, keepdim=True) / 31
    assert torch.allclose(q / step, torch.round(q / step), atol=1e-4)  # on the int6 grid
    assert 0 < (q - w).abs().max() <= step.max() / 2 + 1e-6
    q.sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))  # straight-through
    lin = QATLinear(40, 8, qat_bits=6)
    x = torch.randn(3, 40)
    assert not torch.allclose(lin(x), x @ lin.weight.T)
    lin.eval()  # export and eval see the stored weights; the artifact does the rounding
    assert torch.allclose(lin(x), x @ lin.weight.T)


def test_leaky_relu_squared_mlp():
    from reference_impl.model import MLP

    cfg = GPTConfig(model_dim=8, mlp_mult=2, mlp_neg_slope=0.5)
    m = MLP(cfg)
    torch.nn.init.eye_(m.c_proj.weight)
    x = torch.randn(4, 8)
    h = x @ m.c_fc.weight.T
    assert torch.allclose(m(x), (torch.where(h > 0, h, 0.5 * h) ** 2) @ m.c_proj.weight.T)


def test_fp16_embedding_and_unpacked_int6_artifact(tmp_path):
    torch.manual_seed(0)
    m = GPT(SMALL)
    for p in m.parameters():
        torch.nn.init.normal_(p, std=0.05)
    sd = m.state_dict()
    q = quantize_state_dict(sd, 6, min_numel=512, min_clip=0.0, keep_fp16=("wte.weight",), pack6=False)
    assert q["wte.weight"]["raw"].dtype == torch.float16
    assert q["blocks.0.mlp.c_fc.weight"]["q"].numel() == sd["blocks.0.mlp.c_fc.weight"].numel()  # one value a byte
    n = save_artifact(sd, str(tmp_path / "a.ptz"), 6, "zstd", 512, 0.0, ("wte.weight",), False)
    back = load_artifact(str(tmp_path / "a.ptz"), "zstd")
    assert n > 0 and torch.equal(back["wte.weight"], sd["wte.weight"].half().float())
    w = sd["blocks.0.mlp.c_fc.weight"]
    assert (back["blocks.0.mlp.c_fc.weight"] - w).abs().max() / w.abs().max() < 0.04
