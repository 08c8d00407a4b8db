#!/usr/bin/env bash
# Individual: one rank-R LoRA per task, each trained on its own task only (OUT/<task>/, listed in
# OUT/individual.json); evaluate with scripts/eval_individual.py. The merge_* recipes combine these adapters.
#   [MIX=4task] bash scripts/v1_5/finetune_individual.sh [OUT] [more train.py flags]   (settings: common.sh)
source "$(dirname "$0")/common.sh"
finetune "${1:-$CKPT/individual}" zero3.json --method individual "${@:2}"
