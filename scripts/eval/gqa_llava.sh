#!/usr/bin/env bash
# GQA test-dev balanced from LLaVA-1.5's own eval files (llava_gqa_testdev_balanced.jsonl + GQA's questions).
# Usage: scripts/eval/gqa_llava.sh MODEL_PATH [MODEL_BASE] [eval.run flags...]   (see scripts/eval/common.sh)
set -euo pipefail
source "$(dirname "$0")/common.sh"
run_benchmark gqa_llava "$@"
