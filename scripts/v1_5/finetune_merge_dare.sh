#!/usr/bin/env bash
# Merge the individual adapters (finetune_individual.sh) with DARE: drop 50% of each task update at random,
# rescale the rest by 2, sum; refactored to a LoRA by SVD.
# No training and no DeepSpeed: one process merges with peft's add_weighted_adapter. Projectors: their mean.
#   [MIX=4task] [INDIVIDUAL=DIR] bash scripts/v1_5/finetune_merge_dare.sh [OUT] [--merge_weights 1,1 --merge_density 0.5 ...]
source "$(dirname "$0")/common.sh"
${PY:-python} train.py --model_name_or_path "$BASE" --data_path "$TRAIN" --method merge_dare \
  --merge_individual_dir "${INDIVIDUAL:-$CKPT/individual}" --merge_density 0.5 --seed "$SEED" \
  --output_dir "${1:-$CKPT/merge_dare}" "${@:2}"
