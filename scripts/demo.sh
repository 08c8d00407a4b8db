#!/usr/bin/env bash
# The embedded demo on a laptop CPU: build minimix, build the tiny LLaVA, train LoRA, save, merge.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=playground/data/minimix
BASE=playground/checkpoints/tiny-llava
OUT=playground/results/demo
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1

[ -f $DATA/manifest.json ] || $PY -m llava_thanora.data.minimix --output_dir $DATA
[ -f $BASE/config.json ] || $PY -m llava_thanora.model.tiny --output_dir $BASE
TRAIN=$DATA/train/vqa.json,$DATA/train/ocr.json,$DATA/train/caption.json,$DATA/train/mcq.json
$PY train.py --model_name_or_path $BASE --data_path $TRAIN --image_folder $DATA/images \
  --output_dir $OUT/lora --method lora --lora_r 8 --lora_alpha 16 --max_steps ${STEPS:-30} \
  --per_device_train_batch_size 8 --learning_rate 2e-3 --logging_steps 5 --save_steps 1000 --report_to none
$PY scripts/merge_lora_weights.py --model-path $OUT/lora --model-base $BASE --save-model-path $OUT/lora-merged
echo "adapter: $OUT/lora   merged model: $OUT/lora-merged"
