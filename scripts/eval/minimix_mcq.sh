#!/usr/bin/env bash
# Embedded demo task 'mcq': lettered multiple choice about handwritten digits.
# Usage: scripts/eval/minimix_mcq.sh MODEL_PATH [MODEL_BASE] [eval.run flags...]   (see scripts/eval/common.sh)
set -euo pipefail
source "$(dirname "$0")/common.sh"
run_benchmark minimix_mcq "$@"
