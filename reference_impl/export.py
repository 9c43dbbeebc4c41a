"""Record export: one self-contained train_gpt.py generated from this package (so the code that
runs is the code that is counted), the runs that produce its logs, and the record folder —
README.md, submission.json, train_seed<S>.log — that `pgolf audit` reads.

The generated script is the package's modules inlined in dependency order: module docstrings,
`from __future__` lines and `from reference_impl.… import …` lines are dropped (every inlined
name is unique across the modules, which tests check), and a `__main__` guard calls train.main().
"""
from __future__ import annotations

import ast
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
INLINE_MODULES = ("data", "model", "muon", "bpb", "artifact", "train")
SCRIPT_NAME = "train_gpt.py"
ENV_RE = re.compile(r'_env\("([A-Z0-9_]+)", ([^)]*?)\)')

ENV_DOC = {
    "DATA_PATH": "directory with fineweb_train_*.bin and fineweb_val_*.bin shards",
    "TOKENIZER_PATH": "SentencePiece .model used for the byte tables of val_bpb",
    "RUN_ID": "log file name: logs/<RUN_ID>.txt",
    "SEED": "torch/numpy seed",
    "VOCAB_SIZE": "must equal the tokenizer's size",
    "NUM_LAYERS": "transformer blocks",
    "MODEL_DIM": "residual width",
    "NUM_HEADS": "query heads",
    "NUM_KV_HEADS": "key/value heads (grouped-query attention)",
    "MLP_MULT": "MLP hidden = MLP_MULT * MODEL_DIM (ReLU^2)",
    "ROPE_BASE": "rotary embedding base",
    "LOGIT_SOFTCAP": "tanh softcap of the logits (0 = off)",
    "QK_GAIN_INIT": "initial per-head query gain (0 = no gain parameter)",
    "UNET_SKIPS": "1: the first half of the blocks feeds the second half through learned skip weights",
    "RESID_MIX": "1: each block mixes its input with the initial embedding (learned, starts at identity)",
    "TIED_EMBED_INIT_STD": "init std of the tied embedding",
    "MLP_NEG_SLOPE": "MLP activation: 0 = ReLU^2, >0 = LeakyReLU(slope)^2",
    "QAT_BITS": "0 = off; 6 or 8: block matrices are fake-quantised per row in training (straight-through)",
    "EMA_DECAY": "0 = off; else the exported and scored weights are an EMA of the training weights",
    "ITERATIONS": "maximum training steps",
    "WARMUP_STEPS": "untimed priming steps, undone before training",
    "WARMDOWN_ITERS": "linear LR warm-down length (in steps; in time when a wall-clock cap is set)",
    "MAX_WALLCLOCK_SECONDS": "training-time cap, warm-up and validation excluded (0 = none)",
    "VAL_LOSS_EVERY": "validate every N steps (0 = only at the end)",
    "TRAIN_LOG_EVERY": "print a train_loss line every N steps (and the first 10)",
    "TRAIN_BATCH_TOKENS": "tokens per optimizer step over all ranks",
    "TRAIN_SEQ_LEN": "training and evaluation window",
    "GRAD_ACCUM_STEPS": "micro-steps per step (0 = 8 // world_size)",
    "VAL_BATCH_SIZE": "validation tokens per forward over all ranks",
    "VAL_MAX_TOKENS": "use only the first N validation tokens (0 = the whole split)",
    "EVAL_STRIDE": "also score with sliding windows of this stride; that score is printed last (0 = off)",
    "MATRIX_LR": "Muon learning rate (block matrices)",
    "EMBED_LR": "Adam learning rate (tied embedding)",
    "SCALAR_LR": "Adam learning rate (per-channel gains)",
    "MUON_MOMENTUM": "Muon Nesterov momentum",
    "MUON_MOMENTUM_WARMUP_START": "Muon momentum at step 0, raised linearly to MUON_MOMENTUM",
    "MUON_MOMENTUM_WARMUP_STEPS": "steps of that momentum warm-up (0 = none)",
    "MUON_NS_BF16": "1: Newton-Schulz in bfloat16 (the official precision), 0: float32",
    "MUON_BACKEND_STEPS": "Newton-Schulz iterations",
    "BETA1": "Adam beta1",
    "BETA2": "Adam beta2",
    "ADAM_EPS": "Adam epsilon",
    "GRAD_CLIP_NORM": "global gradient-norm clip (0 = off)",
    "QUANT_BITS": "artifact weights: 8 (int8) or 6 (packed int6), per-row fp16 scales",
    "COMPRESSOR": "artifact compression: zlib (level 9) or zstd (level 22)",
    "QUANT_MIN_NUMEL": "float tensors up to this size stay fp16/fp32 instead of being quantised",
    "QUANT_FP16_EMBED": "1: store the tied embedding as fp16 instead of quantising it",
    "QUANT_INT6_PACK": "1: int6 values packed 4 per 3 bytes; 0: one per byte (compresses better with zstd)",
    "QUANT_MIN_CLIP": "per-row clip floor: step = max(clip, this) / qmax (1.0 = the official 1/127 int8 scale floor)",
    "COMPILE": "torch.compile: 1 on, 0 off, -1 on for CUDA only",
    "BF16_BODY": "bf16 embedding and residual stream, fp32 weights cast at the matmul: 1 on, 0 off, -1 on for CUDA only",
}


