"""Entry point: `deepspeed train.py ...` or `python train.py ...` (flags: `python train.py --help`)."""

from llava_thanora.train.main import main

if __name__ == "__main__":
    main()
