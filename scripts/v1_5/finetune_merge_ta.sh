#!/usr/bin/env bash
# Merge the individual adapters (finetune_individual.sh) with task arithmetic: the exact sum of the task updates.
# No training and no DeepSpeed: one process merges with peft's add_weighted_adapter. Projectors: their mean.
#   [MIX=4task] [INDIVIDUAL=DIR] bash scripts/v1_5/finetune_merge_ta.sh [OUT] [--merge_weights 1,1 ...]
source "$(dirname "$0")/common.sh"
${PY:-python} train.py --model_name_or_path "$BASE" --data_path "$TRAIN" --method merge_ta \
  --merge_individual_dir "${INDIVIDUAL:-$CKPT/individual}" --seed "$SEED" \
  --output_dir "${1:-$CKPT/merge_ta}" "${@:2}"
