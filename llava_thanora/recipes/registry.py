"""`--method NAME` for the recipes: one line per recipe (methods are in `llava_thanora/methods/registry.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ..methods.registry import resolve
from .base import Recipe

# name -> "module:Class" inside llava_thanora.recipes
RECIPES: Mapping[str, str] = MappingProxyType({
    "individual": "individual:IndividualRecipe",
    "merge_ta": "merge:MergeTARecipe",
    "merge_ties": "merge:MergeTIESRecipe",
    "merge_dare": "merge:MergeDARERecipe",
})


def recipe_classes() -> dict[str, type[Recipe]]:
    """Every registered recipe class by name."""
    return resolve(RECIPES, "llava_thanora.recipes")
