#!/usr/bin/env bash
# Embedded demo task 'caption': one-sentence scene descriptions.
# Usage: scripts/eval/minimix_caption.sh MODEL_PATH [MODEL_BASE] [eval.run flags...]   (see scripts/eval/common.sh)
set -euo pipefail
# The tiny demo models are trained in their chat template's format.
CONV_MODE=${CONV_MODE:-template}
source "$(dirname "$0")/common.sh"
run_benchmark minimix_caption "$@"
