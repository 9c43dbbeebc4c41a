#!/usr/bin/env bash
# One real short run of the reference through `pgolf reproduce` on whatever this machine has
# (GPU when visible): export a record with `pgolf train --preset ci`, then re-run it and compare.
# Usage: bash benchmarks/reproduce_reference_gpu.sh OUTDIR   (no sandbox: bwrap is often absent on GPU hosts)
set -u
OUT=${1:-/tmp/pgolf-gpu}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
nvidia-smi -L || true
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"
rm -rf /tmp/pgolf-gpu-rec /tmp/pgolf-gpu-run
t0=$(date +%s)
$PY -m auditor train --preset ci --nproc 1 --set COMPILE=0 --out /tmp/pgolf-gpu-rec/2026-11-05_RefGPU --data /tmp/pgolf-gpu-data 2>&1 | tail -5
t1=$(date +%s)
$PY -m auditor reproduce /tmp/pgolf-gpu-rec/2026-11-05_RefGPU --nproc 1 --no-sandbox --data /tmp/pgolf-gpu-data/datasets/stdlib400k_sp384 --tokenizer /tmp/pgolf-gpu-data/tokenizers/stdlib400k_384_bpe.model --run-dir /tmp/pgolf-gpu-run --timeout 200 -f text -o "$OUT/report.txt"
echo "reproduce exit $?"
t2=$(date +%s)
echo "train+export ${t1}-${t0}: $((t1 - t0)) s; reproduce: $((t2 - t1)) s"
cat "$OUT/report.txt"
cp /tmp/pgolf-gpu-run/report.json /tmp/pgolf-gpu-run/manifest.json /tmp/pgolf-gpu-run/plan.txt "$OUT/" 2>/dev/null
cp /tmp/pgolf-gpu-run/seed_1337/console.txt "$OUT/console_seed1337.txt" 2>/dev/null
cp /tmp/pgolf-gpu-rec/2026-11-05_RefGPU/train_seed1337.log "$OUT/claimed_seed1337.log" 2>/dev/null
