"""Builds the whole minimix benchmark: test sets first, then validation, train and pretrain sets that avoid
the images of the sets built before them.

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

GENERATOR_VERSION = "2.2"
IMAGE_FOLDER = "images"  # every "image" path in the outputs is relative to output_dir/images
VAL_ROOT = "val"  # output_dir/val: the validation set, laid out as a data root of its own
GENERATORS: Mapping[str, Callable[[str, int, MinimixConfig, frozenset[str]], list[Sample]]] = MappingProxyType(
    {"vqa": vqa.generate, "ocr": ocr.generate, "caption": caption.generate, "mcq": mcq.generate})
RECORDED_PACKAGES = ("pillow", "numpy", "easy-vqa", "matplotlib")


def check_disjoint(held_out: list[Sample], others: list[Sample], name: str = "test") -> None:
    """Raise if a sample of `others` shares an id, an image file or image pixels with a held-out one."""
    ids = {s.id for s in held_out}
    names = {s.image_name for s in held_out}
    pixels = {pixel_hash(s.image) for s in held_out}
    for s in others:
        if s.id in ids or s.image_name in names or pixel_hash(s.image) in pixels:
            raise RuntimeError(f"sample {s.id} ({s.image_name}) overlaps the {name} set")


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


def _write_eval_set(root: Path, samples: list[Sample], task: str) -> None:
    """The eval contract files of one task under `root` (which also receives their images)."""
    save_images(samples, root / IMAGE_FOLDER)
    write_jsonl(root / task / "test_questions.jsonl", [question_record(s) for s in samples])
    write_jsonl(root / task / "test_annotations.jsonl", [annotation_record(s) for s in samples])


def _write(root: Path, cfg: MinimixConfig, sets: dict[str, dict[str, list[Sample]]], pre: list[Sample]) -> dict:
    """Write every file under `root`; returns the manifest (also written as manifest.json)."""
    images = root / IMAGE_FOLDER
    test, val, train = sets["test"], sets["val"], sets["train"]
    for task in TASKS:
        _write_eval_set(root, test[task], task)
        # Same file names as the test set, so `eval.run --data-root output_dir/val` scores validation with
        # the registry's minimix entries unchanged.
        _write_eval_set(root / VAL_ROOT, val[task], task)
        save_images(train[task], images)
        write_json(root / "train" / f"{task}.json", [training_record(s, PROMPT_SUFFIX[task]) for s in train[task]])
    save_images(pre, images)
    # Pretraining samples carry no task instruction: the human turn is "<image>\n" + the prompt.
    write_json(root / "pretrain.json", [training_record(s, "") for s in pre])

    files = sorted(p for p in root.rglob("*") if p.is_file())
    manifest = {
        "name": "minimix",
        "generator_version": GENERATOR_VERSION,
        "seed": cfg.seed,
        "options": {"train_per_task": cfg.train_per_task, "caption_train": cfg.caption_train,
                    "test_per_task": cfg.test_per_task,
                    "val_per_task": cfg.val_per_task, "pretrain_samples": cfg.pretrain_samples,
                    "system_fonts": cfg.system_fonts},
        "packages": _package_versions(),
        "fonts": [f.name for f in ocr.find_fonts(cfg.system_fonts)],
        "image_folder": IMAGE_FOLDER,
        "val_root": VAL_ROOT,
        "prompt_suffix": dict(PROMPT_SUFFIX),
        "counts": {**{t: {"train": len(train[t]), "val": len(val[t]), "test": len(test[t])} for t in TASKS},
                   "pretrain": len(pre)},
        "files": {p.relative_to(root).as_posix(): sha256_file(p) for p in files},
    }
    write_json(root / "manifest.json", manifest)
    return manifest


def build_minimix(cfg: MinimixConfig) -> dict:
    """Build the benchmark into cfg.output_dir (replacing an earlier minimix build there); returns the manifest."""
    out = Path(cfg.output_dir).resolve()
    if out.exists() and any(out.iterdir()) and not _is_minimix_build(out):
        raise FileExistsError(f"{out} is not empty and holds no minimix manifest.json; refusing to overwrite it")

    # Each split avoids the pixels of the splits built before it: test first (so it depends on nothing
    # else and grows by prefix), then validation, then the training side.
    sizes = {"test": cfg.test_per_task, "val": cfg.val_per_task, "train": cfg.train_per_task}

    def count(split: str, task: str) -> int:
        return cfg.caption_train if (split, task) == ("train", "caption") else sizes[split]

    sets: dict[str, dict[str, list[Sample]]] = {}
    held_out: frozenset[str] = frozenset()
    for split in ("test", "val", "train"):
        sets[split] = {t: GENERATORS[t](split, count(split, t), cfg, held_out) for t in TASKS}
        if split != "train":
            held_out |= {pixel_hash(s.image) for t in TASKS for s in sets[split][t]}
    pre = pretrain.generate(cfg, held_out)
    flat = {split: [s for t in TASKS for s in sets[split][t]] for split in sets}
    check_disjoint(flat["test"], flat["val"] + flat["train"] + pre, "test")
    check_disjoint(flat["val"], flat["train"] + pre, "validation")

    out.parent.mkdir(parents=True, exist_ok=True)
    # Hidden siblings on the same file system, so the final renames are cheap and atomic; plain mkdir
    # (not mkdtemp, which makes 0700 folders) so the result gets the user's usual permissions.
    staging = out.with_name(f".{out.name}.building-{os.getpid()}")
    staging.mkdir()
    try:
        manifest = _write(staging, cfg, sets, pre)
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
