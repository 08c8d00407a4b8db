#!/usr/bin/env bash
# --method dora on the text-only mixture of common.sh (a Llama / Qwen2 base).
#   [TASKS="..."] [BASE=...] bash scripts/text/finetune_dora.sh [OUT] [more train.py flags]
source "$(dirname "$0")/common.sh"
finetune "${1:-$CKPT/dora}" zero3.json --method dora "${@:2}"
