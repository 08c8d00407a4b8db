"""LLaVA-format training data: parse once into a memory-mapped Arrow cache, check cheaply up front, tokenize and
decode images lazily (in the DataLoader workers).

A sample is `{"id", "image"?, "conversations": [{"from": "human"|"gpt", "value"}...], "task"?}`; `image` is a path
(or a list of paths) relative to `--image_folder`, and each image needs one `<image>` tag in a human turn.
`--data_path a.json,b.jsonl` builds a mixture; a sample's task defaults to its file's stem.

Why lazily: tokenizing every sample and opening every image before the first step costs 2-15 ms a sample, half an
hour or more for LLaVA-1.5's 665k-sample mixture. So the work is split by cost:

- up front, on the main process of each node: each file is parsed once into an Arrow file (`cache_dir`, keyed by
  the file's path, size and modification time; memory-mapped, so ranks and DataLoader workers share its pages),
  and every sample's structure is checked as it is parsed: JSON, fields, roles, turn order, `<image>` tags against
  images. Image paths are then checked per distinct path (absolute, outside `--image_folder`, missing).
- lazily, in `__getitem__`: tokenization with the prompt format, the `--model_max_length` check, a non-empty label
  (nothing is trained with every label masked) and image decoding.

A bad sample raises `DataError` naming the file, the line (JSONL) or item (JSON list) and the id: up front for
what the cheap checks find, otherwise from the worker that draws it (the run then stops there). With
`skip_bad_samples`, an up-front failure is dropped and a lazy one is replaced by the next sample; both are counted
and reported at the end.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .conversation import IGNORE_INDEX, IMAGE_TAG, ConversationError, PromptFormat, to_messages
from .images import ImageError, load_image, resolve_image

logger = logging.getLogger("llava_thanora")
CACHE_VERSION = 1  # bump when the cached columns change
_BATCH_ROWS = 20_000  # samples per Arrow record batch while parsing (bounds the parser's temporary lists)
_CALIBRATION_SAMPLES = 32


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
    cache_dir: str | None = None
    """Where parsed Arrow copies of the data files go (default: $XDG_CACHE_HOME or ~/.cache, /llava_thanora/data)."""
    max_samples: int | None = None
    """Use only the first N samples of each file (quick runs)."""


@dataclass
class Skipped:
    """Bad samples under `skip_bad_samples`: those dropped up front (count, first reasons) and those found while
    training (one flag per sample in shared memory, so the main process sees what its DataLoader workers found)."""

    messages: list[str] = field(default_factory=list)
    lazy: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.bool))

    def add(self, message: str) -> None:
        self.messages.append(message)

    @property
    def count(self) -> int:
        return len(self.messages)

    @property
    def examples(self) -> list[str]:
        return self.messages[:5]

    def add_lazy(self, index: int, message: str) -> None:
        if not self.lazy[index]:
            self.lazy[index] = True
            logger.warning(f"skipped (--skip_bad_samples), replaced by the next sample: {message}")

    @property
    def lazy_count(self) -> int:
        return int(self.lazy.sum())

    def report(self) -> str:
        return (f"{self.count} bad samples dropped before training and {self.lazy_count} replaced while training "
                f"(--skip_bad_samples)" + ("; first ones:\n  " + "\n  ".join(self.examples) if self.examples else ""))


# ------------------------------------------------------------------------------------------------- parsing
def location(path: str, position: int) -> str:
    """'file.jsonl:LINE' for JSONL, 'file.json item #i' for a JSON list (`position` is the line or the item)."""
    return f"{path}:{position}" if path.endswith(".jsonl") else f"{path} item #{position}"


def _sample_id(sample_id: str | None) -> str:
    return "" if sample_id is None else f"sample id={sample_id!r}: "


def _cheap_errors(sample) -> tuple[dict, str]:
    """(the normalized sample, "" or what is wrong with it): the checks that need no tokenizer and no file."""
    if not isinstance(sample, dict):
        return {}, f"each sample must be a JSON object, got {type(sample).__name__}"
    normalized = {"id": None if sample.get("id") is None else str(sample["id"]), "task": sample.get("task"),
                  "images": [], "conversations": []}
    for key in ("id", "conversations"):
        if sample.get(key) is None:
            return normalized, f"missing required field {key!r}"
    if normalized["task"] is not None and not isinstance(normalized["task"], str):
        return normalized, f"'task' must be a string, got {type(normalized['task']).__name__}"
    images = sample.get("image")
    images = [] if images is None else [images] if isinstance(images, str) else images
    if not isinstance(images, list) or not all(isinstance(p, str) and p for p in images):
        return normalized, f"'image' must be a path or a list of paths, got {sample.get('image')!r:.80}"
    conversations = sample["conversations"]
    if not isinstance(conversations, list):
        return normalized, "'conversations' must be a list of turns"
    try:
        to_messages(conversations)
    except ConversationError as e:
        return normalized, str(e)
    tags = sum(t["value"].count(IMAGE_TAG) for t in conversations)
    if tags != len(images):
        return normalized, f"{tags} {IMAGE_TAG} tag(s) but {len(images)} image(s); each image needs exactly one tag"
    normalized["images"] = images
    normalized["conversations"] = [{"from": t["from"], "value": t["value"]} for t in conversations]
    return normalized, ""


def _schema():
    import pyarrow as pa

    turn = pa.struct([("from", pa.string()), ("value", pa.string())])
    return pa.schema([("id", pa.string()), ("task", pa.string()), ("images", pa.list_(pa.string())),
                      ("conversations", pa.list_(turn)), ("position", pa.int64()), ("chars", pa.int64()),
                      ("error", pa.string())])


def _samples(path: str):
    """(position, sample or a JSONDecodeError) for every sample of a JSON list or JSONL file."""
    if path.endswith(".jsonl"):
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    try:
                        yield lineno, json.loads(line)
                    except json.JSONDecodeError as e:
                        yield lineno, e
        return
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: invalid JSON: {e.msg} (column {e.colno})") from None
    if not isinstance(data, list):
        raise DataError(f"{path}: a .json data file must hold a list of samples (or use .jsonl, one per line)")
    yield from enumerate(data)


def _parse_to_arrow(path: str, destination: Path) -> None:
    """Parse `path` and write its samples, checked, as an Arrow IPC file (written aside, then renamed: atomic)."""
    import pyarrow as pa

    schema = _schema()
    tmp = destination.with_name(f"{destination.name}.{os.getpid()}.tmp")
    columns = {name: [] for name in schema.names}

    def flush(writer):
        if columns["id"]:
            writer.write_batch(pa.record_batch([pa.array(columns[n], type=schema.field(n).type) for n in schema.names],
                                               schema=schema))
            for values in columns.values():
                values.clear()

    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        for position, sample in _samples(path):
            if isinstance(sample, json.JSONDecodeError):
                normalized, error = {}, f"invalid JSON: {sample.msg} (column {sample.colno})"
            else:
                normalized, error = _cheap_errors(sample)
            turns = normalized.get("conversations", [])
            columns["id"].append(normalized.get("id"))
            columns["task"].append(normalized.get("task"))
            columns["images"].append(normalized.get("images", []))
            columns["conversations"].append(turns)
            columns["position"].append(position)
            columns["chars"].append(sum(len(t["value"]) for t in turns))
            columns["error"].append(error)
            if len(columns["id"]) >= _BATCH_ROWS:
                flush(writer)
        flush(writer)
    os.replace(tmp, destination)


def _cache_path(path: str, cache_dir: str | None) -> Path:
    """`<stem>-<hash of the path>-<hash of its size and mtime>.arrow` under the cache folder."""
    stat, resolved = os.stat(path), str(Path(path).resolve())
    root = Path(cache_dir) if cache_dir else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    root = root if cache_dir else root / "llava_thanora" / "data"
    root.mkdir(parents=True, exist_ok=True)
    version = hashlib.sha256(f"{CACHE_VERSION}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return root / f"{Path(path).stem}-{hashlib.sha256(resolved.encode()).hexdigest()[:12]}-{version}.arrow"


def load_source(path: str, cache_dir: str | None = None):
    """One data file as a memory-mapped Arrow table of checked samples (parsed on first use, then cached)."""
    import pyarrow as pa

    if not Path(path).is_file():
        raise DataError(f"data file {path} does not exist")
    cached = _cache_path(path, cache_dir)
    if not cached.is_file():
        _parse_to_arrow(path, cached)
        for stale in cached.parent.glob(cached.name.rsplit("-", 1)[0] + "-*.arrow"):  # earlier versions of the file
            if stale != cached:
                stale.unlink(missing_ok=True)
    return pa.ipc.open_file(pa.memory_map(str(cached))).read_all(), cached


# ------------------------------------------------------------------------------------------------- dataset
class SupervisedDataset(torch.utils.data.Dataset):
    """Samples of one or more LLaVA files: checked cheaply up front, tokenized and decoded when drawn (see the
    module docstring). `lengths()` and `has_image()` are known without tokenizing or opening anything.

    `encode_images(images) -> (model inputs, image tokens per image)` is the model family's image processing (one
    sample's images); without it the images go through `image_processor` and count `image_seq_length` each.
    """

    def __init__(self, cfg: DataConfig, prompt_format: PromptFormat, image_processor, encode_images=None):
        self.cfg, self.format, self.image_processor = cfg, prompt_format, image_processor
        self.encode_images = encode_images
        self.skipped = Skipped()
        self._root = Path(cfg.image_folder).resolve() if cfg.image_folder is not None else None
        self._tables, self._caches, files, rows = [], [], [], []
        for k, path in enumerate(cfg.data_paths):
            table, cached = load_source(path, cfg.cache_dir)
            if cfg.max_samples is not None:
                table = table.slice(0, cfg.max_samples)
            self._tables.append(table)
            self._caches.append(cached)
            good = self._drop_bad(path, table)
            files.append(np.full(len(good), k, dtype=np.int32))
            rows.append(good)
        self._file, self._row = np.concatenate(files), np.concatenate(rows)
        if len(self._row) == 0:
            raise DataError(f"no usable samples in {', '.join(cfg.data_paths)} ({self.skipped.count} skipped: "
                            + "; ".join(self.skipped.examples) + ")")
        self._index_columns()

    # -------------------------------------------------------------------------------------------- up front
    def _drop_bad(self, path: str, table) -> np.ndarray:
        """Row numbers of the samples that pass the cheap checks; the others raise or are counted as skipped."""
        errors = table.column("error").to_pylist()
        images = table.column("images").to_pylist()
        path_errors = self._image_path_errors({p for paths in images for p in paths})
        text_only = self.format.image_token is None  # a model without a vision tower
        for i, paths in enumerate(images):
            if not errors[i] and paths and text_only:
                errors[i] = f"{len(paths)} image(s), but this model has no vision tower (text only)"
            if not errors[i]:
                errors[i] = next((path_errors[p] for p in paths if path_errors[p]), "")
        bad = [i for i, e in enumerate(errors) if e]
        if not bad:
            return np.arange(len(errors), dtype=np.int64)
        ids, positions = table.column("id").to_pylist(), table.column("position").to_pylist()
        messages = [f"{location(path, positions[i])}: {_sample_id(ids[i])}{errors[i]}" for i in bad]
        if not self.cfg.skip_bad_samples:
            more = f" ({len(bad) - 1} more bad samples in this file)" if len(bad) > 1 else ""
            raise DataError(f"{messages[0]}{more}. Fix the data or pass --skip_bad_samples")
        for message in messages:
            self.skipped.add(message)
        keep = np.ones(len(errors), dtype=bool)
        keep[bad] = False
        return np.nonzero(keep)[0]

    def _image_path_errors(self, relative: set[str]) -> dict[str, str]:
        """{relative path: "" or why it cannot be used}, each distinct path checked once. A path that plainly
        passes (relative, not climbing out, listed in its folder, which resolves inside --image_folder) costs a
        set lookup: each folder is resolved and listed once, so 350k distinct images cost one listing per folder
        instead of 350k resolves. Any other path goes through `resolve_image`, which gives the exact reason."""
        root = Path(self.cfg.image_folder).resolve() if self.cfg.image_folder is not None else None
        listings: dict[str, frozenset] = {}
        out = {}
        for p in relative:
            norm = os.path.normpath(p)
            parent, name = os.path.split(norm)
            if root is not None and not os.path.isabs(p) and norm != ".." and not norm.startswith("../"):
                if parent not in listings:
                    folder = (root / parent).resolve()
                    inside = folder.is_relative_to(root) and folder.is_dir()
                    listings[parent] = frozenset(os.listdir(folder)) if inside else frozenset()
                if name in listings[parent]:
                    out[p] = ""
                    continue
            try:
                resolve_image(self.cfg.image_folder, p)
                out[p] = ""
            except ImageError as e:
                out[p] = str(e)
        return out

    def _index_columns(self) -> None:
        """Per usable sample: task code, image count, turns and characters, gathered from the Arrow columns."""
        import pyarrow.compute as pc

        tasks, n_images, turns, chars = [], [], [], []
        for k, table in enumerate(self._tables):
            rows = self._row[self._file == k]
            stem = Path(self.cfg.data_paths[k]).stem
            tasks += [t or stem for t in table.column("task").take(rows).to_pylist()]
            n_images.append(pc.list_value_length(table.column("images").take(rows)).to_numpy().astype(np.int64))
            turns.append(pc.list_value_length(table.column("conversations").take(rows)).to_numpy().astype(np.int64))
            chars.append(table.column("chars").take(rows).to_numpy())
        self.tasks = sorted(set(tasks))
        code = {t: i for i, t in enumerate(self.tasks)}
        self._task = np.array([code[t] for t in tasks], dtype=np.int32)
        self._n_images, self._turns = np.concatenate(n_images), np.concatenate(turns)
        self._chars = np.concatenate(chars) - len(IMAGE_TAG) * self._n_images  # a tag becomes image tokens
        self.skipped.lazy = torch.zeros(len(self._row), dtype=torch.bool).share_memory_()
        self._length_model = self._calibrate()

    def _calibrate(self) -> tuple[float, float, float]:
        """(tokens per conversation, per turn, per character) of the length estimate. The first two are the
        format's own text (system text, role names, separators), measured on one- and two-exchange conversations of
        one-letter turns; the last from the first samples, tokenized for real."""
        def size(exchanges: int) -> int:
            turns = [{"from": role, "value": "a"} for _ in range(exchanges) for role in ("human", "gpt")]
            return len(self.format.tokenize(turns).input_ids)

        one, two = size(1), size(2)
        per_turn = (two - one) / 2
        base = one - 2 * per_turn
        tokens = chars = 0.0
        for i in range(min(_CALIBRATION_SAMPLES, len(self))):
            try:
                tok = self.format.tokenize(self.conversations(i))
            except ConversationError:
                continue  # reported when the sample is drawn
            tokens += len(tok.input_ids) - tok.num_images * self.format.image_seq_length - base - per_turn * self._turns[i]
            chars += int(self._chars[i])
        return base, per_turn, max(tokens / chars, 0.05) if chars > 0 else 0.25

    # -------------------------------------------------------------------------------------------- queries
    def __len__(self) -> int:
        return len(self._row)

    def task_indices(self) -> dict[str, list[int]]:
        """Sample indices per task (for per-task preview statistics and per-task training)."""
        return {t: np.nonzero(self._task == k)[0].tolist() for k, t in enumerate(self.tasks)}

    def lengths(self) -> list[int]:
        """Estimated tokens per sample, image tokens included: the format's fixed tokens, the turns, the characters
        (at the tokens per character of the first samples) and the image tokens. Nothing is tokenized or opened."""
        base, per_turn, per_char = self._length_model
        text = np.rint(base + per_turn * self._turns + per_char * self._chars).astype(np.int64)
        return (text + self._n_images * self.format.image_seq_length).tolist()

    def has_image(self) -> list[bool]:
        return (self._n_images > 0).tolist()

    def _field(self, i: int, name: str):
        return self._tables[self._file[i]].column(name)[int(self._row[i])].as_py()

    def sample_id(self, i: int) -> str:
        return self._field(i, "id")

    def where(self, i: int) -> str:
        """'file:line' or 'file item #n' and the id of sample `i`, for messages."""
        path = self.cfg.data_paths[self._file[i]]
        return f"{location(path, self._field(i, 'position'))}: {_sample_id(self._field(i, 'id'))}".rstrip(": ")

    def conversations(self, i: int) -> list[dict]:
        return self._field(i, "conversations")

    # -------------------------------------------------------------------------------------------- lazy part
    def tokenized(self, i: int, image_counts: list[int] | None = None):
        """Sample `i` through the prompt format, with the checks that need the tokenizer (DataError if bad).
        `image_counts`: the image tokens of each of its images (default: `image_seq_length` each)."""
        try:
            tok = self.format.tokenize(self.conversations(i), image_counts)
        except ConversationError as e:
            raise DataError(f"{self.where(i)}: {e}") from e
        if len(tok.input_ids) > self.cfg.model_max_length:
            raise DataError(f"{self.where(i)}: {len(tok.input_ids)} tokens (image tokens included) exceed "
                            f"--model_max_length {self.cfg.model_max_length}: its answer would be truncated away")
        if all(label == IGNORE_INDEX for label in tok.labels):
            raise DataError(f"{self.where(i)}: no token is supervised (every label masked); nothing would be trained")
        return tok

    def load(self, i: int) -> dict:
        """Sample `i` as the collator takes it: images decoded and processed first (their sizes decide their token
        counts for anyres and Qwen2-VL), then tokenized (DataError if bad). Keys besides input_ids and labels are
        the model's image inputs."""
        paths = self._field(i, "images")
        image_inputs, counts = {}, None
        if paths:
            mean = getattr(self.image_processor, "image_mean", None)
            try:
                imgs = [load_image(self._root / p, self.cfg.image_aspect_ratio, mean) for p in paths]
            except ImageError as e:
                raise DataError(f"{self.where(i)}: {e}") from e
            if self.encode_images is not None:
                image_inputs, counts = self.encode_images(imgs)
            else:
                image_inputs = {"pixel_values": self.image_processor(imgs, return_tensors="pt")["pixel_values"]}
        tok = self.tokenized(i, counts)
        return {"input_ids": torch.tensor(tok.input_ids), "labels": torch.tensor(tok.labels), **image_inputs}

    def __getitem__(self, i: int) -> dict:
        for k in range(len(self)):
            j = (i + k) % len(self)
            if self.skipped.lazy[j]:
                continue
            try:
                return self.load(j)
            except DataError as e:
                if not self.cfg.skip_bad_samples:
                    raise
                self.skipped.add_lazy(j, str(e))
        raise DataError(f"no usable sample left in {', '.join(self.cfg.data_paths)}")

    # A spawned DataLoader worker reopens the memory maps instead of receiving the tables' bytes.
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_tables"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        import pyarrow as pa

        self.__dict__.update(state)
        tables = [pa.ipc.open_file(pa.memory_map(str(c))).read_all() for c in self._caches]
        if self.cfg.max_samples is not None:
            tables = [t.slice(0, self.cfg.max_samples) for t in tables]
        self._tables = tables


