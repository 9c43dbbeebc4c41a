#!/bin/bash
# GPU side-by-side on one GPU: pgolf's generated train_gpt.py vs the official baseline train_gpt.py,
# same shards (this Python's stdlib sources, a 1024-piece tokenizer), same env, one process each.
#   OFFICIAL=/path/to/official/train_gpt.py ITERS=80 bash benchmarks/bench_reference_gpu.sh
# (the official script comes from the challenge repository; never commit it.) Logs go to $OUT (default ./bench_out).
export PYTHONUNBUFFERED=1
OUT=${OUT:-$(pwd)/bench_out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 - <<'PY' 2>&1 | tee "$OUT/data.txt"
from pathlib import Path
from reference_impl import corpus
from reference_impl.export import write_script
print(corpus.build(corpus.read_docs(corpus.stdlib_files(12_000_000)), Path('/tmp/pgolf_bench_data'), 'stdlib', 1024))
write_script(Path('/tmp/pgolf_bench_ours'))
PY
COMMON="DATA_PATH=/tmp/pgolf_bench_data/datasets/stdlib_sp1024 TOKENIZER_PATH=/tmp/pgolf_bench_data/tokenizers/stdlib_1024_bpe.model VOCAB_SIZE=1024 ITERATIONS=${ITERS:-200} WARMUP_STEPS=20 WARMDOWN_ITERS=50 MAX_WALLCLOCK_SECONDS=0 VAL_LOSS_EVERY=100 TRAIN_LOG_EVERY=25 SEED=1337"
(cd /tmp/pgolf_bench_ours && env $COMMON RUN_ID=ours timeout ${TLIM:-600} torchrun --standalone --nproc_per_node=1 train_gpt.py > "$OUT/ours.log" 2>&1; echo "ours rc=$?")
grep -E '^step:[0-9]+/[0-9]+ val|step_avg|^final|^Total submission size int8' "$OUT/ours.log" | tail -6
if [ -n "$OFFICIAL" ]; then
  mkdir -p /tmp/pgolf_bench_official && cp "$OFFICIAL" /tmp/pgolf_bench_official/train_gpt.py
  (cd /tmp/pgolf_bench_official && env $COMMON RUN_ID=official timeout ${TLIM:-600} torchrun --standalone --nproc_per_node=1 train_gpt.py > "$OUT/official.log" 2>&1; echo "official rc=$?")
  grep -E '^step:[0-9]+/[0-9]+ val|step_avg|^final|^Total submission size int8' "$OUT/official.log" | tail -6
fi
