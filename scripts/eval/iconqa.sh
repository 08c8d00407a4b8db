#!/usr/bin/env bash
# IconQA test, single-image sub-tasks (multi-text-choice and fill-in-the-blank).
# Usage: scripts/eval/iconqa.sh MODEL_PATH [MODEL_BASE] [eval.run flags...]   (see scripts/eval/common.sh)
set -euo pipefail
source "$(dirname "$0")/common.sh"
run_benchmark iconqa "$@"