@dataclass
class Collator:
    """Right-pad a batch for training. The samples' image inputs are combined by `collate_images` (the model
    family's rule; default: concatenated, in order: the model consumes them in the order their image tokens
    appear), and `token_inputs(input_ids)` adds per-token inputs some families need (Qwen2-VL's
    `mm_token_type_ids`)."""

    pad_token_id: int
    collate_images: Callable[[list[dict]], dict] | None = None
    token_inputs: Callable[[torch.Tensor], dict] | None = None

    def __call__(self, items: list[dict]) -> dict:
        from torch.nn.utils.rnn import pad_sequence

        ids = pad_sequence([x["input_ids"] for x in items], batch_first=True, padding_value=self.pad_token_id)
        labels = pad_sequence([x["labels"] for x in items], batch_first=True, padding_value=-100)
        mask = torch.zeros_like(ids, dtype=torch.long)
        for row, x in enumerate(items):
            mask[row, : len(x["input_ids"])] = 1
        batch = {"input_ids": ids, "labels": labels, "attention_mask": mask}
        images = [{k: v for k, v in x.items() if k not in ("input_ids", "labels")} for x in items]
        images = [inputs for inputs in images if inputs]
        if images:
            batch.update(self.collate_images(images) if self.collate_images else
                         {k: torch.cat([x[k] for x in images]) for k in images[0]})
        if self.token_inputs is not None:
            batch.update(self.token_inputs(ids))
        return batch
