# The rows of the paper's comparison table, sourced by scripts/tiny/reproduce_table.sh and
# scripts/v1_5/reproduce_table.sh so that both chains run the same rows with the same flags.
#   row_method ROW   the --method that trains the row
#   row_flags ROW    the row's extra train.py flags (the ThanoRA ablations of METHOD.md; later flags win)
# individual must come before the merge_* rows: they merge its per-task adapters.
# PiSSA and CorDA run as their references do: dropout 0 (dropout would perturb their principal-component adapters
# from step 0) and alpha = r. moelora_no_balance drops our load-balancing loss (HydraLoRA's code has none).
# `thanora` is the paper's ThanoRA (init=context, whatever train.py's default); thanora_activation is our variant
# init; every other thanora_* row removes one component from `thanora`.
TABLE_ROWS="lora dora pissa corda moelora moelora_no_balance individual merge_ta merge_ties merge_dare
  thanora thanora_activation thanora_uniform thanora_random_init thanora_no_hasi thanora_no_spr thanora_penalty_A
  thanora_penalty_B thanora_no_coop"

row_method() {
  case $1 in
    thanora_*) echo thanora ;;
    moelora_*) echo moelora ;;
    *)         echo "$1" ;;
  esac
}

# method_flags METHOD: the flags a method owns that the chain sets for it ($PREVIEW samples, $MERGE_FROM run)
method_flags() {
  case $1 in
    thanora)               echo "--thanora_preview_samples ${PREVIEW:-500}" ;;
    corda)                 echo "--corda_preview_samples ${PREVIEW:-500}" ;;
    merge_ta)              echo "--merge_individual_dir $MERGE_FROM" ;;
    merge_ties|merge_dare) echo "--merge_individual_dir $MERGE_FROM --merge_density 0.5" ;;
    *)                     echo "" ;;
  esac
}

row_flags() {
  case $1 in
    thanora)             echo "--thanora_init context" ;;                               # the paper's init
    thanora_activation)  echo "--thanora_init activation" ;;                            # ours: input PCA, B = 0
    thanora_uniform)     echo "--thanora_init context --thanora_allocation uniform" ;;  # no heterogeneity sizing
    thanora_random_init) echo "--thanora_init random" ;;                                # no data-driven blocks
    thanora_no_hasi)     echo "--thanora_allocation uniform --thanora_init random" ;;   # neither (the paper's w/o HASI)
    thanora_no_spr)      echo "--thanora_init context --thanora_lambda 0" ;;            # no subspace penalty
    thanora_penalty_A)   echo "--thanora_init context --thanora_penalty A" ;;
    thanora_penalty_B)   echo "--thanora_init context --thanora_penalty B" ;;
    thanora_no_coop)     echo "--thanora_init context --thanora_r_coop 0" ;;            # no cooperative block
    pissa|corda)       echo "--lora_dropout 0 --lora_alpha $R" ;;                     # as their references
    moelora_no_balance) echo "--moelora_balance_coef 0" ;;
    *)                 echo "" ;;
  esac
}
