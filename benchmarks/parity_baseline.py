"""Parity of `--preset baseline` with the official baseline, step for step, on CPU.

Loads the official train_gpt.py at run time (from a fetched copy of openai/parameter-golf: a bare
git dir via --repo / $PGOLF_CHALLENGE_REPO, or a file via --official; it is read and imported here,
never committed), builds its GPT and its optimizer split (Adam for the tied embedding and the
control tensors, its Muon for block matrices, its momentum warm-up and LR schedule) next to the
reference's at a small configuration (reference_impl.parity.SMALL_ENV), with the same seed and the
same token shards, trains both, and prints the per-step loss difference.

    python benchmarks/parity_baseline.py --repo /path/to/parameter-golf.git [--ref refs/heads/main]
    python benchmarks/parity_baseline.py --official path/to/train_gpt.py --steps 50 [--precision bf16]
    ... --golden tests/fixtures/reference_parity_golden.json    # record the official losses (numbers only)

The official script is CUDA-only in main(); its classes (GPT, Muon, DistributedTokenLoader) are
device-agnostic and are used directly on CPU. Nothing of it is patched.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reference_impl.parity import SMALL_ENV, env_vars, official_name, reference_run, write_stream  # noqa: E402


def official_source(a) -> tuple[str, str]:
    if a.official:
        return Path(a.official).read_text(encoding="utf-8"), str(a.official)
    repo = a.repo or os.environ.get("PGOLF_CHALLENGE_REPO")
    if not repo:
        sys.exit("parity_baseline: give --official FILE or --repo GITDIR (or set PGOLF_CHALLENGE_REPO)")
    try:
        text = subprocess.run(["git", "--git-dir", repo, "show", f"{a.ref}:train_gpt.py"], capture_output=True, text=True,
                              check=True).stdout
    except subprocess.CalledProcessError as e:
        sys.exit(f"parity_baseline: {repo}: git show {a.ref}:train_gpt.py failed: {e.stderr.strip()}")
    return text, f"openai/parameter-golf {a.ref}:train_gpt.py"


def import_official(text: str, tmp: Path):
    path = tmp / "official_train_gpt.py"
    path.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("official_train_gpt", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def official_run(mod, train_glob: str, env: dict[str, str], steps: int, bf16: bool):
    """The official script's setup and loop body (main() without CUDA, DDP, warm-up or logging),
    built from its own classes and hyperparameter defaults."""
    H = mod.Hyperparameters  # its class body read the environment when the module was imported (under env_vars)
    assert H.vocab_size == int(env["VOCAB_SIZE"]) and H.iterations == int(env["ITERATIONS"])
    torch.manual_seed(int(env["SEED"]))
    model = mod.GPT(vocab_size=H.vocab_size, num_layers=H.num_layers, model_dim=H.model_dim, num_heads=H.num_heads,
                    num_kv_heads=H.num_kv_heads, mlp_mult=H.mlp_mult, tie_embeddings=H.tie_embeddings,
                    tied_embed_init_std=H.tied_embed_init_std, logit_softcap=H.logit_softcap, rope_base=H.rope_base,
                    qk_gain_init=H.qk_gain_init)
    if bf16:
        model = model.bfloat16()
        for m in model.modules():
            if isinstance(m, mod.CastedLinear):
                m.float()
        mod.restore_low_dim_params_to_fp32(model)
    init = {k: v.detach().clone() for k, v in model.state_dict().items()}
    pats = mod.CONTROL_TENSOR_NAME_PATTERNS
    named = list(model.blocks.named_parameters())
    matrix = [p for n, p in named if p.ndim == 2 and not any(s in n for s in pats)]
    scalar = [p for n, p in named if p.ndim < 2 or any(s in n for s in pats)]
    if model.skip_weights.numel() > 0:
        scalar.append(model.skip_weights)
    adam = dict(betas=(H.beta1, H.beta2), eps=H.adam_eps)
    opt_tok = torch.optim.Adam([{"params": [model.tok_emb.weight], "lr": H.tied_embed_lr, "base_lr": H.tied_embed_lr}], **adam)
    opt_muon = mod.Muon(matrix, lr=H.matrix_lr, momentum=H.muon_momentum, backend_steps=H.muon_backend_steps)
    for g in opt_muon.param_groups:
        g["base_lr"] = H.matrix_lr
    opt_scalar = torch.optim.Adam([{"params": scalar, "lr": H.scalar_lr, "base_lr": H.scalar_lr}], **adam)
    opts = [opt_tok, opt_muon, opt_scalar]
    accum = int(env["GRAD_ACCUM_STEPS"])
    loader = mod.DistributedTokenLoader(train_glob, 0, 1, torch.device("cpu"))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
    losses = []
    for step in range(steps):
        for o in opts:
            o.zero_grad(set_to_none=True)
        total = torch.zeros(())
        for _ in range(accum):
            x, y = loader.next_batch(H.train_batch_tokens, H.train_seq_len, accum)
            with autocast:
                loss = model(x, y)
            total += loss.detach()
            (loss * (1.0 / accum)).backward()
        total /= accum
        frac = min(step / H.muon_momentum_warmup_steps, 1.0) if H.muon_momentum_warmup_steps > 0 else 1.0
        for g in opt_muon.param_groups:
            g["momentum"] = (1 - frac) * H.muon_momentum_warmup_start + frac * H.muon_momentum
        start = max(H.iterations - H.warmdown_iters, 0)
        scale = max((H.iterations - step) / max(H.warmdown_iters, 1), 0.0) if start <= step < H.iterations else 1.0
        for o in opts:
            for g in o.param_groups:
                g["lr"] = g["base_lr"] * scale
        for o in opts:
            o.step()
        losses.append(float(total))
    return losses, init, model.state_dict()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", help="bare git dir of openai/parameter-golf (default $PGOLF_CHALLENGE_REPO)")
    ap.add_argument("--ref", default="refs/heads/main")
    ap.add_argument("--official", help="path to an official train_gpt.py instead of --repo")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                    help="fp32: both bodies in float32 (Newton-Schulz in bf16 in both, as the official); "
                         "bf16: the official bf16 body under CPU autocast")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--golden", help="write the official per-step losses and the config to this JSON file")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    text, origin = official_source(a)
    env = {**SMALL_ENV, "ITERATIONS": str(a.steps)}
    bf16 = a.precision == "bf16"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with env_vars(env):
            mod = import_official(text, tmp)
        train_glob = write_stream(tmp / "data", int(env["VOCAB_SIZE"]))
        t0 = time.perf_counter()
        off_losses, off_init, off_final = official_run(mod, train_glob, env, a.steps, bf16)
        t_off = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref_losses, ref_final = reference_run(train_glob, env, a.steps, bf16)
        t_ref = time.perf_counter() - t0
        # The same seed must give the same initial weights (same construction order).
        torch.manual_seed(int(env["SEED"]))
        with env_vars(env):
            from reference_impl.model import GPT, to_bf16_body
            from reference_impl.train import Hyperparameters

            ref_model = GPT(Hyperparameters().model_config())
            ref_init = (to_bf16_body(ref_model) if bf16 else ref_model).state_dict()
    init_diff = max((ref_init[k].float() - off_init[official_name(k)].float()).abs().max().item() for k in ref_init)
    final_diff = max((ref_final[k].float() - off_final[official_name(k)].float()).abs().max().item() for k in ref_final)
    missing = set(off_init) - {official_name(k) for k in ref_init}
    sha = hashlib.sha256(text.encode()).hexdigest()[:16]
    print(f"official: {origin} (sha256 {sha}); precision {a.precision}; {a.steps} steps at {env['NUM_LAYERS']}x{env['MODEL_DIM']}, "
          f"vocab {env['VOCAB_SIZE']}, {env['TRAIN_BATCH_TOKENS']} tokens/step; torch {torch.__version__}, {a.threads} thread(s)")
    print(f"parameters: reference {sum(v.numel() for v in ref_init.values()):,}, official {sum(v.numel() for v in off_init.values()):,}"
          + (f"; official-only tensors: {sorted(missing)}" if missing else ""))
    print(f"initial weights max |diff| {init_diff:.3e}; final weights max |diff| {final_diff:.3e}")
    print("step  official    reference   |diff|")
    diffs = [abs(x - y) for x, y in zip(off_losses, ref_losses)]
    for i, (x, y, d) in enumerate(zip(off_losses, ref_losses, diffs), 1):
        print(f"{i:4d}  {x:.6f}  {y:.6f}  {d:.2e}")
    print(f"max |Δloss| {max(diffs):.3e} nats, mean {sum(diffs) / len(diffs):.3e} nats over {len(diffs)} steps "
          f"(official {t_off:.1f}s, reference {t_ref:.1f}s)")
    if a.golden:
        Path(a.golden).write_text(json.dumps({
            "source": f"{origin} sha256:{sha}", "recorded_with": f"benchmarks/parity_baseline.py --precision {a.precision}",
            "torch": torch.__version__, "precision": a.precision, "env": env, "steps": a.steps,
            "official_losses": [round(x, 7) for x in off_losses],
            "reference_losses_at_recording": [round(x, 7) for x in ref_losses],
        }, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {a.golden}")


if __name__ == "__main__":
    main()
