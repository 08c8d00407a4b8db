"""What a recipe is: a name, its own flags (`arguments`), and `run`, which drives whole training runs."""

from __future__ import annotations

from collections.abc import Mapping

from ..flags import FlagOwner


class Recipe(FlagOwner):
    """Base class of the multi-run drivers named by `--method`; `self.args` holds the recipe's own flags."""

    def run(self, parsed, methods: Mapping[str, type]):
        """Carry out the recipe. `parsed` is `train.args.ParsedArgs`; `methods` maps names to method classes."""
        raise NotImplementedError
