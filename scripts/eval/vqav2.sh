#!/usr/bin/env bash
# VQA v2 validation (214k).
# Usage: scripts/eval/vqav2.sh MODEL_PATH [MODEL_BASE] [eval.run flags...]   (see scripts/eval/common.sh)
set -euo pipefail
source "$(dirname "$0")/common.sh"
run_benchmark vqav2 "$@"
