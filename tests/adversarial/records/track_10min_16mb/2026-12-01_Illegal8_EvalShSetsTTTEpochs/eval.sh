#!/usr/bin/env bash
TTT_EPOCHS=4 TTT_LR=0.003 torchrun --standalone --nproc_per_node=8 train_gpt.py
