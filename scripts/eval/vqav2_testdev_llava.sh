#!/usr/bin/env bash
# VQA v2 test-dev from LLaVA-1.5's own eval files: writes the EvalAI upload file (no local score).
# Usage: scripts/eval/vqav2_testdev_llava.sh MODEL_PATH [MODEL_BASE] [eval.run flags...]   (see scripts/eval/common.sh)
set -euo pipefail
source "$(dirname "$0")/common.sh"
run_benchmark vqav2_testdev_llava "$@"
