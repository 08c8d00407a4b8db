"""LLaVA-format training data: load (through `datasets`, cached as Arrow), validate, tokenize, serve lazily.

A sample is `{"id", "image"?, "conversations": [{"from": "human"|"gpt", "value"}...], "task"?}`; `image` is a path
(or a list of paths) relative to `--image_folder`, and each image needs one `<image>` tag in a human turn.
`--data_path a.json,b.jsonl` builds a mixture; a sample's task defaults to its file's stem.

Every sample is checked once, up front: a bad one raises `DataError` naming the file, line (JSONL) or item (JSON
list) and id, or, with `skip_bad_samples`, is dropped and counted in `skipped`. Nothing is silently trained with an
empty label. Images are decoded lazily in `__getitem__`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .conversation import IMAGE_TAG, ConversationError, PromptFormat
from .images import ImageError, check_image, load_image, resolve_image


class DataError(ValueError):
    """Bad training data; the message names the file, the line or item, and the sample id."""


@dataclass
class DataConfig:
    """What the dataset needs from the data arguments."""

    data_paths: list[str]
    image_folder: str | None = None
    model_max_length: int = 2048
    image_aspect_ratio: str = "pad"
    skip_bad_samples: bool = False
    num_proc: int | None = None
    cache_dir: str | None = None
    max_samples: int | None = None
    """Use only the first N samples of each file (quick runs)."""


@dataclass
class Skipped:
    """Bad samples dropped under `skip_bad_samples`: count and the first few reasons, for the end-of-run report."""

    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, message: str) -> None:
        self.count += 1
        if len(self.examples) < 5:
            self.examples.append(message)


def _where(path: str, index: int) -> str:
    """'file.jsonl:LINE' for JSONL (line of the index-th non-blank line), 'file.json item #i' for a JSON list."""
    if path.endswith(".jsonl"):
        seen = -1
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    seen += 1
                    if seen == index:
                        return f"{path}:{lineno}"
    return f"{path} item #{index}"


def _diagnose_unreadable(path: str, error: Exception) -> DataError:
    """`datasets` failed; find the exact spot with the standard json module so the message is actionable."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        if path.endswith(".jsonl"):
            for lineno, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError as e:
                        return DataError(f"{path}:{lineno}: invalid JSON: {e.msg} (column {e.colno})")
                    if not isinstance(obj, dict):
                        return DataError(f"{path}:{lineno}: each line must be a JSON object, got {type(obj).__name__}")
        else:
            data = json.loads(text)
            if not isinstance(data, list):
                return DataError(f"{path}: a .json data file must hold a list of samples (or use .jsonl)")
            for i, obj in enumerate(data):
                if not isinstance(obj, dict):
                    return DataError(f"{path} item #{i}: each sample must be a JSON object, got {type(obj).__name__}")
    except json.JSONDecodeError as e:
        return DataError(f"{path}:{e.lineno}: invalid JSON: {e.msg} (column {e.colno})")
    return DataError(f"{path}: could not be loaded as LLaVA data ({type(error).__name__}: {error}). Fields must have "
                     "one type across samples (e.g. 'image' always a string or always a list)")


def load_source(path: str, cache_dir: str | None = None):
    """One data file as a `datasets.Dataset` (Arrow-cached), with a clear error when it is not valid JSON."""
    import datasets

    if not Path(path).is_file():
        raise DataError(f"data file {path} does not exist")
    if not path.endswith(".jsonl"):
        with open(path, encoding="utf-8") as f:
            head = f.read(4096).lstrip()
        if not head.startswith("["):  # `datasets` would quietly read a lone object as a one-sample dataset
            raise DataError(f"{path}: a .json data file must hold a list of samples (or use .jsonl, one per line)")
    try:
        return datasets.load_dataset("json", data_files=path, split="train", cache_dir=cache_dir)
    except Exception as e:  # datasets/pyarrow raise many types; all mean "not loadable"
        raise _diagnose_unreadable(path, e) from e


