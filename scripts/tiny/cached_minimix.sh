# Sourced by scripts/demo.sh, scripts/tiny/compare.sh and scripts/tiny/reproduce_table.sh: cached minimix data and
# a cached tiny base are reused only when they are what this code builds, so no run reports silently stale numbers.

# check_minimix_version PY DATA: stop unless DATA was built by this code's minimix generator version.
check_minimix_version() {
  local want have
  want=$($1 -c "from llava_thanora.data.minimix import GENERATOR_VERSION as v; print(v)")
  have=$($1 -c "import json, sys; print(json.load(open(sys.argv[1])).get('generator_version', '?'))" "$2/manifest.json")
  if [ "$have" != "$want" ]; then
    echo "error: $2 was built by minimix generator $have; this code builds $want." >&2
    echo "       delete $2 and the tiny base pretrained on it, and run again." >&2
    exit 1
  fi
}

# tiny_base_knobs: the tiny base's recipe knobs (scripts/tiny/pretrain_base.sh), environment overrides kept.
# TINY_BASE_RECIPE counts changes of the recipe that the knobs do not show; bump it with such a change.
tiny_base_knobs() {
  TINY_BASE_RECIPE=2  # 2: vision stage of 5,000 steps (2.2's base had 3,000)
  VISION_STEPS=${VISION_STEPS:-5000}
  STAGE1_STEPS=${STAGE1_STEPS:-50}
  STAGE2_STEPS=${STAGE2_STEPS:-500}
  STAGE2_LR=${STAGE2_LR:-1e-3}
}

# tiny_base_recipe: one line naming the recipe these knobs build; pretrain_base.sh stores it in the base.
tiny_base_recipe() {
  (tiny_base_knobs; echo "recipe $TINY_BASE_RECIPE vision_steps $VISION_STEPS stage1_steps $STAGE1_STEPS" \
    "stage2_steps $STAGE2_STEPS stage2_lr $STAGE2_LR")
}

# check_base_stamp DATA BASE: stop if BASE was pretrained (by pretrain_base.sh) on another build of DATA, or by
# another recipe than the one pretrain_base.sh would now follow.
check_base_stamp() {
  local sha
  sha=$(sha256sum "$1/manifest.json" | cut -d' ' -f1)
  if [ ! -f "$2/minimix_manifest.sha256" ]; then  # a base of your own, not built by pretrain_base.sh
    echo "note: $2 has no minimix_manifest.sha256; not checking that it was pretrained on $1" >&2
  elif [ "$(cat "$2/minimix_manifest.sha256")" != "$sha" ]; then
    echo "error: $2 was pretrained on another build of $1 (its minimix_manifest.sha256 differs)." >&2
    echo "       delete $2 and run again to rebuild it." >&2
    exit 1
  elif [ "$(cat "$2/tiny_base_recipe.txt" 2>/dev/null)" != "$(tiny_base_recipe)" ]; then
    echo "error: $2 was pretrained by another recipe ($(cat "$2/tiny_base_recipe.txt" 2>/dev/null ||
      echo 'one older than tiny_base_recipe.txt')); this code builds: $(tiny_base_recipe)." >&2
    echo "       delete $2 and run again to rebuild it." >&2
    exit 1
  fi
}
