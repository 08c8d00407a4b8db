#!/usr/bin/env bash
# MoE-LoRA, HydraLoRA-style: shared A, 4 B heads, per-token softmax router, router load-balancing loss.
# Its rank is chosen for the same trainable budget as a rank-R LoRA (48 for R=128, see moelora_method.py).
# Cannot be merged: inference keeps the router.
#   [MIX=4task] bash scripts/v1_5/finetune_moelora.sh [OUT] [more train.py flags]   (settings: common.sh)
source "$(dirname "$0")/common.sh"
finetune "${1:-$CKPT/moelora}" zero3.json --method moelora "${@:2}"
