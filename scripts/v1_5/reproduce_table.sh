#!/usr/bin/env bash
# The paper's comparison table for llava-1.5-7b on a task mixture, end to end through the same entry points as
# scripts/tiny/reproduce_table.sh: data -> every row (finetune_<method>.sh) -> eval.run -> eval.tables.
#
#   [MIX=4task] [SEED=1] [ROWS="lora thanora"] bash scripts/v1_5/reproduce_table.sh
#
# Rows: scripts/table_rows.sh (every method, then the ThanoRA ablations). Settings: common.sh. Needs GPUs and the
# hub datasets lmms-lab/ScienceQA, lmms-lab/DocVQA, HuggingFaceM4/ChartQA, nlphuji/flickr30k. A finished step is
# skipped when the script runs again (delete a row's folder to redo it). Run it once per SEED; the table of the
# last run covers every seed run so far (mean ± std).
source "$(dirname "$0")/common.sh"
source scripts/table_rows.sh
ROWS=${ROWS:-$TABLE_ROWS}
PY=${PY:-python}
RESULTS=${RESULTS:-playground/results/llava-v1.5-7b-$MIX}

# 1. Data. Training splits go to TRAIN_ROOT and test splits to EVAL_ROOT: Flickr30k's Karpathy train and test
#    parts both come from the hub's only split ("test") and would otherwise overwrite each other's files.
for t in $TASKS; do
  case $t in
    flickr30k) train=(--dataset nlphuji/flickr30k --split test --karpathy-split train)
               test=(--dataset nlphuji/flickr30k --split test --karpathy-split test) test_split=test ;;
    docvqa)    train=(--split train) test=(--split validation) test_split=validation ;;  # test has no answers
    *)         train=(--split train) test=(--split test) test_split=test ;;
  esac
  [ -f "$(train_file $t)" ] || $PY -m scripts.prepare_data.$t "${train[@]}" --output-dir "$TRAIN_ROOT"
  [ -f "$EVAL_ROOT/$t/${test_split}_questions.jsonl" ] || $PY -m scripts.prepare_data.$t "${test[@]}" --output-dir "$EVAL_ROOT"
done
BENCHES=$(for t in $TASKS; do printf '%s,' "$(benchmark_of $t)"; done)
TASK_BENCHES=$(for t in $TASKS; do printf '%s=%s,' $t "$(benchmark_of $t)"; done)
EVAL_FLAGS=(--model-base "$BASE" --data-root "$EVAL_ROOT" --batch-size 16 --seed "$SEED")

# 2. Every row: train (or merge), then evaluate on every task's benchmark (individual: each adapter on its own task).
for row in $ROWS; do
  out=$CKPT/$row
  if [ ! -f $out/trainer_state.json ] && [ ! -f $out/individual.json ] && [ ! -f $out/merge.json ]; then
    bash scripts/v1_5/finetune_$(row_method $row).sh "$out" $(row_flags $row)
  fi
  if [ $row = individual ]; then
    $PY scripts/eval_individual.py --individual-dir "$out" --task-benchmarks "${TASK_BENCHES%,}" \
      --output-dir "$RESULTS/seed$SEED/$row" "${EVAL_FLAGS[@]}"
  else
    $PY -m eval.run --model-path "$out" --benchmarks "${BENCHES%,}" --output-dir "$RESULTS/seed$SEED/$row" \
      --method $row "${EVAL_FLAGS[@]}"
  fi
done

# 3. The table: methods as rows, mean ± std over the seeds evaluated so far.
$PY -m eval.tables "$RESULTS"/seed*/*/scores.json --benchmarks "${BENCHES%,}" --output "$RESULTS/table"
echo "table: $RESULTS/table.md"
