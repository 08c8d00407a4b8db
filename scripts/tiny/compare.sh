#!/usr/bin/env bash
# The paper's comparison on minimix, over several seeds: every row is trained on the training files, its choices
# are made on the VALIDATION split (minimix's val/ data root, never the test split), the test split is reported,
# and each method is compared with LoRA by paired bootstrap intervals over seeds and questions (eval.compare).
#
#   bash scripts/tiny/compare.sh                           # every part below, 5 seeds: many hours on 2 CPU cores
#   PARTS=main ROWS="lora thanora" SEEDS="0 1" bash scripts/tiny/compare.sh   # a subset
#   DRY_RUN=1 bash scripts/tiny/compare.sh                 # print the commands only
# Each training run uses TRAIN_THREADS (1) thread, as in the demo; on 2 cores, run two instances at once with
# disjoint ROWS (same OUT), then once more with every row: it only makes the tables, every run being done.
#
# Parts (PARTS, default "main merge_weights sweep t2"):
#   main           the table's rows (ROWS, default: every row of scripts/table_rows.sh plus base) x SEEDS
#   merge_weights  the merge rows' weight (one scalar for every task vector) chosen on validation among
#                  MERGE_WEIGHTS, seed by seed; the test table reports the chosen weight
#   sweep          the rank sweep: SWEEP_ROWS (lora, thanora, thanora_activation) at r in SWEEP_RANKS
#                  (8 16 32 64) x SWEEP_SEEDS
#   t2             a T = 2 mixture (T2_TASKS: the OCR-like and the ScienceQA-like task) for T2_ROWS x SEEDS
# Every training run has the same data, schedule, total rank and seed set as the demo's LoRA (scripts/demo.sh);
# the projector stays frozen so the adapters alone are compared. Outputs under OUT (default
# playground/results/compare): runs/<part>/<row>/seed<S>, eval/<split>/<part>/<row>_s<S>/scores.json and the
# tables <part>_{val,test}.md (mean ± std) and <part>_vs_lora_{val,test}.md (paired differences, 95% CIs).
# A step whose output exists is skipped, so an interrupted run resumes; delete a folder to redo it.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-playground/data/minimix}
BASE=${BASE:-playground/checkpoints/tiny-llava-base}
OUT=${OUT:-playground/results/compare}
STEPS=${STEPS:-500}
TRAIN_THREADS=${TRAIN_THREADS:-1}  # as the demo: its seed-0 lora/thanora_activation runs are the demo's
R=${RANK:-16}
SEEDS=${SEEDS:-"0 1 2 3 4"}
PREVIEW=${PREVIEW:-128}
PARTS=${PARTS:-"main merge_weights sweep t2"}
MERGE_WEIGHTS=${MERGE_WEIGHTS:-"0.25 0.5 0.75 1.0"}
SWEEP_ROWS=${SWEEP_ROWS:-"lora thanora thanora_activation"}
SWEEP_RANKS=${SWEEP_RANKS:-"8 16 32 64"}
SWEEP_SEEDS=${SWEEP_SEEDS:-"0 1 2"}
T2_TASKS=${T2_TASKS:-"ocr mcq"}
T2_ROWS=${T2_ROWS:-"lora thanora thanora_activation"}
TASKS=${TASKS:-"vqa ocr caption mcq"}
LIMIT=${LIMIT:-}
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 WANDB_MODE=offline
source scripts/table_rows.sh
ROWS=${ROWS:-"base $TABLE_ROWS"}

run() { if [ -n "${DRY_RUN:-}" ]; then echo "$*"; else "$@"; fi; }
[ -n "${DRY_RUN:-}" ] || [ -f "$DATA/manifest.json" ] || $PY -m llava_thanora.data.minimix --output_dir "$DATA"
[ -n "${DRY_RUN:-}" ] || [ -f "$BASE/config.json" ] || bash scripts/tiny/pretrain_base.sh "$BASE" "$DATA"
[ -n "${DRY_RUN:-}" ] || [ -d "$DATA/val" ] || { echo "$DATA has no val/ split: rebuild it" >&2; exit 1; }
source scripts/tiny/cached_minimix.sh
[ -n "${DRY_RUN:-}" ] || { check_minimix_version "$PY" "$DATA"; check_base_stamp "$DATA" "$BASE"; }