class SupervisedDataset(torch.utils.data.Dataset):
    """Every sample validated and tokenized up front, in one `datasets.map` pass (cached as Arrow); images are
    decoded only when a sample is drawn."""

    def __init__(self, cfg: DataConfig, prompt_format: PromptFormat, image_processor):
        import datasets

        self.cfg, self.format, self.image_processor = cfg, prompt_format, image_processor
        self.skipped = Skipped()
        parts = []
        for path in cfg.data_paths:
            raw = load_source(path, cfg.cache_dir)
            if cfg.max_samples is not None:
                raw = raw.select(range(min(cfg.max_samples, len(raw))))
            prepared = raw.map(
                _Preparer(path, cfg, prompt_format), with_indices=True, remove_columns=raw.column_names,
                num_proc=cfg.num_proc, desc=f"tokenizing {Path(path).name}", features=_prepared_features(),
            )
            parts.append(self._drop_bad(prepared, path))
        self.data = datasets.concatenate_datasets(parts) if len(parts) > 1 else parts[0]
        if len(self.data) == 0:
            raise DataError(f"no usable samples in {', '.join(cfg.data_paths)} ({self.skipped.count} skipped)")
        self.tasks = sorted(set(self.data["task"]))

    def _drop_bad(self, prepared, path: str):
        errors = [(i, e) for i, e in enumerate(prepared["error"]) if e]
        if errors and not self.cfg.skip_bad_samples:
            i, msg = errors[0]
            more = f" ({len(errors) - 1} more bad samples in this file)" if len(errors) > 1 else ""
            raise DataError(f"{_where(path, i)}: {msg}{more}. Fix the data or pass --skip_bad_samples")
        for i, msg in errors:
            self.skipped.add(f"{_where(path, i)}: {msg}")
        return prepared.filter(lambda e: not e, input_columns="error") if errors else prepared

    def __len__(self) -> int:
        return len(self.data)

    def task_indices(self) -> dict[str, list[int]]:
        """Sample indices per task (for per-task preview statistics and per-task training)."""
        out: dict[str, list[int]] = {t: [] for t in self.tasks}
        for i, t in enumerate(self.data["task"]):
            out[t].append(i)
        return out

    def lengths(self) -> list[int]:
        return [len(x) for x in self.data["input_ids"]]

    def __getitem__(self, i: int) -> dict:
        row = self.data[i]
        item = {"input_ids": torch.tensor(row["input_ids"]), "labels": torch.tensor(row["labels"])}
        if row["images"]:
            mean = getattr(self.image_processor, "image_mean", None)
            try:
                imgs = [load_image(Path(p), self.cfg.image_aspect_ratio, mean) for p in row["images"]]
            except ImageError as e:
                raise DataError(f"sample {row['id']!r} (task {row['task']}): {e}") from e
            item["pixel_values"] = self.image_processor(imgs, return_tensors="pt")["pixel_values"]
        return item


def _prepared_features():
    """Explicit output schema: an all-text-only first batch would otherwise infer `images` as list<null>."""
    from datasets import Features, Sequence, Value

    return Features({"id": Value("string"), "task": Value("string"), "input_ids": Sequence(Value("int32")),
                     "labels": Sequence(Value("int32")), "images": Sequence(Value("string")), "error": Value("string")})


class _Preparer:
    """The per-sample `datasets.map` function: validate and tokenize, returning an error string instead of raising
    so that every bad sample is found in one pass (and the map result can be cached)."""

    def __init__(self, path: str, cfg: DataConfig, prompt_format: PromptFormat):
        self.path, self.cfg, self.format, self.stem = path, cfg, prompt_format, Path(path).stem

    def __call__(self, sample: dict, index: int) -> dict:
        out = {"id": str(sample.get("id")), "task": sample.get("task") or self.stem,
               "input_ids": [], "labels": [], "images": [], "error": ""}
        try:
            out.update(self._prepare(sample))
        except (ConversationError, ImageError, DataError) as e:
            out["error"] = f"sample id={sample.get('id')!r}: {e}"
        return out

    def _prepare(self, sample: dict) -> dict:
        for key in ("id", "conversations"):
            if sample.get(key) is None:
                raise DataError(f"missing required field {key!r}")
        if not isinstance(sample["conversations"], list):
            raise DataError("'conversations' must be a list of turns")
        images = sample.get("image")
        images = [] if images is None else [images] if isinstance(images, str) else list(images)
        tags = sum(str(t.get("value", "")).count(IMAGE_TAG) for t in sample["conversations"] if isinstance(t, dict))
        if tags != len(images):
            raise DataError(f"{tags} {IMAGE_TAG} tag(s) but {len(images)} image(s); each image needs exactly one tag")
        paths = [resolve_image(self.cfg.image_folder, p) for p in images]
        for p in paths:
            check_image(p)
        tok = self.format.tokenize(sample["conversations"])
        if len(tok.input_ids) > self.cfg.model_max_length:
            raise DataError(f"{len(tok.input_ids)} tokens (image tokens included) exceed --model_max_length "
                            f"{self.cfg.model_max_length}: its answer would be truncated away")
        return {"input_ids": tok.input_ids, "labels": tok.labels, "images": [str(p) for p in paths]}


@dataclass
class Collator:
    """Right-pad a batch for training; images of all samples are stacked in order (the model consumes them in the
    order their `<image>` tokens appear)."""

    pad_token_id: int

    def __call__(self, items: list[dict]) -> dict:
        from torch.nn.utils.rnn import pad_sequence

        ids = pad_sequence([x["input_ids"] for x in items], batch_first=True, padding_value=self.pad_token_id)
        labels = pad_sequence([x["labels"] for x in items], batch_first=True, padding_value=-100)
        mask = torch.zeros_like(ids, dtype=torch.long)
        for row, x in enumerate(items):
            mask[row, : len(x["input_ids"])] = 1
        batch = {"input_ids": ids, "labels": labels, "attention_mask": mask}
        pixels = [x["pixel_values"] for x in items if "pixel_values" in x]
        if pixels:
            batch["pixel_values"] = torch.cat(pixels)
        return batch
