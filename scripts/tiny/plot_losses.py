"""Plot training loss curves of several runs from their trainer_state.json (lm_loss, and spr_penalty if logged).

    python scripts/tiny/plot_losses.py --runs lora=OUT1 thanora=OUT2 --output loss_curves.png
"""

import argparse
import json
from pathlib import Path


def read_history(run_dir: str) -> list[dict]:
    path = Path(run_dir) / "trainer_state.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no trainer state (is {run_dir} a training output dir?)")
    return [h for h in json.loads(path.read_text())["log_history"] if "loss" in h]


def main(argv=None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", required=True, help="NAME=OUTPUT_DIR pairs")
    ap.add_argument("--output", required=True)
    args = ap.parse_args(argv)
    runs = dict(r.split("=", 1) for r in args.runs)
    penalties = {n: d for n, d in runs.items() if any("spr_penalty" in h for h in read_history(d))}
    fig, axes = plt.subplots(1, 2 if penalties else 1, figsize=(10 if penalties else 5.5, 3.8), squeeze=False)
    for name, run_dir in runs.items():
        hist = read_history(run_dir)
        axes[0][0].plot([h["step"] for h in hist], [h.get("lm_loss", h["loss"]) for h in hist], label=name)
        if name in penalties:
            axes[0][1].plot([h["step"] for h in hist], [h["spr_penalty"] for h in hist], label=name)
    axes[0][0].set(xlabel="step", ylabel="language-model loss", title="training loss")
    axes[0][0].legend()
    if penalties:
        axes[0][1].set(xlabel="step", ylabel="mean penalty per layer", title="ThanoRA subspace penalty")
        axes[0][1].legend()
    fig.tight_layout()
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=120)
    print(f"loss curves -> {args.output}")


if __name__ == "__main__":
    main()
