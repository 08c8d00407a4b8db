# Shared settings of the text-only recipes (a Llama / Qwen2 base on the commonsense eight and GSM8K), sourced by
# finetune_<method>.sh and reproduce_table.sh; the counterpart of scripts/v1_5/common.sh. Defaults follow DoRA's
# commonsense recipe (r 32, alpha 64, lr 2e-4 (LoRA-family), 3 epochs, warmup 100 steps, cutoff 256) at the
# model_max_length the suites need, bf16, ZeRO-3. Every variable can be set from the environment.
#
#   TASKS    the mixture (default: the commonsense eight; add gsm8k)
#   DATA     LLM-Adapters' checkout (dataset/<name>/{train,test}.json, as github.com/AGI-Edgerunners/LLM-Adapters)
#   BASE     the base (default Qwen/Qwen2.5-7B-Instruct; meta-llama/Llama-2-7b-hf works the same)
#   TRAIN_ROOT / EVAL_ROOT   converted files (default playground/data/text/{train,eval})
#   R SEED BATCH GRAD_ACCUM LAUNCH REPORT_TO CKPT    as in scripts/v1_5/common.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
TASKS=${TASKS:-"boolq piqa siqa hellaswag winogrande arc_e arc_c obqa"}
DATA=${DATA:-LLM-Adapters}
BASE=${BASE:-Qwen/Qwen2.5-7B-Instruct}
TRAIN_ROOT=${TRAIN_ROOT:-playground/data/text/train}
EVAL_ROOT=${EVAL_ROOT:-playground/data/text/eval}
SEED=${SEED:-0}
CKPT=${CKPT:-checkpoints/text-$(basename "$BASE")/seed$SEED}
R=${R:-32}
LAUNCH=${LAUNCH:-deepspeed}
export TOKENIZERS_PARALLELISM=false

# LLM-Adapters' folder of each task, and the converter that reads it.
source_dir() {
  case $1 in
    siqa) echo social_i_qa ;; arc_e) echo ARC-Easy ;; arc_c) echo ARC-Challenge ;; obqa) echo openbookqa ;;
    *) echo "$1" ;;
  esac
}
converter() { case $1 in gsm8k) echo gsm8k ;; *) echo commonsense ;; esac; }
task_flag() { case $1 in gsm8k) echo "" ;; *) echo "--task $1" ;; esac; }
TRAIN=$(for t in $TASKS; do printf '%s,' "$TRAIN_ROOT/train/${t}_train.json"; done)
TRAIN=${TRAIN%,}

# finetune OUT ZERO_CONFIG [train.py flags...]: one row of the table.
finetune() {
  local out=$1 zero=$2
  shift 2
  $LAUNCH train.py --deepspeed "$zero" \
    --model_name_or_path "$BASE" --data_path "$TRAIN" \
    --lora_r "$R" --lora_alpha $((2 * R)) --lora_dropout 0.05 \
    --bf16 true --learning_rate 2e-4 --weight_decay 0.0 --num_train_epochs 3 \
    --lr_scheduler_type linear --warmup_steps 100 \
    --per_device_train_batch_size "${BATCH:-4}" --gradient_accumulation_steps "${GRAD_ACCUM:-4}" \
    --gradient_checkpointing true --model_max_length 512 --dataloader_num_workers 4 \
    --save_strategy steps --save_steps 500 --save_total_limit 1 --logging_steps 10 \
    --report_to "${REPORT_TO:-none}" --seed "$SEED" --output_dir "$out" "$@"
}
