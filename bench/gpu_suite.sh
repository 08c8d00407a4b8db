#!/usr/bin/env bash
# One prepared GPU suite: every GPU number of BENCHMARKS.md in one command, printed as one Markdown block.
#
#   bash bench/gpu_suite.sh            # one CUDA GPU, about 8 minutes (llava-1.5-7b shapes, bf16)
#   bash bench/gpu_suite.sh --smoke    # every step on CPU with tiny shapes, in seconds (the test suite runs it)
#   bash bench/gpu_suite.sh --layers 4 # fewer decoder layers if a slower GPU goes over the budget
#
# What it measures and with which sizes: bench/gpu_suite.py. Python from $PYTHON (default: python). Library
# warnings go to a log file that is shown only when a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
LOG=$(mktemp -t gpu_suite.XXXXXX)
if ! PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" TOKENIZERS_PARALLELISM=false "$PYTHON" bench/gpu_suite.py "$@" 2>"$LOG"; then
  echo "bench/gpu_suite.sh failed; the end of its log ($LOG):" >&2
  tail -n 40 "$LOG" >&2
  exit 1
fi
rm -f "$LOG"