data_root() { [ "$1" = val ] && echo "$DATA/val" || echo "$DATA"; }
train_files() { local f; f=$(for t in $1; do printf "%s," "$DATA/train/$t.json"; done); echo "${f%,}"; }
benches() { local b; b=$(for t in $1; do printf 'minimix_%s,' "$t"; done); echo "${b%,}"; }

# train PART ROW SEED RANK TASKS: one training run (or, for the merge rows, one merge of that seed's individual run)
train() {
  local row=$2 seed=$3 rank=$4 tasks=$5 dir=$OUT/runs/$1/$2/seed$3
  [ "$row" = base ] && return
  MERGE_FROM=$OUT/runs/main/individual/seed$seed  # the merge rows merge that seed's individual adapters
  local flags; flags="$(method_flags "$(row_method "$row")") $(row_flags "$row")"
  # TIES/DARE at full rank: the default rank-T*r SVD afterwards would undo much of their pruning
  [[ $row == merge_ties || $row == merge_dare ]] && flags="$flags --merge_svd_rank 0"
  if [ -f "$dir/trainer_state.json" ] || [ -f "$dir/individual.json" ] || [ -f "$dir/merge.json" ]; then return; fi
  OMP_NUM_THREADS="$TRAIN_THREADS" run $PY train.py --model_name_or_path "$BASE" --data_path "$(train_files "$tasks")" --image_folder "$DATA/images" \
    --output_dir "$dir" --lora_r "$rank" --lora_alpha $((2 * rank)) --lora_dropout 0.05 --max_steps "$STEPS" \
    --per_device_train_batch_size 16 --learning_rate 2e-3 --lr_scheduler_type cosine --warmup_steps 0.03 \
    --logging_steps 10 --save_strategy no --report_to none --model_max_length 512 --seed "$seed" \
    --disable_tqdm true --full_determinism --freeze_mm_mlp_adapter --method "$(row_method "$row")" $flags ${MERGE_WEIGHT:+--merge_weights "$(weights "$MERGE_WEIGHT" "$tasks")"}
}

# weights W TASKS: "W,W,...", one per task vector
weights() { local w=$1 out=""; for _ in $2; do out+="$w,"; done; echo "${out%,}"; }

# scored FILE BENCHES: FILE exists and holds a score for each of BENCHES (comma-separated)
scored() {
  [ -f "$1" ] && $PY -c 'import json, sys; sys.exit(bool(set(sys.argv[2].split(",")) - set(json.load(open(sys.argv[1]))["scores"])))' "$1" "$2"
}

# evaluate PART ROW SEED SPLIT TASKS [RUN_DIR]: eval.run (or the individual row's per-task evaluation)
evaluate() {
  local part=$1 row=$2 seed=$3 split=$4 tasks=$5 dir=${6:-$OUT/runs/$1/$2/seed$3}
  local res=$OUT/eval/$split/$part/${row}_s$seed
  # done only when every benchmark is scored: an interrupted eval.run leaves a partial scores.json (rerun, it
  # resumes the answers it has)
  scored "$res/scores.json" "$(benches "$tasks")" && return
  local flags=(--data-root "$(data_root "$split")" --batch-size 16 --seed "$seed" --no-progress ${LIMIT:+--limit $LIMIT})
  if [ "$row" = base ]; then
    run $PY -m eval.run --model-path "$BASE" --benchmarks "$(benches "$tasks")" --method base --output-dir "$res" "${flags[@]}"
  elif [ "$row" = individual ]; then
    local pairs; pairs=$(for t in $tasks; do printf '%s=minimix_%s,' "$t" "$t"; done)
    run $PY scripts/eval_individual.py --individual-dir "$dir" --model-base "$BASE" --task-benchmarks "${pairs%,}" \
      --output-dir "$res" "${flags[@]}"
  else
    run $PY -m eval.run --model-path "$dir" --model-base "$BASE" --benchmarks "$(benches "$tasks")" --method "$row" \
      --output-dir "$res" "${flags[@]}"
  fi
}

