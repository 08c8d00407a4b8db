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


LLAMA_TOKENIZER_JS = "llama-tokenizer-js@1.2.2"


@pytest.fixture(scope="session")
def llama2_vocabulary(tmp_path_factory) -> tuple[list[str], list[tuple[str, str]]]:
    """The real Llama-2 (= vicuna-7b-v1.5, llava-1.5) vocabulary and BPE merges, from the npm package
    llama-tokenizer-js (MIT code; the vocabulary is Meta's Llama 2 tokenizer, so it is downloaded, never committed).

    The package embeds both as base64: the pieces joined by newlines, and the merges as little-endian uint16 pairs
    of piece ids in priority order. Downloaded once into ~/.cache/llava-thanora/ (npm needs only the registry)."""
    import base64
    import re
    import shutil
    import struct
    import subprocess
    import tarfile

    cache = Path.home() / ".cache/llava-thanora"
    tarball = next(iter(sorted(cache.glob("llama-tokenizer-js-*.tgz"))), None) if cache.is_dir() else None
    if tarball is None:
        if shutil.which("npm") is None:
            pytest.fail("the real-tokenizer tests need npm (to fetch the llama-tokenizer-js package)")
        cache.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(["npm", "pack", LLAMA_TOKENIZER_JS, "--pack-destination", str(cache)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"npm pack {LLAMA_TOKENIZER_JS} failed: {proc.stderr[-2000:]}"
        tarball = next(iter(sorted(cache.glob("llama-tokenizer-js-*.tgz"))))
    with tarfile.open(tarball) as tar:
        js = tar.extractfile("package/llama-tokenizer.js").read().decode("utf-8")
    pieces = base64.b64decode(re.search(r'llama_vocab_base64 = "([^"]+)"', js).group(1)).decode("utf-8").split("\n")
    raw = base64.b64decode(re.search(r'llama_merges_binary = "([^"]+)"', js).group(1))
    ids = struct.unpack(f"<{len(raw) // 2}H", raw)
    merges = [(pieces[ids[i]], pieces[ids[i + 1]]) for i in range(0, len(ids), 2)]
    assert len(pieces) == 32000 and pieces[:3] == ["<unk>", "<s>", "</s>"]
    return pieces, merges


def llama2_tokenizer(vocabulary, legacy: bool):
    """llava-1.5-7b-hf's tokenizer: Llama-2's, plus `<image>` (32000) and `<pad>` (32001) as transformers' llava
    conversion adds them."""
    from transformers import LlamaTokenizer

    pieces, merges = vocabulary
    tok = LlamaTokenizer(vocab={p: i for i, p in enumerate(pieces)}, merges=merges, legacy=legacy,
                         add_bos_token=True, add_eos_token=False)
    tok.add_tokens(["<image>"], special_tokens=True)
    tok.add_special_tokens({"pad_token": "<pad>"})
    assert tok.convert_tokens_to_ids(["<image>", "<pad>"]) == [32000, 32001]
    assert tok("Hi").input_ids == [1, 6324]  # BOS, as Llama-2 and LLaVA tokenize
    return tok
