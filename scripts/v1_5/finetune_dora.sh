#!/usr/bin/env bash
# DoRA (Liu et al. 2024): LoRA plus a trained magnitude per output channel (peft's use_dora), rank R.
#   [MIX=4task] bash scripts/v1_5/finetune_dora.sh [OUT] [more train.py flags]   (settings: common.sh)
source "$(dirname "$0")/common.sh"
finetune "${1:-$CKPT/dora}" zero3.json --method dora "${@:2}"
