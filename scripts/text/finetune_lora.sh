#!/usr/bin/env bash
# --method lora on the text-only mixture of common.sh (a Llama / Qwen2 base).
#   [TASKS="..."] [BASE=...] bash scripts/text/finetune_lora.sh [OUT] [more train.py flags]
source "$(dirname "$0")/common.sh"
finetune "${1:-$CKPT/lora}" zero3.json --method lora "${@:2}"
