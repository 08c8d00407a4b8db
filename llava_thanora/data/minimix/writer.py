"""Shared pieces of the minimix builder: the config, the in-memory sample, seeding, and the file writers.

Every task module turns source data into `Sample`s; this module alone decides how a sample becomes a
training record, a question line and an annotation line, so the prompt rule lives in exactly one place.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Mapping

import numpy as np
from PIL import Image

from ..conversation import with_suffix

IMAGE_SIZE = 64
TASKS = ("vqa", "ocr", "caption", "mcq")
SPLITS = ("train", "val", "test")

# The instruction appended to every question of a task, identical for training and evaluation.
# Read-only so no caller can change the benchmark's prompts behind the eval registry's back.
PROMPT_SUFFIX: Mapping[str, str] = MappingProxyType(
    {
        "vqa": "Answer the question using a single word or phrase.",
        "ocr": "Answer the question using a single word or phrase.",
        "caption": "Describe the image in one sentence.",
        "mcq": "Answer with the option's letter from the given choices directly.",
    }
)


@dataclass(frozen=True)
class MinimixConfig:
    """What to build and where."""

    output_dir: Path
    """Folder that receives images/, train/, <task>/, pretrain.json and manifest.json."""
    seed: int = 0
    """Master seed; the same seed and options give byte-identical files."""
    train_per_task: int = 1000
    """Training samples per task, except captions (`caption_train`)."""
    caption_train: int | None = None
    """Training captions; None: half of train_per_task. A caption supervises about 14 times the tokens of a
    one-word answer and the loss averages over tokens, so with equal counts captions hold 82% of what the
    loss sees and the short-answer decisions (mcq) are learned last: on the first 2.2 base (1,000 captions),
    LoRA at the demo's rank reached mcq 26 on validation after 300 steps of equal counts, 58 after 500 steps
    with 500 captions (BENCHMARKS.md, "minimix 2.2 on its first base")."""
    test_per_task: int = 100
    """Test questions per task."""
    val_per_task: int | None = None
    """Validation questions per task (written to output_dir/val, a data root of the same layout as the
    main one, for choosing hyper-parameters without the test set); None: as many as test_per_task."""
    pretrain_samples: int = 24000
    """Generic description samples in pretrain.json, spread over its six sources by weight (pretrain.SOURCES)."""
    system_fonts: bool = False
    """Also render OCR text with TrueType fonts installed on this machine (not only fonts shipped in PyPI
    packages); off by default because it makes the files depend on the machine."""

    def __post_init__(self) -> None:
        if self.val_per_task is None:  # frozen dataclass: set the derived default the documented way
            object.__setattr__(self, "val_per_task", self.test_per_task)
        if self.caption_train is None:
            object.__setattr__(self, "caption_train", max(1, self.train_per_task // 2))
        for name in ("train_per_task", "caption_train", "test_per_task", "val_per_task", "pretrain_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class Sample:
    """One image with its question and reference answers, before it is written anywhere."""

    id: str
    """Unique id; also the question_id of test samples."""
    task: str
    """One of TASKS, or "pretrain"."""
    image: Image.Image
    """The 64x64 RGB image."""
    image_name: str
    """Path of the PNG relative to the images root (output_dir/images)."""
    text: str
    """The question without the task's prompt suffix (for pretrain: the whole instruction)."""
    answers: tuple[str, ...]
    """Reference answers; answers[0] is the training target."""
    question_extra: Mapping[str, Any] = field(default_factory=dict)
    """Extra fields of the question line (e.g. mcq "choices")."""
    annotation_extra: Mapping[str, Any] = field(default_factory=dict)
    """Extra ground-truth fields of the annotation line (never shown to a model)."""


def rng_for(seed: int, *names: str) -> np.random.Generator:
    """An independent random stream for (seed, names...).

    crc32 rather than hash() because str hashing is salted per process. Separate streams mean that e.g. the
    test set does not change when --train_per_task does.
    """
    return np.random.default_rng([seed, *(zlib.crc32(n.encode()) for n in names)])


def pixel_hash(image: Image.Image) -> str:
    """sha256 of the decoded RGB pixels, so equal content is caught whatever the PNG encoding."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return hashlib.sha256(f"{rgb.size}".encode() + rgb.tobytes()).hexdigest()


def human_value(text: str, suffix: str) -> str:
    """The first human turn: "<image>\\n" + the prompt (`with_suffix`)."""
    return f"<image>\n{with_suffix(text, suffix)}"


def training_record(sample: Sample, suffix: str) -> dict:
    """A LLaVA training conversation for `sample`."""
    return {
        "id": sample.id,
        "image": sample.image_name,
        "conversations": [
            {"from": "human", "value": human_value(sample.text, suffix)},
            {"from": "gpt", "value": sample.answers[0]},
        ],
        "task": sample.task,
    }


def question_record(sample: Sample) -> dict:
    """A line of <task>/test_questions.jsonl (text without suffix; the eval registry appends it)."""
    return {"question_id": sample.id, "image": sample.image_name, "text": sample.text, "task": sample.task,
            **sample.question_extra}


def annotation_record(sample: Sample) -> dict:
    """A line of <task>/test_annotations.jsonl."""
    return {"question_id": sample.id, "answers": list(sample.answers), **sample.annotation_extra}


def write_json(path: Path, obj: Any) -> None:
    """Write indented JSON with a trailing newline (stable bytes: insertion-ordered keys)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    """Write one JSON object per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def save_images(samples: Iterable[Sample], images_root: Path) -> None:
    """Save each distinct image once; two samples may share a file only if their pixels are equal."""
    saved: dict[str, str] = {}
    for s in samples:
        digest = pixel_hash(s.image)
        if s.image_name in saved:
            if saved[s.image_name] != digest:
                raise ValueError(f"sample {s.id}: image {s.image_name} already written with other pixels")
            continue
        if s.image.size != (IMAGE_SIZE, IMAGE_SIZE) or s.image.mode != "RGB":
            raise ValueError(f"sample {s.id}: image must be {IMAGE_SIZE}x{IMAGE_SIZE} RGB, "
                             f"got {s.image.size} {s.image.mode}")
        path = images_root / s.image_name
        path.parent.mkdir(parents=True, exist_ok=True)
        # No metadata and a fixed compression level keep the bytes identical from run to run.
        s.image.save(path, format="PNG", compress_level=6)
        saved[s.image_name] = digest


def sha256_file(path: Path) -> str:
    """sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
