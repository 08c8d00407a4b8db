# Shared settings of the llava-1.5-7b recipes, sourced by finetune_<method>.sh and reproduce_table.sh.
# Every variable can be set from the environment. Defaults follow LLaVA-1.5's task-LoRA recipe
# (scripts/v1_5/finetune_task_lora.sh upstream): r 128, alpha 256, lr 2e-4, projector lr 2e-5, cosine, warmup 3%,
# bf16, ZeRO-3, model_max_length 2048, gradient checkpointing; here 3 epochs, as in the paper's multi-task runs.
#
#   MIX      2task (ScienceQA + DocVQA, default) or 4task (+ ChartQA + Flickr30k); or set TASKS yourself
#   TRAIN_ROOT  converted training splits (default playground/data/finetune, written by reproduce_table.sh)
#   EVAL_ROOT   converted test splits (default playground/data/eval, eval.run's default data root)
#   BASE     llava-hf/llava-1.5-7b-hf     CKPT  checkpoints/llava-v1.5-7b-$MIX/seed$SEED (a folder per table row)
#   R        rank of every row (default 128; MoE-LoRA picks its rank for the same budget, individual uses R per task)
#   SEED  GRAD_ACCUM  BATCH (per device, default 16: 8 GPUs x 16 = LLaVA's global batch 128)
#   LAUNCH   the launcher (default: deepspeed)   REPORT_TO (default none)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
MIX=${MIX:-2task}
case $MIX in
  2task) TASKS=${TASKS:-"scienceqa docvqa"} ;;
  4task) TASKS=${TASKS:-"scienceqa docvqa chartqa flickr30k"} ;;
  *)     echo "MIX must be 2task or 4task, got '$MIX' (or set TASKS)" >&2; exit 1 ;;
esac
TRAIN_ROOT=${TRAIN_ROOT:-playground/data/finetune}
EVAL_ROOT=${EVAL_ROOT:-playground/data/eval}
BASE=${BASE:-llava-hf/llava-1.5-7b-hf}
SEED=${SEED:-0}
CKPT=${CKPT:-checkpoints/llava-v1.5-7b-$MIX/seed$SEED}
R=${R:-128}
LAUNCH=${LAUNCH:-deepspeed}
export TOKENIZERS_PARALLELISM=false

# The training file of each task, as scripts/prepare_data writes it (<root>/train/<task>_<split>.json); Flickr30k's
# Karpathy train part comes from the hub's only split, "test" (see reproduce_table.sh).
train_file() {
  case $1 in
    flickr30k) echo "$TRAIN_ROOT/train/flickr30k_test.json" ;;
    *)         echo "$TRAIN_ROOT/train/$1_train.json" ;;
  esac
}
# The benchmark that scores each task (eval/benchmarks/<name>.json).
benchmark_of() {
  case $1 in
    scienceqa) echo scienceqa_img ;;
    *)         echo "$1" ;;
  esac
}
TRAIN=$(for t in $TASKS; do printf '%s,' "$(train_file $t)"; done)
TRAIN=${TRAIN%,}

# finetune OUT ZERO_CONFIG [train.py flags...]: one row of the table with LLaVA's task-LoRA recipe.
finetune() {
  local out=$1 zero=$2
  shift 2
  $LAUNCH train.py --deepspeed "$zero" \
    --model_name_or_path "$BASE" --data_path "$TRAIN" --image_folder "$TRAIN_ROOT/images" --conv_mode llava_v1 \
    --lora_r "$R" --lora_alpha $((2 * R)) --lora_dropout 0.05 \
    --tune_mm_projector --mm_projector_lr 2e-5 \
    --bf16 true --learning_rate 2e-4 --weight_decay 0.0 --num_train_epochs 3 \
    --lr_scheduler_type cosine --warmup_steps 0.03 \
    --per_device_train_batch_size "${BATCH:-16}" --gradient_accumulation_steps "${GRAD_ACCUM:-1}" \
    --gradient_checkpointing true --model_max_length 2048 --dataloader_num_workers 4 \
    --save_strategy steps --save_steps 500 --save_total_limit 1 --logging_steps 1 \
    --report_to "${REPORT_TO:-none}" --seed "$SEED" --output_dir "$out" "$@"
}
