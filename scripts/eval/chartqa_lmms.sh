#!/usr/bin/env bash
# lmms-eval's chartqa: ChartQA test with its suffix "Answer the question with a single word." and 16 tokens.
# Usage: scripts/eval/chartqa_lmms.sh MODEL_PATH [MODEL_BASE] [eval.run flags...]   (see scripts/eval/common.sh)
set -euo pipefail
source "$(dirname "$0")/common.sh"
run_benchmark chartqa_lmms "$@"
