"""minimix: a small embedded 4-task benchmark (vqa, ocr, caption, mcq) built offline from PyPI-shipped data.

Build it with `python -m llava_thanora.data.minimix --output_dir playground/data/minimix`; see
playground/data/README.md for sources, licences, file layout and the prompt rule. Importing this package
never imports transformers.
"""

from .build import GENERATOR_VERSION, IMAGE_FOLDER, build_minimix
from .writer import PROMPT_SUFFIX, TASKS, MinimixConfig, human_value

__all__ = ["GENERATOR_VERSION", "IMAGE_FOLDER", "PROMPT_SUFFIX", "TASKS", "MinimixConfig", "build_minimix",
           "human_value"]
