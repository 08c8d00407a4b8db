#!/usr/bin/env bash
# One row of the table on several nodes under SLURM: one torchrun agent per node, joined by the c10d rendezvous
# on the first node; each agent starts one process per GPU. Every finetune_<method>.sh works this way.
#
#   sbatch --nodes 2 --gpus-per-node 8 --ntasks-per-node 1 --cpus-per-task 32 scripts/v1_5/slurm_multinode.sh \
#       [finetune_thanora.sh] [OUT] [more train.py flags]
#
# Batch arithmetic (README, "Several nodes"): global batch = BATCH x GRAD_ACCUM x GPUs per node x nodes. LLaVA's
# 128 on one node of 8 GPUs is BATCH=16; on 2 nodes of 8 it is BATCH=8 (or BATCH=16 with the learning rate
# scaled for 256). The defaults below keep 128 for any node count where 128 / (8 x nodes) is a whole number.
#SBATCH --job-name=llava-thanora
#SBATCH --ntasks-per-node=1
#SBATCH --exclusive
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-.}"  # sbatch runs a copy of this file from its spool: submit from the repo root
RECIPE=${1:-finetune_lora.sh}
NODES=${SLURM_NNODES:?run me with sbatch}
GPUS=${GPUS_PER_NODE:-8}
HEAD=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
export BATCH=${BATCH:-$((128 / (GPUS * NODES)))} GRAD_ACCUM=${GRAD_ACCUM:-1}
# The same command on every node; the rendezvous gives each node its rank. srun starts one agent per node.
export LAUNCH="torchrun --nnodes $NODES --nproc_per_node $GPUS --rdzv_backend c10d --rdzv_endpoint $HEAD:29500 --rdzv_id $SLURM_JOB_ID"
srun --kill-on-bad-exit=1 bash "scripts/v1_5/$RECIPE" "${@:2}"
