#!/usr/bin/env bash
# TextVQA validation (5000, 10 answers each) as LLaVA-1.5 reports it.
# Usage: scripts/eval/textvqa.sh MODEL_PATH [MODEL_BASE] [eval.run flags...]   (see scripts/eval/common.sh)
set -euo pipefail
source "$(dirname "$0")/common.sh"
run_benchmark textvqa "$@"