# tables PART TASKS: mean ± std per split, and the paired comparison with LoRA
tables() {
  local part=$1 tasks=$2 split
  for split in val test; do
    local files=("$OUT"/eval/"$split"/"$part"/*/scores.json)
    [ -n "${DRY_RUN:-}" ] || [ -e "${files[0]}" ] || continue
    run $PY -m eval.tables "${files[@]}" --benchmarks "$(benches "$tasks")" --output "$OUT/${part}_$split"
    run $PY -m eval.compare "${files[@]}" --baseline lora --benchmarks "$(benches "$tasks")" \
      --output "$OUT/${part}_vs_lora_$split"
  done
}

for part in $PARTS; do
  case $part in
    main)
      for seed in $SEEDS; do for row in $ROWS; do
        [[ $row == merge_* ]] && [[ " $PARTS " == *" merge_weights "* ]] && continue  # weighted below
        train main "$row" "$seed" "$R" "$TASKS"
        for split in val test; do evaluate main "$row" "$seed" "$split" "$TASKS"; done
      done; done
      tables main "$TASKS" ;;
    merge_weights)
      # each merge row at each weight on validation; the chosen weight's merge is the main table's row
      for seed in $SEEDS; do
        train main individual "$seed" "$R" "$TASKS"
        for row in $ROWS; do
          [[ $row == merge_* ]] || continue
          for w in $MERGE_WEIGHTS; do
            MERGE_WEIGHT=$w train "merge_w$w" "$row" "$seed" "$R" "$TASKS"
            evaluate "merge_w$w" "$row" "$seed" val "$TASKS"
          done
          chosen=${MERGE_WEIGHTS%% *}
          if [ -z "${DRY_RUN:-}" ]; then
            best=$($PY scripts/tiny/pick_on_val.py $(for w in $MERGE_WEIGHTS; do
              echo "$OUT/eval/val/merge_w$w/${row}_s$seed/scores.json"; done) --benchmarks "$(benches "$TASKS")")
            chosen=$(echo "$best" | sed -E 's#.*/merge_w([^/]+)/.*#\1#')
          fi
          evaluate main "$row" "$seed" test "$TASKS" "$OUT/runs/merge_w$chosen/$row/seed$seed"
          run mkdir -p "$OUT/eval/val/main/${row}_s$seed"  # the chosen weight's validation scores join the table
          run cp "$OUT/eval/val/merge_w$chosen/${row}_s$seed/scores.json" "$OUT/eval/val/main/${row}_s$seed/"
          echo "$row seed $seed: merge weight $chosen (validation)"
        done
      done
      tables main "$TASKS" ;;
    sweep)
      for rank in $SWEEP_RANKS; do for seed in $SWEEP_SEEDS; do for row in $SWEEP_ROWS; do
        train "r$rank" "$row" "$seed" "$rank" "$TASKS"
        for split in val test; do evaluate "r$rank" "$row" "$seed" "$split" "$TASKS"; done
      done; done; tables "r$rank" "$TASKS"; done ;;
    t2)
      for seed in $SEEDS; do for row in $T2_ROWS; do
        train t2 "$row" "$seed" "$R" "$T2_TASKS"
        for split in val test; do evaluate t2 "$row" "$seed" "$split" "$T2_TASKS"; done
      done; done
      tables t2 "$T2_TASKS" ;;
    *) echo "unknown part '$part' (PARTS: main merge_weights sweep t2)" >&2; exit 1 ;;
  esac
done
echo "tables: $OUT/*_{val,test}.md (choose on val, report test); paired CIs: $OUT/*_vs_lora_{val,test}.md"
