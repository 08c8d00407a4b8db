#!/usr/bin/env bash
# Flickr30k captioning.
# Usage: scripts/eval/flickr30k.sh MODEL_PATH [MODEL_BASE] [eval.run flags...]   (see scripts/eval/common.sh)
set -euo pipefail
source "$(dirname "$0")/common.sh"
run_benchmark flickr30k "$@"
