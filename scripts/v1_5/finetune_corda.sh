#!/usr/bin/env bash
# CorDA (Yang et al. 2024, instruction-previewed mode): the adapter starts from the SVD of W C, C the covariance
# of each layer's inputs on the first 500 training samples of each task (the same samples ThanoRA previews).
# ZeRO-2, not ZeRO-3: the decomposition needs the full weights at build time. peft keeps one float32 input
# covariance per adapted layer during the preview (about 28 GB on each GPU for llava-1.5-7b): use 80 GB GPUs.
#   [MIX=4task] bash scripts/v1_5/finetune_corda.sh [OUT] [more train.py flags]   (settings: common.sh)
source "$(dirname "$0")/common.sh"
finetune "${1:-$CKPT/corda}" zero2.json --method corda --corda_preview_samples 500 "${@:2}"
