#!/usr/bin/env bash
# OCR-VQA test (book covers: title, author, genre questions).
# Usage: scripts/eval/ocrvqa.sh MODEL_PATH [MODEL_BASE] [eval.run flags...]   (see scripts/eval/common.sh)
set -euo pipefail
source "$(dirname "$0")/common.sh"
run_benchmark ocrvqa "$@"
