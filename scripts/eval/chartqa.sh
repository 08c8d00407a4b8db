#!/usr/bin/env bash
# ChartQA test (2500: human + augmented).
# Usage: scripts/eval/chartqa.sh MODEL_PATH [MODEL_BASE] [eval.run flags...]   (see scripts/eval/common.sh)
set -euo pipefail
source "$(dirname "$0")/common.sh"
run_benchmark chartqa "$@"
