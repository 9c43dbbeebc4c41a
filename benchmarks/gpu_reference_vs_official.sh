#!/bin/bash
# One GPU, one run, side by side: pgolf's `--preset baseline` script (generated from reference_impl/)
# against the official baseline train_gpt.py, on the same shards with the same env and seed, one process
# each (grad_accum 8, 524,288 tokens/step), 80 steps under the default 600 s cap (so the LR stays at 1: the
# warm-down is time-based and never starts). Prints ms/step and val_bpb at
# step 80 for both, the difference, and the int8+zlib artifact sizes.
#
#   OFFICIAL=/path/to/official/train_gpt.py bash benchmarks/gpu_reference_vs_official.sh
#   PGOLF_CHALLENGE_REPO=/path/to/parameter-golf.git bash benchmarks/gpu_reference_vs_official.sh
#
# The official script is read from a copy of the challenge repository at run time; never commit it.
# Data: this Python's standard-library sources with a 1024-piece tokenizer, built here (the device
# machine reaches nothing outside), or DATA_PATH/TOKENIZER_PATH of FineWeb sp1024 shards if you have them.
# Knobs: ITERS (80), TLIM (seconds per run, 600), OUT (./bench_out), NPROC (1).
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-$(pwd)/bench_out}; mkdir -p "$OUT"
ITERS=${ITERS:-80}; TLIM=${TLIM:-600}; NPROC=${NPROC:-1}
WORK=$(mktemp -d); mkdir -p "$WORK/ours" "$WORK/official"
if [ -n "${OFFICIAL:-}" ]; then
  cp "$OFFICIAL" "$WORK/official/train_gpt.py"
elif [ -n "${PGOLF_CHALLENGE_REPO:-}" ]; then
  git --git-dir "$PGOLF_CHALLENGE_REPO" show refs/heads/main:train_gpt.py > "$WORK/official/train_gpt.py"
else
  echo "set OFFICIAL=/path/to/train_gpt.py or PGOLF_CHALLENGE_REPO=/path/to/parameter-golf.git" >&2; exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 - "$WORK" <<'PY' 2>&1 | tee "$OUT/data.txt"
import os, sys
from pathlib import Path
from reference_impl.export import write_script
work = Path(sys.argv[1])
write_script(work / "ours")
if not os.environ.get("DATA_PATH"):
    from reference_impl import corpus
    res = corpus.build(corpus.read_docs(corpus.stdlib_files(12_000_000)), work / "data", "stdlib", 1024)
    print(f"data: {res.dataset_dir} ({res.train_tokens:,} train / {res.val_tokens:,} val tokens)")
PY
DATA_PATH=${DATA_PATH:-$WORK/data/datasets/stdlib_sp1024}
TOKENIZER_PATH=${TOKENIZER_PATH:-$WORK/data/tokenizers/stdlib_1024_bpe.model}
COMMON="DATA_PATH=$DATA_PATH TOKENIZER_PATH=$TOKENIZER_PATH VOCAB_SIZE=1024 ITERATIONS=$ITERS WARMUP_STEPS=20
        WARMDOWN_ITERS=1200 MAX_WALLCLOCK_SECONDS=600 VAL_LOSS_EVERY=$ITERS TRAIN_LOG_EVERY=10 SEED=1337"
for who in official ours; do
  (cd "$WORK/$who" && env $COMMON RUN_ID=$who timeout "$TLIM" torchrun --standalone --nproc_per_node="$NPROC" train_gpt.py \
     > "$OUT/$who.log" 2>&1; echo "$who exit status $?")
done
python3 - "$OUT" "$ITERS" <<'PY'
import re, sys
from pathlib import Path
out, iters = Path(sys.argv[1]), int(sys.argv[2])
rows = {}
for who in ("official", "ours"):
    t = (out / f"{who}.log").read_text(errors="replace") if (out / f"{who}.log").is_file() else ""
    v = re.findall(rf"^step:{iters}/\d+ val_loss:([\d.]+) val_bpb:([\d.]+) train_time:(\d+)ms step_avg:([\d.]+)ms", t, re.M)
    q = re.findall(r"^final_int\d+_\w+_roundtrip_exact val_loss:([\d.]+) val_bpb:([\d.]+)", t, re.M)
    size = re.findall(r"^Serialized model int8\+zlib: (\d+) bytes", t, re.M)
    rows[who] = (float(v[-1][3]) if v else None, float(v[-1][1]) if v else None, float(q[-1][1]) if q else None,
                 int(size[-1]) if size else None)
print(f"{'':10} {'ms/step':>9} {'val_bpb@' + str(iters):>12} {'int8 rt bpb':>12} {'int8+zlib B':>12}")
for who, (ms, bpb, qb, sz) in rows.items():
    f = lambda x, s: "-" if x is None else format(x, s)
    print(f"{who:10} {f(ms, '9.2f')} {f(bpb, '12.4f')} {f(qb, '12.4f')} {f(sz, '12,d')}")
o, r = rows["official"], rows["ours"]
if o[0] and r[0]:
    print(f"ours/official ms/step {r[0] / o[0]:.3f} (goal <= 1); val_bpb diff {r[1] - o[1]:+.4f} (goal |diff| <= 0.01)")
PY
