#!/usr/bin/env bash
# lmms-eval's scienceqa_img: its letter rule, 16 tokens, no padding.
# Usage: scripts/eval/scienceqa_img_lmms.sh MODEL_PATH [MODEL_BASE] [eval.run flags...]   (see scripts/eval/common.sh)
set -euo pipefail
source "$(dirname "$0")/common.sh"
run_benchmark scienceqa_img_lmms "$@"