class ExportError(RuntimeError):
    pass


def env_defaults() -> list[tuple[str, str]]:
    return ENV_RE.findall((PACKAGE_DIR / "train.py").read_text(encoding="utf-8"))


def _strip_module(source: str, name: str) -> str:
    tree = ast.parse(source)
    drop: set[int] = set()
    body = tree.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        drop.update(range(body[0].lineno, body[0].end_lineno + 1))
    for node in body:
        if isinstance(node, ast.ImportFrom) and (node.module == "__future__" or (node.module or "").startswith("reference_impl")):
            drop.update(range(node.lineno, node.end_lineno + 1))
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            drop.update(range(node.lineno, node.end_lineno + 1))
    for node in ast.walk(tree):
        # A package import inside a function would not resolve in the single file.
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("reference_impl") and node.col_offset > 0:
            raise ExportError(f"reference_impl/{name}.py:{node.lineno}: nested package import cannot be inlined")
    lines = source.splitlines()
    kept = [line for i, line in enumerate(lines, 1) if i not in drop]
    return "\n".join(kept).strip("\n")


def _header() -> str:
    rows = []
    for name, default in env_defaults():
        rows.append(f"  {name:<22} default {default:<40} {ENV_DOC.get(name, '')}".rstrip())
    return (
        '"""Parameter Golf run, generated by pgolf from its reference_impl package (do not edit by hand:\n'
        "edit reference_impl/ and re-export). Single file; configured only by environment variables.\n\n"
        "Run from the record folder:\n"
        "  torchrun --standalone --nproc_per_node=N train_gpt.py\n"
        "It writes logs/<RUN_ID>.txt, final_model.pt and final_model.int<BITS>.ptz into the current directory.\n\n"
        "Environment variables:\n" + "\n".join(rows) + '\n"""\n'
    )


def generate_script() -> str:
    parts = [_header(), "from __future__ import annotations\n"]
    for name in INLINE_MODULES:
        src = (PACKAGE_DIR / f"{name}.py").read_text(encoding="utf-8")
        parts.append(f"# ---- reference_impl/{name}.py " + "-" * (60 - len(name)) + "\n")
        parts.append(_strip_module(src, name) + "\n\n")
    parts.append('\nif __name__ == "__main__":\n    main()\n')
    text = "\n".join(parts)
    compile(text, SCRIPT_NAME, "exec")
    return text


