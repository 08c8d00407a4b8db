#!/usr/bin/env bash
# PiSSA (Meng et al. 2024): the adapter starts from the top-R singular triplets of each weight (peft's init).
# ZeRO-2, not ZeRO-3: the SVD needs the full weights at build time (the frozen base is not sharded by ZeRO-2).
# --pissa_niter 16 uses peft's fast randomized SVD instead of the exact one.
#   [MIX=4task] bash scripts/v1_5/finetune_pissa.sh [OUT] [more train.py flags]   (settings: common.sh)
source "$(dirname "$0")/common.sh"
finetune "${1:-$CKPT/pissa}" zero2.json --method pissa "${@:2}"
