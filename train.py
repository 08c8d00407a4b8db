"""Train a LLaVA adapter: `python train.py --help` lists every flag (see llava_thanora/cli.py)."""

from llava_thanora.cli import main

if __name__ == "__main__":
    main()
