#!/usr/bin/env bash
# ScienceQA test questions with an image (2017), lettered options.
# Usage: scripts/eval/scienceqa_img.sh MODEL_PATH [MODEL_BASE] [eval.run flags...]   (see scripts/eval/common.sh)
set -euo pipefail
source "$(dirname "$0")/common.sh"
run_benchmark scienceqa_img "$@"
