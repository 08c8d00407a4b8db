#!/usr/bin/env bash
# COCO 2014 captioning (val, 40,504 images).
# Usage: scripts/eval/coco_caption.sh MODEL_PATH [MODEL_BASE] [eval.run flags...]   (see scripts/eval/common.sh)
set -euo pipefail
source "$(dirname "$0")/common.sh"
run_benchmark coco_caption "$@"
