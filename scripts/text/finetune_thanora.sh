#!/usr/bin/env bash
# --method thanora on the text-only mixture of common.sh (a Llama / Qwen2 base).
#   [TASKS="..."] [BASE=...] bash scripts/text/finetune_thanora.sh [OUT] [more train.py flags]
source "$(dirname "$0")/common.sh"
finetune "${1:-$CKPT/thanora}" zero3.json --method thanora --thanora_preview_samples 500 "${@:2}"
