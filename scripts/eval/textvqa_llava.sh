#!/usr/bin/env bash
# TextVQA validation from LLaVA-1.5's own eval files (llava_textvqa_val_v051_ocr.jsonl + TextVQA_0.5.1_val.json).
# Usage: scripts/eval/textvqa_llava.sh MODEL_PATH [MODEL_BASE] [eval.run flags...]   (see scripts/eval/common.sh)
set -euo pipefail
source "$(dirname "$0")/common.sh"
run_benchmark textvqa_llava "$@"
