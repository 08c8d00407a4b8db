#!/usr/bin/env bash
# ThanoRA: one rank-R LoRA split into a cooperative block and per-task subspaces sized by task heterogeneity,
# with the subspace-preserving penalty. Ablations: pass their flags (see scripts/table_rows.sh).
#   [MIX=4task] bash scripts/v1_5/finetune_thanora.sh [OUT] [more train.py flags]   (settings: common.sh)
source "$(dirname "$0")/common.sh"
finetune "${1:-$CKPT/thanora}" zero3.json --method thanora --thanora_preview_samples 500 "${@:2}"