def write_script(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SCRIPT_NAME
    path.write_text(generate_script(), encoding="utf-8")
    return path


# ---------------------------------------------------------------- running and reading the logs

FINAL_RE = re.compile(r"^(?P<label>\S+_exact) val_loss:(?P<loss>[\d.]+) val_bpb:(?P<bpb>[\d.]+)", re.M)
SIZE_RE = re.compile(r"^Total submission size (?P<tag>\S+): (?P<n>\d+) bytes", re.M)
MODEL_RE = re.compile(r"^Serialized model (?P<tag>\S+): (?P<n>\d+) bytes", re.M)
CODE_RE = re.compile(r"^Code size: (\d+) bytes", re.M)
UNIGRAM_RE = re.compile(r"^unigram_bpb:([\d.]+)", re.M)
STOP_RE = re.compile(r"^stopping_early: wallclock_cap train_time:(\d+)ms step:(\d+)/(\d+)", re.M)
STEP_VAL_RE = re.compile(r"^step:(\d+)/(\d+) val_loss:[\d.]+ val_bpb:[\d.]+ train_time:(\d+)ms", re.M)
WORLD_RE = re.compile(r"^world_size:(\d+)", re.M)


@dataclass
class SeedRun:
    seed: int
    log: Path
    val_loss: float
    val_bpb: float
    label: str
    bytes_total: int
    bytes_model: int
    bytes_code: int
    train_time_ms: int
    steps: int
    unigram_bpb: float | None
    wall_s: float
    world_size: int


def read_run(seed: int, log: Path, wall_s: float = 0.0) -> SeedRun:
    text = log.read_text(encoding="utf-8", errors="replace")
    finals = FINAL_RE.findall(text)
    sizes, models, codes = SIZE_RE.findall(text), MODEL_RE.findall(text), CODE_RE.findall(text)
    if not finals or not sizes or not codes:
        tail = "\n".join(text.splitlines()[-15:])
        raise ExportError(f"{log}: the run did not finish (no final score or size line). Last lines:\n{tail}")
    label, loss, bpb = finals[-1]
    stops, vals = STOP_RE.findall(text), STEP_VAL_RE.findall(text)
    if stops:
        train_ms, steps = int(stops[-1][0]), int(stops[-1][1])
    else:
        train_ms, steps = int(vals[-1][2]), int(vals[-1][0])
    uni = UNIGRAM_RE.findall(text)
    world = WORLD_RE.findall(text)
    return SeedRun(seed, log, float(loss), float(bpb), label, int(sizes[-1][1]), int(models[-1][1]), int(codes[-1]),
                   train_ms, steps, float(uni[-1]) if uni else None, wall_s, int(world[-1]) if world else 1)


def torchrun_argv(nproc: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", SCRIPT_NAME]


def run_seed(folder: Path, env: dict[str, str], seed: int, nproc: int, timeout_s: float | None = None) -> SeedRun:
    run_env = {**os.environ, **env, "SEED": str(seed), "RUN_ID": f"train_seed{seed}"}
    run_env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    log = folder / f"train_seed{seed}.log"
    for attempt in range(2):
        t0 = time.time()
        with open(log, "wb") as out:
            proc = subprocess.run(torchrun_argv(nproc), cwd=folder, env=run_env, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=timeout_s)
        wall = time.time() - t0
        # --standalone picks a free port before binding it; another run can take it in between.
        if proc.returncode == 0 or "Address already in use" not in log.read_text(errors="replace"):
            break
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise ExportError(f"torchrun exited {proc.returncode} for seed {seed}; {log}:\n{tail}")
    return read_run(seed, log, wall)


# ---------------------------------------------------------------- the record folder

@dataclass
class RecordInfo:
    name: str
    author: str = "pgolf reference"
    github_id: str = "pgolf"
    blurb: str = ""
    track: str = "10min_16mb"
    hardware: str = ""
    env: dict[str, str] = field(default_factory=dict)
    env_display: dict[str, str] = field(default_factory=dict)  # what README shows (paths via $PGOLF_DATA)
    prelude: list[str] = field(default_factory=list)  # commands that make the data
    nproc: int = 1
    byte_check: str = ""  # the custom-tokenizer proof, when the data build made one


def submission_json(info: RecordInfo, runs: list[SeedRun]) -> dict:
    import torch

    bpbs = [r.val_bpb for r in runs]
    return {
        "author": info.author,
        "github_id": info.github_id,
        "name": info.name,
        "blurb": info.blurb,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "track": info.track,
        "val_loss": round(statistics.fmean(r.val_loss for r in runs), 8),
        "val_bpb": round(statistics.fmean(bpbs), 8),
        "val_bpb_std": round(statistics.stdev(bpbs), 8) if len(bpbs) > 1 else 0.0,
        "bytes_total": max(r.bytes_total for r in runs),
        "bytes_code": runs[0].bytes_code,
        "seeds": [r.seed for r in runs],
        "seed_results": {
            str(r.seed): {"val_bpb": r.val_bpb, "val_loss": r.val_loss, "artifact_bytes": r.bytes_total,
                          "steps": r.steps, "train_time_s": round(r.train_time_ms / 1000.0, 3)}
            for r in runs
        },
        "hardware": info.hardware,
        "pytorch_version": torch.__version__,
    }


def readme(info: RecordInfo, runs: list[SeedRun], sub: dict) -> str:
    env_line = " ".join(f"{k}={shlex.quote(v) if '$' not in v else v}" for k, v in info.env_display.items())
    rows = "\n".join(
        f"| {r.seed} | {r.val_bpb:.8f} | {r.val_loss:.8f} | {r.steps} | {r.train_time_ms / 1000:.1f} | {r.bytes_total:,} | "
        f"{'' if r.unigram_bpb is None else f'{r.unigram_bpb:.4f}'} | `{r.log.name}` |"
        for r in runs
    )
    prelude = "\n".join(info.prelude)
    seeds = " ".join(str(r.seed) for r in runs)
    return f"""# {info.name}

{info.blurb}

**val_bpb {sub['val_bpb']:.8f}** (mean of {len(runs)} seed{'s' if len(runs) > 1 else ''}, std {sub['val_bpb_std']:.8f});
artifact {sub['bytes_total']:,} bytes (code {sub['bytes_code']:,} + int8/zlib model) against the 16,000,000-byte cap.
Hardware: {info.hardware}.

`train_gpt.py` is generated by `pgolf train` from pgolf's `reference_impl/` package (model, Muon, data,
exact bpb, artifact, training loop inlined into one file); it is the exact file that produced these logs.
Score line: `{runs[0].label}` (the decompressed int8 artifact, evaluated again).
{chr(10) + info.byte_check + chr(10) if info.byte_check else ""}
## Results

| seed | val_bpb | val_loss | steps | train time (s) | total bytes | unigram bpb (same split) | log |
|---|---|---|---|---|---|---|---|
{rows}

## Reproduce

```bash
{prelude}
cd {info.name}   # this folder
for SEED in {seeds}; do
  {env_line} SEED=$SEED RUN_ID=train_seed$SEED \\
    torchrun --standalone --nproc_per_node={info.nproc} train_gpt.py > train_seed$SEED.log 2>&1
done
```

Configuration is by environment variables only (documented at the top of `train_gpt.py`); everything
not set above takes the script's default. Each run writes `logs/<RUN_ID>.txt`, `final_model.pt` and the
artifact `final_model.int8.ptz` into the current directory.
"""


def clean_folder(folder: Path, keep_artifact: bool) -> None:
    # Model blobs stay out of the record (the logs carry the sizes); the script's own logfiles
    # duplicate the console captures.
    for p in folder.glob("final_model*"):
        if not (keep_artifact and p.suffix == ".ptz" and p.stat().st_size <= 1_000_000):
            p.unlink()
    logs = folder / "logs"
    if logs.is_dir():
        for p in logs.iterdir():
            p.unlink()
        logs.rmdir()


def write_record(folder: Path, info: RecordInfo, runs: list[SeedRun], keep_artifact: bool = False) -> dict:
    clean_folder(folder, keep_artifact)
    sub = submission_json(info, runs)
    (folder / "submission.json").write_text(json.dumps(sub, indent=2) + "\n", encoding="utf-8")
    (folder / "README.md").write_text(readme(info, runs, sub), encoding="utf-8")
    return sub
