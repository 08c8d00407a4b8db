"""What every dataset converter shares: load a published `datasets` dataset, save its images, and write LLaVA
training JSON plus the question / annotation JSONL that eval.score reads.

A converter (``scripts/prepare_data/<dataset>.py``) only says how one source row becomes `Item`s; this module
alone decides the file layout and the prompt rule::

    <output-dir>/images/<task>/<image file>           each distinct image once, with its original bytes
    <output-dir>/train/<task>_<split>.json           LLaVA training JSON: one record per (item, target)
    <output-dir>/<task>/<split>_questions.jsonl      {"question_id", "image", "text", "task", ...extra}
    <output-dir>/<task>/<split>_<variant>_questions.jsonl   the same questions worded another way (Item.variants)
    <output-dir>/<task>/<split>_annotations.jsonl    {"question_id", "answers"}

Image paths in both are relative to ``<output-dir>/images``, so one image folder serves every converted
dataset. The human turn is ``"<image>\\n" + Benchmark.prompt(text)``: the question, then the registry's
prompt_suffix for the dataset's benchmark on a new line, exactly what evaluation asks. Question files hold
the bare text; eval.run appends the suffix.

Common flags: --dataset (hub id, or a local copy: a `save_to_disk` folder, a parquet file, or a folder of
parquet files as the hub stores them), --config, --split, --output-dir, --max-samples (first N source rows).
"""

from __future__ import annotations

import argparse
import hashlib
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from eval.benchmarks import DEFAULT_DATA_ROOT, get_benchmarks
from eval.io import write_json, write_jsonl

# PIL format name -> file extension for saved images.
_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif"}


@dataclass(frozen=True)
class Item:
    """One question made from a source row."""

    id: str
    """question_id, and the training record id (suffixed _<k> when there are several targets)."""
    text: str
    """The question without the prompt suffix."""
    answers: Sequence[str]
    """Reference answers for the annotation file."""
    targets: Sequence[str] = ()
    """Training answers, one record each; empty means (answers[0],)."""
    image: Any = None
    """The source image: a `datasets` {"bytes", "path"} value, a PIL image, a file path, or None (text only)."""
    image_name: str | None = None
    """File stem of the image, shared by items on the same image; default: a hash of the image bytes, so
    identical pictures are stored once even when the source has no image id."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Additional question-file fields (e.g. "choices"); never shown to the model by eval.run."""
    variants: Mapping[str, str] = field(default_factory=dict)
    """{variant: text}: the question worded for another reference's protocol (TextVQA "noocr": lmms-eval's,
    without the OCR line), written to <split>_<variant>_questions.jsonl; training uses `text`."""


@dataclass(frozen=True)
class DatasetSpec:
    """How a converter reads its dataset."""

    task: str
    """Task name: output folder, image sub-folder and the training records' "task"."""
    benchmark: str
    """Registry entry whose prompt_suffix the training prompts use."""
    default_dataset: str
    """Hub id used when --dataset is not given."""
    default_split: str
    """Split converted when --split is not given."""
    columns: Sequence[str]
    """Columns a row must have (checked before converting, naming what is missing)."""
    convert: Callable[[Mapping[str, Any], int, argparse.Namespace, Any], Iterable[Item]]
    """(row, row index, parsed args, resources) -> items."""
    image_columns: Sequence[str] = ("image",)
    """Image columns, read as raw bytes instead of decoded pictures."""
    default_config: str | None = None
    """Dataset config (subset) used when --config is not given."""
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    """Adds converter-specific flags."""
    prepare: Callable[[argparse.Namespace], Any] | None = None
    """Loads side data once (e.g. GQA's separate image table); passed to `convert` as `resources`."""


def most_common(answers: Sequence[str]) -> str:
    """The most frequent answer; ties go to the one that occurs first (VQA-style training target)."""
    return Counter(answers).most_common(1)[0][0]


def option_letters(choices: Sequence[Any]) -> str:
    """Choices as lettered lines, "A. first\\nB. second", as LLaVA-1.5 and the minimix builder list them."""
    if len(choices) > 26:
        raise ValueError(f"{len(choices)} choices is more than 26 option letters")
    return "\n".join(f"{chr(ord('A') + i)}. {c}" for i, c in enumerate(choices))


