#!/usr/bin/env bash
# `make demo`: the paper's story on a 2-core CPU, end to end, with the project's real code paths.
#   1. minimix: 4 heterogeneous visual tasks built offline (vqa, ocr, caption, mcq)
#   2. a tiny LLaVA base that sees and talks (LLaVA-style stage 1 + 2 on a generic description corpus; cached)
#   3. LoRA and ThanoRA at the same total rank on the 4-task mixture, with train.py
#   4. base / LoRA / ThanoRA evaluated with eval/ on the 4 test sets; one table
# Knobs (environment): STEPS, RANK, SEED, LIMIT (questions per task), TRAIN_PER_TASK, TEST_PER_TASK, TRAIN_THREADS,
# DATA, BASE, OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-playground/data/minimix}
BASE=${BASE:-playground/checkpoints/tiny-llava-base}
OUT=${OUT:-playground/results/demo}
STEPS=${STEPS:-500}
RANK=${RANK:-16}
SEED=${SEED:-0}
LIMIT=${LIMIT:-}
# Fixed thread counts (2 for the base and the evaluation, TRAIN_THREADS for each of the two adapter runs), so the
# numbers do not depend on the machine's core count: a CPU matmul's result depends on how it is split over threads.
# Other counts give other, equally deterministic numbers.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
TRAIN_THREADS=${TRAIN_THREADS:-1}
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 WANDB_MODE=offline
BENCHES=minimix_vqa,minimix_ocr,minimix_caption,minimix_mcq
step() { printf '\n==> %s\n' "$*"; }

step "1/5 minimix data -> $DATA"
if [ ! -f "$DATA/manifest.json" ]; then
  $PY -m llava_thanora.data.minimix --output_dir "$DATA" ${TRAIN_PER_TASK:+--train_per_task $TRAIN_PER_TASK} \
    ${TEST_PER_TASK:+--test_per_task $TEST_PER_TASK} ${TRAIN_PER_TASK:+--pretrain_samples $((2 * TRAIN_PER_TASK))}
fi

source scripts/tiny/cached_minimix.sh
check_minimix_version "$PY" "$DATA"

step "2/5 tiny LLaVA base -> $BASE"
[ -f "$BASE/config.json" ] || bash scripts/tiny/pretrain_base.sh "$BASE" "$DATA"
check_base_stamp "$DATA" "$BASE"

TRAIN=$DATA/train/vqa.json,$DATA/train/ocr.json,$DATA/train/caption.json,$DATA/train/mcq.json
COMMON=(--model_name_or_path "$BASE" --data_path "$TRAIN" --image_folder "$DATA/images" --lora_r "$RANK"
        --lora_alpha $((2 * RANK)) --lora_dropout 0.05 --max_steps "$STEPS" --per_device_train_batch_size 16
        --learning_rate 2e-3 --lr_scheduler_type cosine --warmup_steps 0.03 --logging_steps 10 --save_strategy no
        --report_to none --model_max_length 512 --seed "$SEED" --full_determinism
        --freeze_mm_mlp_adapter)  # the adapters alone are compared (LoRA-family runs train the projector by default)
# LoRA and ThanoRA train at the same time, TRAIN_THREADS (1) thread each: the tiny model's matmuls use a second
# thread poorly, so on 2 cores this is 1.3x faster than one run after the other on 2 threads each.
step "3/5 train lora and thanora at once (r=$RANK, $STEPS steps, $TRAIN_THREADS thread each) -> $OUT/{lora,thanora}"
mkdir -p "$OUT"
trap 'kill $(jobs -p) 2>/dev/null' EXIT  # an interrupted demo leaves no training behind
declare -A pid
for method in lora thanora; do
  OMP_NUM_THREADS=$TRAIN_THREADS $PY train.py "${COMMON[@]}" --method $method --output_dir "$OUT/$method" \
    --disable_tqdm true $([ $method = thanora ] && echo --thanora_preview_samples 128) > "$OUT/$method.log" 2>&1 &
  pid[$method]=$!
done
for method in lora thanora; do
  if ! wait "${pid[$method]}"; then
    tail -n 30 "$OUT/$method.log" >&2
    echo "error: training $method failed; its log: $OUT/$method.log" >&2
    exit 1
  fi
  echo "$method: $(grep -a "'train_runtime'" "$OUT/$method.log" | tail -n 1)   (log: $OUT/$method.log)"
done
trap - EXIT

step "4/5 evaluate base, LoRA, ThanoRA on $BENCHES"
# --overwrite: a rerun retrains the adapters, so answers left in these folders by an earlier run are stale.
EVAL=(--benchmarks "$BENCHES" --data-root "$DATA" --batch-size 16 --seed "$SEED" --overwrite ${LIMIT:+--limit $LIMIT})
$PY -m eval.run --model-path "$BASE" --method base --output-dir "$OUT/eval/base" "${EVAL[@]}"
for method in lora thanora; do
  $PY -m eval.run --model-path "$OUT/$method" --model-base "$BASE" --method $method --output-dir "$OUT/eval/$method" "${EVAL[@]}"
done

step "5/5 table and figures"
$PY -m eval.tables "$OUT/eval/base/scores.json" "$OUT/eval/lora/scores.json" "$OUT/eval/thanora/scores.json" \
  --output "$OUT/table"
$PY scripts/tiny/plot_losses.py --runs lora="$OUT/lora" thanora="$OUT/thanora" --output "$OUT/loss_curves.png"
cp "$OUT/thanora/rank_allocation.png" "$OUT/rank_allocation.png"
cat <<EOF

Outputs:
  table (Markdown/CSV/LaTeX)   $OUT/table.md  $OUT/table.csv  $OUT/table.tex
  per-task rank allocation     $OUT/rank_allocation.png   (numbers: $OUT/thanora/thanora.json)
  loss curves                  $OUT/loss_curves.png
  adapters                     $OUT/lora  $OUT/thanora   (merge: scripts/merge_lora_weights.py)
  answers and scores           $OUT/eval/<model>/<benchmark>/answers.jsonl  $OUT/eval/<model>/scores.json
  base model                   $BASE   data: $DATA
EOF
