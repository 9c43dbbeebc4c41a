#!/usr/bin/env bash
set -euo pipefail
export NGRAM_EVAL=1
export NGRAM_ALPHA=0.35
for SEED in 1337 42 2025; do
  SEED=$SEED torchrun --standalone --nproc_per_node=8 train_gpt.py | tee train_seed$SEED.log
done
