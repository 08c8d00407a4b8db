#!/usr/bin/env bash
# The text-only comparison (commonsense eight, optionally GSM8K) for a Llama / Qwen2 base, end to end like
# scripts/v1_5/reproduce_table.sh: LLM-Adapters' files -> converters -> every row -> eval.run -> eval.tables.
#
#   DATA=path/to/LLM-Adapters [BASE=...] [TASKS="boolq piqa ..."] [ROWS="lora thanora"] bash scripts/text/reproduce_table.sh
#
# Needs GPUs and a local LLM-Adapters checkout (dataset/<name>/train.json and test.json per task).
source "$(dirname "$0")/common.sh"
ROWS=${ROWS:-"lora dora thanora"}
PY=${PY:-python}
RESULTS=${RESULTS:-playground/results/text-$(basename "$BASE")}

for t in $TASKS; do
  dir=$DATA/dataset/$(source_dir $t)
  [ -f "$TRAIN_ROOT/train/${t}_train.json" ] || $PY -m scripts.prepare_data.$(converter $t) $(task_flag $t) \
    --dataset "$dir/train.json" --split train --output-dir "$TRAIN_ROOT"
  [ -f "$EVAL_ROOT/$t/test_questions.jsonl" ] || $PY -m scripts.prepare_data.$(converter $t) $(task_flag $t) \
    --dataset "$dir/test.json" --split test --output-dir "$EVAL_ROOT"
done
BENCHES=$(for t in $TASKS; do printf '%s,' $t; done)

for row in $ROWS; do
  out=$CKPT/$row
  [ -f $out/trainer_state.json ] || bash scripts/text/finetune_$row.sh "$out"
  $PY -m eval.run --model-path "$out" --model-base "$BASE" --benchmarks "${BENCHES%,}" --data-root "$EVAL_ROOT" \
    --output-dir "$RESULTS/seed$SEED/$row" --method $row --seed "$SEED" --batch-size 16
done
$PY -m eval.tables "$RESULTS"/seed*/*/scores.json --benchmarks "${BENCHES%,}" --output "$RESULTS/table"
echo "table: $RESULTS/table.md"
