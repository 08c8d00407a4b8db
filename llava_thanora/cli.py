"""`train.py`: the command line over every method and recipe.

    python train.py --method NAME [flags]            deepspeed train.py --deepspeed zero3.json --method NAME ...

`--method` names a method (one training run, `llava_thanora/methods/registry.py`) or a recipe (several runs or
none, `llava_thanora/recipes/registry.py`). The parser gets every method's and recipe's own flags, so
`--help` lists them all; the selected one receives its typed flags object.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence


def registered() -> dict[str, type]:
    """Every `--method` name: the methods, then the recipes (a name may not be both)."""
    from .methods.registry import method_classes
    from .recipes.registry import recipe_classes

    methods, recipes = method_classes(), recipe_classes()
    clash = sorted(set(methods) & set(recipes))
    if clash:
        raise ValueError(f"names registered both as a method and as a recipe: {clash}")
    return {**methods, **recipes}


def main(argv: Sequence[str] | None = None, methods: Mapping[str, type] | None = None):
    """Run `train.py` with `argv` (default: the command line). `methods` replaces the registered methods and
    recipes (`{name: class}`, e.g. `{**registered(), "mine": MyMethod}`). Returns the Trainer of a single-method
    run, or the recipe's result."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # Must run before the TrainingArguments exist: they set up the distributed state on creation.
    from .train.cpu_launch import prepare_cpu_launch

    launch = prepare_cpu_launch(argv)
    from .recipes.base import Recipe
    from .train.args import parse_args
    from .train.main import run

    methods = dict(registered() if methods is None else methods)
    parsed = parse_args(argv, methods, launch)
    logging.basicConfig(level=logging.INFO if parsed.training.should_log else logging.WARNING, format="%(message)s")
    chosen = methods[parsed.model.method](parsed.method)
    if isinstance(chosen, Recipe):
        return chosen.run(parsed, methods)
    return run(chosen, parsed)
