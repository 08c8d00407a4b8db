"""Command line: python -m llava_thanora.data.minimix --output_dir playground/data/minimix [options]."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .build import build_minimix
from .writer import TASKS, MinimixConfig


def parse_args(argv: list[str] | None = None) -> MinimixConfig:
    """Parse the command line into a MinimixConfig."""
    parser = argparse.ArgumentParser(prog="python -m llava_thanora.data.minimix", description=__doc__)
    parser.add_argument("--output_dir", type=Path, required=True, help="e.g. playground/data/minimix")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train_per_task", type=int, default=1000, help="training samples per task but captions")
    parser.add_argument("--caption_train", type=int, default=None,
                        help="training captions (default: half of --train_per_task; see MinimixConfig)")
    parser.add_argument("--test_per_task", type=int, default=100)
    parser.add_argument("--val_per_task", type=int, default=None,
                        help="validation questions per task, written to OUTPUT_DIR/val (default: as test)")
    parser.add_argument("--pretrain_samples", type=int, default=24000)
    parser.add_argument("--system_fonts", action="store_true",
                        help="also use TrueType fonts installed on this machine (output then depends on it)")
    args = parser.parse_args(argv)
    try:
        return MinimixConfig(**vars(args))
    except ValueError as err:
        parser.error(str(err))


def main(argv: list[str] | None = None) -> None:
    """Build minimix and print a one-line summary per task."""
    cfg = parse_args(argv)
    start = time.perf_counter()
    try:
        manifest = build_minimix(cfg)
    except FileExistsError as err:  # a user mistake, not a bug: no traceback
        raise SystemExit(f"error: {err}") from None
    for task in TASKS:
        counts = manifest["counts"][task]
        print(f"{task:8s} train {counts['train']:6d}  val {counts['val']:5d}  test {counts['test']:5d}")
    print(f"pretrain {manifest['counts']['pretrain']:6d}")
    print(f"{len(manifest['files'])} files written to {cfg.output_dir} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
