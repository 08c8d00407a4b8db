#!/usr/bin/env bash
# lmms-eval's vqav2_val: VQA v2 validation with lmms-eval's normalization and 16 tokens.
# Usage: scripts/eval/vqav2_lmms.sh MODEL_PATH [MODEL_BASE] [eval.run flags...]   (see scripts/eval/common.sh)
set -euo pipefail
source "$(dirname "$0")/common.sh"
run_benchmark vqav2_lmms "$@"
