#!/usr/bin/env bash
# lmms-eval's textvqa_val: TextVQA validation without OCR tokens.
# Usage: scripts/eval/textvqa_lmms.sh MODEL_PATH [MODEL_BASE] [eval.run flags...]   (see scripts/eval/common.sh)
set -euo pipefail
source "$(dirname "$0")/common.sh"
run_benchmark textvqa_lmms "$@"
