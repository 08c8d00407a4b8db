#!/usr/bin/env bash
# DocVQA validation (5349 questions on document pages).
# Usage: scripts/eval/docvqa.sh MODEL_PATH [MODEL_BASE] [eval.run flags...]   (see scripts/eval/common.sh)
set -euo pipefail
source "$(dirname "$0")/common.sh"
run_benchmark docvqa "$@"
