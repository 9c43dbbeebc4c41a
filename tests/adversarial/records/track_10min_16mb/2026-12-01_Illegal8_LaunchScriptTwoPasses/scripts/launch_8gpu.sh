#!/bin/bash
export RESCORE_PASSES=2
export MIX_W=0.12
cd "$(dirname "$0")/.."
torchrun --standalone --nproc_per_node=8 train_gpt.py
