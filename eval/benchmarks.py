"""The benchmark registry: one plain JSON file per benchmark, so a new visual task needs no code.

Built-in entries live in ``eval/benchmarks/<name>.json``; users add or override entries with
``--benchmark-dir DIR`` (any folder of such files). An entry::

    {
      "name": "textvqa",                                   # must equal the file name (textvqa.json)
      "question_file": "textvqa/validation_questions.jsonl",  # relative to the data root
      "annotation_file": "textvqa/validation_annotations.jsonl",
      "image_folder": "images",                            # question "image" paths are relative to it
      "metric": "vqa_accuracy",                            # a name from eval.metrics.METRICS
      "prompt_suffix": "Answer the question using a single word or phrase.",
      "max_new_tokens": 32,
      "data_root": null,                                   # optional: the default root of this entry
      "description": "...", "source": "..."                # optional free text
    }

The model sees the question's text, then (when the suffix is not empty) a newline and the suffix
(`Benchmark.prompt`, i.e. `llava_thanora.data.conversation.with_suffix`, the one rule that eval.generate, the
minimix builder and ``scripts/prepare_data`` all use).
Relative paths resolve against the data root: the caller's ``--data-root`` when given, else the entry's own
``data_root`` (relative to the working directory), else ``playground/data/eval``.

    python -m eval.benchmarks [--benchmark-dir DIR] [--data-root ROOT] [--check]

lists the entries and, with ``--check``, fails when a file or folder an entry names does not exist.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from eval.io import read_json
from llava_thanora.data.conversation import with_suffix
from eval.metrics import METRICS

BUILTIN_DIR = Path(__file__).with_name("benchmarks")
DEFAULT_DATA_ROOT = "playground/data/eval"


@dataclass(frozen=True)
class BenchmarkPaths:
    """The files of a benchmark resolved against a data root."""

    question_file: Path
    """Question JSONL."""
    annotation_file: Path
    """Annotation JSONL."""
    image_folder: Path | None
    """Folder that question "image" paths are relative to; None for text-only benchmarks."""


@dataclass(frozen=True)
class Benchmark:
    """One registry entry (see the module docstring for the JSON form)."""

    name: str
    """Registry key and table column; equals the JSON file's stem."""
    question_file: str
    """Question JSONL, relative to the data root."""
    annotation_file: str
    """Annotation JSONL, relative to the data root."""
    metric: str
    """Name of the metric in eval.metrics.METRICS."""
    image_folder: str | None = None
    """Image folder relative to the data root; None when no question has an image."""
    prompt_suffix: str = ""
    """Instruction put on a new line after each question's text (nothing when empty)."""
    max_new_tokens: int = 128
    """Generation budget per answer."""
    data_root: str | None = None
    """Default root for this entry's relative paths (an explicit --data-root takes precedence)."""
    description: str = ""
    """What the benchmark measures and which split it uses."""
    source: str = ""
    """Where the data comes from and how to prepare it."""

    def prompt(self, text: str) -> str:
        """The text the model is asked: the question, then the suffix on its own line when there is one."""
        return with_suffix(text, self.prompt_suffix)

    def paths(self, data_root: str | Path | None = None) -> BenchmarkPaths:
        """The entry's files under `data_root` when given, else under its own data_root, else the default."""
        root = Path(data_root or self.data_root or DEFAULT_DATA_ROOT)
        return BenchmarkPaths(root / self.question_file, root / self.annotation_file,
                              root / self.image_folder if self.image_folder else None)


_FIELDS = {f.name: f for f in dataclasses.fields(Benchmark)}
_REQUIRED = {name for name, f in _FIELDS.items() if f.default is dataclasses.MISSING}
_OPTIONAL_STRINGS = {"image_folder", "data_root"}


def load_benchmark_file(path: str | Path) -> Benchmark:
    """Parse and validate one entry; ValueError names the file and the offending field."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a benchmark entry must be a JSON object")
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise ValueError(f"{path}: unknown field(s) {unknown}; allowed: {sorted(_FIELDS)}")
    absent = sorted(_REQUIRED - set(data))
    if absent:
        raise ValueError(f"{path}: missing required field(s) {absent}")
    for key, value in data.items():
        if key == "max_new_tokens":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{path}: max_new_tokens must be a positive integer, got {value!r}")
        elif not (isinstance(value, str) or (value is None and key in _OPTIONAL_STRINGS)):
            raise ValueError(f"{path}: field {key!r} must be a string, got {value!r}")
    if data["name"] != path.stem:
        raise ValueError(f"{path}: name {data['name']!r} must equal the file name {path.stem!r}")
    if data["metric"] not in METRICS:
        raise ValueError(f"{path}: unknown metric {data['metric']!r}; known: {', '.join(METRICS)}")
    return Benchmark(**data)


def _load_dir(folder: Path) -> dict[str, Benchmark]:
    if not folder.is_dir():
        raise ValueError(f"{folder}: benchmark directory does not exist")
    return {b.name: b for b in map(load_benchmark_file, sorted(folder.glob("*.json")))}


def load_registry(extra_dirs: Iterable[str | Path] = ()) -> dict[str, Benchmark]:
    """All entries: the built-in ones, then each extra directory's, which replace built-ins of the same name.

    The same name in two extra directories is an error, since neither can be preferred.
    """
    registry = _load_dir(BUILTIN_DIR)
    seen: dict[str, Path] = {}
    for folder in map(Path, extra_dirs):
        for name, bench in _load_dir(folder).items():
            if name in seen:
                raise ValueError(f"benchmark {name!r} is defined in both {seen[name]} and {folder}")
            seen[name] = folder
            registry[name] = bench
    return registry


def get_benchmarks(names: str | Sequence[str], extra_dirs: Iterable[str | Path] = ()) -> list[Benchmark]:
    """Entries for `names` (a list, or a comma-separated string) in the given order."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    registry = load_registry(extra_dirs)
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise ValueError(f"unknown benchmark(s) {unknown}; known: {', '.join(sorted(registry))}")
    return [registry[n] for n in names]


def missing_files(bench: Benchmark, data_root: str | Path | None = None) -> list[Path]:
    """The files and folders of `bench` that do not exist under the data root."""
    p = bench.paths(data_root)
    wanted: list[Any] = [p.question_file, p.annotation_file] + ([p.image_folder] if p.image_folder else [])
    return [f for f in wanted if not f.exists()]


def main(argv: Sequence[str] | None = None) -> int:
    """List the registry; with --check, return 1 when an entry's files are missing."""
    parser = argparse.ArgumentParser(prog="python -m eval.benchmarks", description="List benchmark entries.")
    parser.add_argument("--benchmark-dir", action="append", default=[], help="extra entries (repeatable)")
    parser.add_argument("--data-root", default=None, help=f"default: each entry's own, else {DEFAULT_DATA_ROOT}")
    parser.add_argument("--check", action="store_true", help="fail when an entry's files are missing")
    args = parser.parse_args(argv)
    try:
        registry = load_registry(args.benchmark_dir)
    except ValueError as e:
        sys.exit(f"error: {e}")
    failed = False
    for bench in registry.values():
        missing = missing_files(bench, args.data_root)
        failed |= bool(missing)
        status = "ok" if not missing else "missing " + ", ".join(map(str, missing))
        print(f"{bench.name:18} {bench.metric:17} {bench.paths(args.data_root).question_file}  [{status}]")
    return int(args.check and failed)


if __name__ == "__main__":
    sys.exit(main())
