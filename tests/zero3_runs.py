"""Run several `train.py` command lines one after another in the same ranks (one launcher start-up for all), as
`tests/test_families_zero3.py` does under `deepspeed --num_gpus 2`: RUNS holds a JSON list of argument lists."""

import json
import os

from llava_thanora.cli import main
from llava_thanora.recipes.individual import _release_accelerator

for argv in json.loads(os.environ["RUNS"]):
    main(argv)
    _release_accelerator()  # the next run builds its own Accelerator (and DeepSpeed engine)
