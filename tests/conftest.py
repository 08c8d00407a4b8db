"""Shared fixtures: one tiny LLaVA per test session, and small LLaVA-format datasets with real PNG images."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")

COLORS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220), "yellow": (230, 220, 20)}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    from llava_thanora.model.tiny import build_tiny_llava

    return str(build_tiny_llava(tmp_path_factory.mktemp("tiny") / "tiny-llava"))


def write_color_task(root: Path, n: int = 24, seed: int = 0, name: str = "color") -> Path:
    """A learnable task: the answer is the colour of a solid image (with a little noise so images differ)."""
    from PIL import Image

    rng = random.Random(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    samples = []
    for i in range(n):
        color = rng.choice(sorted(COLORS))
        rgb = tuple(min(255, max(0, c + rng.randint(-20, 20))) for c in COLORS[color])
        img = Image.new("RGB", (48, 32), rgb)
        img.save(root / "images" / f"{name}_{i}.png")
        samples.append({"id": f"{name}-{i}", "image": f"{name}_{i}.png", "task": name, "conversations": [
            {"from": "human", "value": "<image>\nWhat color is the image?"}, {"from": "gpt", "value": color}]})
    path = root / f"{name}.json"
    path.write_text(json.dumps(samples))
    return path


def write_count_task(root: Path, n: int = 24, seed: int = 1, name: str = "count") -> Path:
    """A text-only task with a different input distribution: count the words."""
    rng = random.Random(seed)
    words = "one two three four five six seven eight nine".split()
    samples = []
    for i in range(n):
        k = rng.randint(1, 5)
        text = " ".join(rng.choice(["red", "blue", "circle", "square"]) for _ in range(k))
        samples.append({"id": f"{name}-{i}", "task": name, "conversations": [
            {"from": "human", "value": f"How many words are in: {text}"}, {"from": "gpt", "value": words[k - 1]}]})
    path = root / f"{name}.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in samples))
    return path


@pytest.fixture(scope="session")
def color_data(tmp_path_factory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("color")
    return str(write_color_task(root)), str(root / "images")


@pytest.fixture(scope="session")
def two_task_data(tmp_path_factory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("two_tasks")
    paths = [write_color_task(root), write_count_task(root)]
    return ",".join(str(p) for p in paths), str(root / "images")


@pytest.fixture(scope="session")
def processor(tiny_model):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_model)


@pytest.fixture(scope="session")
def prompt_format(processor):
    from llava_thanora.data.conversation import PromptFormat

    return PromptFormat.from_processor(processor)