def load_source(dataset: str, config: str | None, split: str):
    """The `split` of a hub dataset or of a local copy (see the module docstring), as a datasets.Dataset."""
    import datasets

    config = config or None  # --config "" selects no config
    path = Path(dataset)
    if not path.exists():
        if dataset.startswith(("/", ".", "~")) or path.suffix == ".parquet":
            raise ValueError(f"{dataset}: no such file or folder")
        return datasets.load_dataset(dataset, config, split=split)
    if path.is_dir() and any((path / f).exists() for f in ("dataset_info.json", "dataset_dict.json", "state.json")):
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise ValueError(f"{path}: no split {split!r}; available: {sorted(loaded)}")
            return loaded[split]
        return loaded
    if path.is_file() and path.suffix in (".json", ".jsonl"):  # e.g. LLM-Adapters' dataset/<task>/test.json
        return datasets.load_dataset("json", data_files=str(path), split="train")
    if path.is_file():
        files = [path]
    else:
        # A hub snapshot keeps a split's shards as <config or data>/<split>-00000-of-00001.parquet.
        files = sorted(f for f in path.rglob("*.parquet")
                       if (f.name.startswith(f"{split}-") or f.stem == split or f.parent.name == split)
                       and (config is None or config in f.relative_to(path).parts))
    if not files:
        raise ValueError(f"{path}: no parquet files for split {split!r}" + (f" of config {config!r}" if config else ""))
    return datasets.load_dataset("parquet", data_files=[str(f) for f in files], split="train")


def _image_bytes(value: Any, item_id: str) -> tuple[bytes, str]:
    """(bytes, extension) of an image value; PIL images are stored as PNG."""
    from PIL import Image

    if isinstance(value, Image.Image):
        buffer = io.BytesIO()
        value.save(buffer, format="PNG")
        return buffer.getvalue(), ".png"
    if isinstance(value, dict):
        data = value.get("bytes") or (Path(value["path"]).read_bytes() if value.get("path") else None)
    else:
        data = Path(value).read_bytes() if isinstance(value, (str, Path)) else None
    if not data:
        raise ValueError(f"item {item_id}: unreadable image value {type(value).__name__}")
    try:
        fmt = Image.open(io.BytesIO(data)).format
    except Exception as e:  # PIL raises several types for bad data
        raise ValueError(f"item {item_id}: image bytes are not a picture ({e})") from None
    if fmt not in _EXTENSIONS:
        raise ValueError(f"item {item_id}: unsupported image format {fmt}")
    return data, _EXTENSIONS[fmt]


class _ImageWriter:
    """Writes each distinct image once and refuses two different pictures under one name."""

    def __init__(self, images_root: Path, task: str):
        self.root, self.task = images_root, task
        self.written: dict[str, tuple[str, str]] = {}  # stem -> (relative path, sha1)

    def save(self, item: Item) -> str:
        data, ext = _image_bytes(item.image, item.id)
        digest = hashlib.sha1(data).hexdigest()
        stem = item.image_name or digest[:16]
        if stem in self.written:
            name, seen = self.written[stem]
            if seen != digest:
                raise ValueError(f"item {item.id}: image {stem!r} was already written with other content")
            return name
        name = f"{self.task}/{stem}{ext}"
        (self.root / name).parent.mkdir(parents=True, exist_ok=True)
        (self.root / name).write_bytes(data)
        self.written[stem] = (name, digest)
        return name


def _records(item: Item, image: str | None, task: str, prompt: str, where: str) -> tuple[dict, dict, list[dict]]:
    """The question row, the annotation row and the training records of one item."""
    if not item.answers or not all(isinstance(a, str) for a in item.answers):
        raise ValueError(f"{where}: no reference answers (a split without public answers cannot be converted)")
    targets = list(item.targets) or [item.answers[0]]
    if not all(isinstance(t, str) and t.strip() for t in targets):
        raise ValueError(f"{where}: empty training answer")
    with_image = {"image": image} if image else {}
    question = {"question_id": item.id, **with_image, "text": item.text, "task": task, **item.extra}
    human = ("<image>\n" if image else "") + prompt
    records = [{"id": item.id if len(targets) == 1 else f"{item.id}_{k}", **with_image,
                "conversations": [{"from": "human", "value": human}, {"from": "gpt", "value": target}],
                "task": task} for k, target in enumerate(targets)]
    return question, {"question_id": item.id, "answers": list(item.answers)}, records


