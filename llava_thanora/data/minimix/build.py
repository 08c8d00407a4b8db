"""Builds the whole minimix benchmark: test sets first, then train and pretrain sets that avoid their images.

The files are written to a staging folder beside the output folder and swapped in at the end, so an
interrupted build never leaves a half-written benchmark behind a valid-looking manifest.
"""

from __future__ import annotations

import json
import os
import shutil
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Mapping

from . import caption, mcq, ocr, pretrain, vqa
from .writer import (PROMPT_SUFFIX, TASKS, MinimixConfig, Sample, annotation_record, pixel_hash, question_record,
                     save_images, sha256_file, training_record, write_json, write_jsonl)

GENERATOR_VERSION = "1.0"
IMAGE_FOLDER = "images"  # every "image" path in the outputs is relative to output_dir/images
GENERATORS: Mapping[str, Callable[[str, int, MinimixConfig, frozenset[str]], list[Sample]]] = MappingProxyType(
    {"vqa": vqa.generate, "ocr": ocr.generate, "caption": caption.generate, "mcq": mcq.generate})
RECORDED_PACKAGES = ("pillow", "numpy", "scikit-learn", "easy-vqa", "matplotlib")


def check_disjoint(test: list[Sample], others: list[Sample]) -> None:
    """Raise if a training or pretraining sample shares an id, an image file or image pixels with a test one."""
    ids = {s.id for s in test}
    names = {s.image_name for s in test}
    pixels = {pixel_hash(s.image) for s in test}
    for s in others:
        if s.id in ids or s.image_name in names or pixel_hash(s.image) in pixels:
            raise RuntimeError(f"sample {s.id} ({s.image_name}) overlaps the test set")


def _is_minimix_build(folder: Path) -> bool:
    """Whether `folder` holds an earlier minimix build (so it may be replaced)."""
    try:
        return json.loads((folder / "manifest.json").read_text(encoding="utf-8")).get("name") == "minimix"
    except (OSError, ValueError, AttributeError):
        return False


def _package_versions() -> dict[str, str]:
    found = {}
    for name in RECORDED_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "absent"
    return found


def _write(root: Path, cfg: MinimixConfig, test: dict[str, list[Sample]], train: dict[str, list[Sample]],
           pre: list[Sample]) -> dict:
    """Write every file under `root`; returns the manifest (also written as manifest.json)."""
    images = root / IMAGE_FOLDER
    for task in TASKS:
        save_images(test[task] + train[task], images)
        write_json(root / "train" / f"{task}.json", [training_record(s, PROMPT_SUFFIX[task]) for s in train[task]])
        write_jsonl(root / task / "test_questions.jsonl", [question_record(s) for s in test[task]])
        write_jsonl(root / task / "test_annotations.jsonl", [annotation_record(s) for s in test[task]])
    save_images(pre, images)
    # Pretraining samples carry no task instruction: the human turn is "<image>\n" + the prompt.
    write_json(root / "pretrain.json", [training_record(s, "") for s in pre])

    files = sorted(p for p in root.rglob("*") if p.is_file())
    manifest = {
        "name": "minimix",
        "generator_version": GENERATOR_VERSION,
        "seed": cfg.seed,
        "options": {"train_per_task": cfg.train_per_task, "test_per_task": cfg.test_per_task,
                    "pretrain_samples": cfg.pretrain_samples, "system_fonts": cfg.system_fonts},
        "packages": _package_versions(),
        "fonts": [f.name for f in ocr.find_fonts(cfg.system_fonts)],
        "image_folder": IMAGE_FOLDER,
        "prompt_suffix": dict(PROMPT_SUFFIX),
        "counts": {**{t: {"train": len(train[t]), "test": len(test[t])} for t in TASKS}, "pretrain": len(pre)},
        "files": {p.relative_to(root).as_posix(): sha256_file(p) for p in files},
    }
    write_json(root / "manifest.json", manifest)
    return manifest


def build_minimix(cfg: MinimixConfig) -> dict:
    """Build the benchmark into cfg.output_dir (replacing an earlier minimix build there); returns the manifest."""
    out = Path(cfg.output_dir).resolve()
    if out.exists() and any(out.iterdir()) and not _is_minimix_build(out):
        raise FileExistsError(f"{out} is not empty and holds no minimix manifest.json; refusing to overwrite it")

    test = {t: GENERATORS[t]("test", cfg.test_per_task, cfg, frozenset()) for t in TASKS}
    test_all = [s for t in TASKS for s in test[t]]
    test_pixels = frozenset(pixel_hash(s.image) for s in test_all)
    train = {t: GENERATORS[t]("train", cfg.train_per_task, cfg, test_pixels) for t in TASKS}
    pre = pretrain.generate(cfg, test_pixels)
    check_disjoint(test_all, [s for t in TASKS for s in train[t]] + pre)

    out.parent.mkdir(parents=True, exist_ok=True)
    # Hidden siblings on the same file system, so the final renames are cheap and atomic; plain mkdir
    # (not mkdtemp, which makes 0700 folders) so the result gets the user's usual permissions.
    staging = out.with_name(f".{out.name}.building-{os.getpid()}")
    staging.mkdir()
    try:
        manifest = _write(staging, cfg, test, train, pre)
        if out.exists():
            trash = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(trash)
            staging.rename(out)
            shutil.rmtree(trash)
        else:
            staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return manifest
