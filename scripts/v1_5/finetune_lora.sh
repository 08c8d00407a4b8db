#!/usr/bin/env bash
# LoRA at rank R on every linear layer of the language model, trained on the task mixture: the reference row.
#   [MIX=4task] bash scripts/v1_5/finetune_lora.sh [OUT] [more train.py flags]   (settings: common.sh)
source "$(dirname "$0")/common.sh"
finetune "${1:-$CKPT/lora}" zero3.json --method lora "${@:2}"
