"""rank_allocation.png: per layer, the share of the task-specific rank each task received."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .state import ThanoRAState


def layer_key(module_name: str) -> str:
    """The layer a module belongs to: its name up to the first numeric component
    ("model.layers.3.mlp.up_proj" -> "model.layers.3"); the full name when there is none."""
    match = re.match(r"^(.*?\.\d+)(\.|$)", module_name)
    return match.group(1) if match else module_name


def layer_shares(state: ThanoRAState) -> dict[str, list[float]]:
    """Mean share per task over the modules of each layer (in module order); a task without a share in a module
    (it never reached it) counts 0 there."""
    grouped: dict[str, list[list[float]]] = {}
    for name, alloc in state.modules.items():
        grouped.setdefault(layer_key(name), []).append([share or 0.0 for share in alloc.shares])
    return {key: [sum(col) / len(col) for col in zip(*rows)] for key, rows in grouped.items()}


def plot_rank_allocation(state: ThanoRAState, path: str) -> None:
    """Stacked bars, one per layer, of the mean rank share of each task (sums to 1 per layer)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shares = layer_shares(state)
    labels = list(shares)
    width = max(6.0, 0.35 * len(labels) + 2.0)
    fig, ax = plt.subplots(figsize=(width, 4.0))
    bottom = [0.0] * len(labels)
    for t, task in enumerate(state.tasks):
        values = [shares[key][t] for key in labels]
        ax.bar(range(len(labels)), values, bottom=bottom, label=task)
        bottom = [b + v for b, v in zip(bottom, values)]
    # Layer numbers alone when all layers share one prefix (a plain LM); else enough of the name to tell
    # e.g. a vision tower's layer 3 from the language model's.
    if len({key.rsplit(".", 1)[0] for key in labels}) == 1:
        short = [key.rsplit(".", 1)[-1] for key in labels]
    else:
        short = [".".join(key.split(".")[-3:]) for key in labels]
    ax.set_xticks(range(len(labels)), short, rotation=90 if len(labels) > 24 or len(short[0]) > 3 else 0, fontsize=7)
    ax.set_xlabel("layer")
    ax.set_ylabel("share of task-specific rank")
    ax.set_ylim(0, 1)
    ax.set_title(f"ThanoRA rank allocation (r={state.r}, r_coop={state.r_coop}, tau={state.config.tau})")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
