#!/usr/bin/env bash
# GQA test-dev balanced (12578) as LLaVA-1.5 reports it.
# Usage: scripts/eval/gqa.sh MODEL_PATH [MODEL_BASE] [eval.run flags...]   (see scripts/eval/common.sh)
set -euo pipefail
source "$(dirname "$0")/common.sh"
run_benchmark gqa "$@"
