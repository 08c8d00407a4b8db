#!/usr/bin/env bash
# Embedded demo task 'mcq': ScienceQA-like lettered multiple choice (context + options) about a colour swatch.
# Usage: scripts/eval/minimix_mcq.sh MODEL_PATH [MODEL_BASE] [eval.run flags...]   (see scripts/eval/common.sh)
set -euo pipefail
# The tiny demo models are trained in their chat template's format.
CONV_MODE=${CONV_MODE:-template}
source "$(dirname "$0")/common.sh"
run_benchmark minimix_mcq "$@"
