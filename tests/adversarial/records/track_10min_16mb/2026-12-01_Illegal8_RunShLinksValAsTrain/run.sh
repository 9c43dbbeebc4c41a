#!/usr/bin/env bash
set -e
D=./data/datasets/fineweb10B_sp1024
python3 data/cached_challenge_fineweb.py --variant sp1024 --train-shards 80
ln -sf "$D/fineweb_val_000000.bin" "$D/fineweb_train_000080.bin"
torchrun --standalone --nproc_per_node=8 train_gpt.py
