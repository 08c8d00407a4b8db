#!/usr/bin/env bash
# The paper's comparison table on the embedded minimix benchmark, end to end on a CPU, through the same entry
# points as scripts/v1_5/reproduce_table.sh: minimix -> every method with train.py -> eval.run -> eval.tables.
#
#   scripts/tiny/reproduce_table.sh [OUT]          # default OUT=playground/results/table_tiny
#
# Environment (all optional):
#   METHODS  table rows, in order (default: every row of scripts/table_rows.sh)
#   BASE     tiny LLaVA base (default playground/checkpoints/tiny-llava-base, built by pretrain_base.sh if missing)
#   DATA     minimix folder (default playground/data/minimix, built if missing)
#   R        LoRA rank of every row (default 8; MoE-LoRA matches its budget itself, see moelora_method.py)
#   EPOCHS   training epochs (default 1), or STEPS: max steps per run (overrides EPOCHS)
#   LIMIT    questions per benchmark (default: all)   SEED (default 0)   PREVIEW: ThanoRA/CorDA samples per task (64)
# A step whose output exists is skipped, so an interrupted chain resumes; delete a method's folder to redo it.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
OUT=${1:-playground/results/table_tiny}
BASE=${BASE:-playground/checkpoints/tiny-llava-base}
DATA=${DATA:-playground/data/minimix}
R=${R:-8}
SEED=${SEED:-0}
PREVIEW=${PREVIEW:-64}
LENGTH=${STEPS:+--max_steps $STEPS}
LENGTH=${LENGTH:---num_train_epochs ${EPOCHS:-1}}
TASKS="vqa ocr caption mcq"
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
source scripts/table_rows.sh
MERGE_FROM=$OUT/individual
METHODS=${METHODS:-$TABLE_ROWS}

[ -f $DATA/manifest.json ] || $PY -m llava_thanora.data.minimix --output_dir $DATA
source scripts/tiny/cached_minimix.sh
check_minimix_version $PY $DATA
[ -f $BASE/config.json ] || bash scripts/tiny/pretrain_base.sh $BASE $DATA
check_base_stamp $DATA $BASE
TRAIN=$(for t in $TASKS; do printf '%s,' $DATA/train/$t.json; done)
BENCHES=$(for t in $TASKS; do printf 'minimix_%s,' $t; done)
TASK_BENCHES=$(for t in $TASKS; do printf '%s=minimix_%s,' $t $t; done)

EVAL_FLAGS=(--model-base $BASE --data-root $DATA --batch-size 16 --seed $SEED ${LIMIT:+--limit $LIMIT} --no-progress)

# Every row: same rank, alpha = 2r, same schedule, the projector trained alongside (LLaVA's task-LoRA recipe).
# Method-owned flags (preview samples, the merged run) come from method_flags; merge weights stay 1 per task.
COMMON="--model_name_or_path $BASE --data_path $TRAIN --image_folder $DATA/images --lora_r $R --lora_alpha $((2 * R))
  --tune_mm_projector --mm_projector_lr 2e-4 --learning_rate 2e-3 --lr_scheduler_type cosine --warmup_steps 0.03
  --per_device_train_batch_size 8 --model_max_length 512 $LENGTH
  --save_strategy no --logging_steps 10 --report_to none --seed $SEED --disable_tqdm true"

for m in $METHODS; do
  if [[ $m == merge_* && ! -f $OUT/individual/individual.json ]]; then
    echo "$m merges the individual adapters: put 'individual' before it in METHODS" >&2; exit 1
  fi
  # trainer_state.json (training), individual.json and merge.json mark a finished step
  if [ ! -f $OUT/$m/trainer_state.json ] && [ ! -f $OUT/$m/individual.json ] && [ ! -f $OUT/$m/merge.json ]; then
    $PY train.py $COMMON --method $(row_method $m) $(method_flags $(row_method $m)) $(row_flags $m) --output_dir $OUT/$m
  fi
  if [ $m = individual ]; then  # each task's adapter on its own task only, joined into one row
    $PY scripts/eval_individual.py --individual-dir $OUT/individual --task-benchmarks ${TASK_BENCHES%,} \
      --output-dir $OUT/results/individual "${EVAL_FLAGS[@]}"
  else
    $PY -m eval.run --model-path $OUT/$m --benchmarks ${BENCHES%,} --output-dir $OUT/results/$m --method $m \
      "${EVAL_FLAGS[@]}"
  fi
done
$PY -m eval.tables $(for m in $METHODS; do printf '%s ' $OUT/results/$m/scores.json; done) \
  --benchmarks ${BENCHES%,} --output $OUT/table
echo "table: $OUT/table.md"