def build_parser(spec: DatasetSpec, description: str) -> argparse.ArgumentParser:
    """The converter's argument parser: the common flags plus the converter's own."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=spec.default_dataset, help="hub id or local copy")
    parser.add_argument("--config", default=spec.default_config, help="dataset config (subset)")
    parser.add_argument("--split", default=spec.default_split)
    parser.add_argument("--output-dir", default=DEFAULT_DATA_ROOT)
    parser.add_argument("--max-samples", type=int, help="convert only the first N source rows")
    if spec.add_arguments:
        spec.add_arguments(parser)
    return parser


def run(spec: DatasetSpec, argv: Sequence[str] | None = None, description: str = "") -> dict[str, Path]:
    """Convert one split; returns the paths written (keys: images, train, questions, annotations)."""
    import datasets

    args = build_parser(spec, description).parse_args(argv)
    suffix_rule = get_benchmarks([spec.benchmark])[0]
    source = load_source(args.dataset, args.config, args.split)
    missing = [c for c in spec.columns if c not in source.column_names]
    if missing:
        raise ValueError(f"{args.dataset} ({args.split}): missing column(s) {missing}; has {source.column_names}")
    if args.max_samples is not None:
        source = source.select(range(min(args.max_samples, len(source))))
    for column in spec.image_columns:
        if isinstance(source.features.get(column), datasets.Image):
            source = source.cast_column(column, datasets.Image(decode=False))

    resources = spec.prepare(args) if spec.prepare else None
    out = Path(args.output_dir)
    images = _ImageWriter(out / "images", spec.task)
    train, questions, annotations, seen = [], [], [], {}
    variants: dict[str, list[dict]] = {}
    for index, row in enumerate(source):
        for item in spec.convert(row, index, args, resources):
            where = f"{args.dataset} ({args.split}) row {index}, question {item.id!r}"
            if item.id in seen:
                raise ValueError(f"{where}: id already made from row {seen[item.id]}")
            seen[item.id] = index
            image = images.save(item) if item.image is not None else None
            question, annotation, records = _records(item, image, spec.task, suffix_rule.prompt(item.text), where)
            questions.append(question)
            annotations.append(annotation)
            for name, text in item.variants.items():
                variants.setdefault(name, []).append({**question, "text": text})
            train.extend(records)
    if not questions:
        raise ValueError(f"{args.dataset} ({args.split}): no questions were produced")
    paths = {"images": out / "images", "train": out / "train" / f"{spec.task}_{args.split}.json",
             "questions": out / spec.task / f"{args.split}_questions.jsonl",
             "annotations": out / spec.task / f"{args.split}_annotations.jsonl"}
    write_json(paths["train"], train)
    write_jsonl(paths["questions"], questions)
    write_jsonl(paths["annotations"], annotations)
    for name, rows in variants.items():
        if len(rows) != len(questions):
            raise ValueError(f"{args.dataset} ({args.split}): variant {name!r} words {len(rows)} of the "
                             f"{len(questions)} questions; a variant must word every question")
        paths[f"questions_{name}"] = out / spec.task / f"{args.split}_{name}_questions.jsonl"
        write_jsonl(paths[f"questions_{name}"], rows)
    print(f"{spec.task} {args.split}: {len(questions)} questions, {len(train)} training records, "
          f"{len(images.written)} images -> {out}")
    return paths


def main(spec: DatasetSpec, description: str, argv: Sequence[str] | None = None) -> None:
    """Run a converter from the command line; bad input ends with one clear error line."""
    try:
        run(spec, argv, description)
    except (ValueError, KeyError) as e:
        raise SystemExit(f"error: {e}") from None
