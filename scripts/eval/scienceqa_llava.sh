#!/usr/bin/env bash
# ScienceQA test from LLaVA-1.5's own eval files (llava_test_CQM-A.json + problems.json).
# Usage: scripts/eval/scienceqa_llava.sh MODEL_PATH [MODEL_BASE] [eval.run flags...]   (see scripts/eval/common.sh)
set -euo pipefail
source "$(dirname "$0")/common.sh"
run_benchmark scienceqa_llava "$@"
