# Shared by scripts/eval/<benchmark>.sh: evaluate one registry benchmark with eval.run.
#
#   scripts/eval/<benchmark>.sh MODEL_PATH [MODEL_BASE] [more eval.run flags...]
#
# MODEL_BASE (optional, for LoRA adapters) is taken when the second argument does not start with "--".
# Environment overrides: PYTHON (default python), DATA_ROOT (eval.run's --data-root, which takes precedence over
# an entry's own data_root), OUTPUT_DIR (default results/eval/<the model path with "/" -> "__">, so that
# ckpt/seed0/final and ckpt/seed1/final never share a folder; the answers' record catches any other reuse),
# BATCH_SIZE (default 8), CONV_MODE (default llava_v1: LLaVA-1.5's vicuna_v1 format, which its published numbers use).

output_name() {  # ckpt/seed0/final -> ckpt__seed0__final (a leading "./" or "/" and a trailing "/" dropped)
    local path="${1%/}"
    path="${path#./}"
    path="${path#/}"
    echo "${path//\//__}"
}

run_benchmark() {
    local bench="$1"
    shift
    if [ $# -lt 1 ] || [[ "$1" == --* ]]; then
        echo "usage: $0 MODEL_PATH [MODEL_BASE] [eval.run flags...]" >&2
        exit 2
    fi
    local model_path="$1"
    shift
    local args=(--model-path "$model_path")
    if [ $# -ge 1 ] && [[ "$1" != --* ]]; then
        args+=(--model-base "$1")
        shift
    fi
    args+=(--benchmarks "$bench")
    if [ -n "${DATA_ROOT:-}" ]; then
        args+=(--data-root "$DATA_ROOT")
    fi
    args+=(--output-dir "${OUTPUT_DIR:-results/eval/$(output_name "$model_path")}")
    args+=(--batch-size "${BATCH_SIZE:-8}" --conv-mode "${CONV_MODE:-llava_v1}")
    exec ${PYTHON:-python} -m eval.run "${args[@]}" "$@"
}
