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
      "max_new_tokens": 128,                               # the generation budget of the reference
      "reference": "llava-1.5",                            # llava-1.5 | lmms-eval | llm-adapters | none (README's parity table)
      "suffix_in_text": false,                             # optional: the texts already end with the suffix
      "annotation_format": "jsonl",                        # optional: jsonl | textvqa | scienceqa | gqa (eval.formats)
      "image_aspect_ratio": null,                          # optional: pad | original, else the run's --image-aspect-ratio
      "group_by": "task",                                  # optional: question field of the per-group breakdown
      "submission": null, "submission_question_file": null,  # server-scored splits (eval.submission)
      "data_root": null,                                   # optional: the default root of this entry
      "description": "...", "source": "..."                # optional free text
    }

The model sees the question's text, then (when the suffix is not empty) a newline and the suffix
(`Benchmark.prompt`, i.e. `llava_thanora.data.conversation.with_suffix`, the one rule that eval.generate, the
minimix builder and ``scripts/prepare_data`` all use). LLaVA's own eval files already end every text with the
suffix; their entries say ``"suffix_in_text": true`` and the text is asked as it is (checked line by line, so a
suffix is never asked twice). A server-scored split (VQAv2 test-dev) has no annotation file but a "submission"
format: eval.run then writes the file to upload instead of a score.
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

from eval.formats import ANNOTATION_FORMATS
from eval.io import read_json
from eval.metrics import METRICS
from eval.submission import SUBMISSIONS
from llava_thanora.data.conversation import with_suffix

BUILTIN_DIR = Path(__file__).with_name("benchmarks")
DEFAULT_DATA_ROOT = "playground/data/eval"


@dataclass(frozen=True)
class BenchmarkPaths:
    """The files of a benchmark resolved against a data root."""

    question_file: Path
    """Question file (JSONL, or a LLaVA conversation list)."""
    annotation_file: Path | None
    """Annotations; None for a server-scored split."""
    image_folder: Path | None
    """Folder that question "image" paths are relative to; None for text-only benchmarks."""
    submission_question_file: Path | None = None
    """Every question the server expects an answer for (VQAv2: all of test2015), when that differs."""


@dataclass(frozen=True)
class Benchmark:
    """One registry entry (see the module docstring for the JSON form)."""

    name: str
    """Registry key and table column; equals the JSON file's stem."""
    question_file: str
    """Question file relative to the data root: JSONL, or (``.json``) a list of LLaVA conversation rows."""
    annotation_file: str | None
    """Annotations relative to the data root; null for a server-scored split (then "submission" is required)."""
    metric: str
    """Name of the metric in eval.metrics.METRICS (for a server-scored split: the server's)."""
    image_folder: str | None = None
    """Image folder relative to the data root; None when no question has an image."""
    prompt_suffix: str = ""
    """Instruction put on a new line after each question's text (nothing when empty)."""
    max_new_tokens: int = 128
    """Generation budget per answer: the reference's (LLaVA-1.5: 128, ScienceQA 1024; lmms-eval: its task's)."""
    reference: str = "none"
    """Whose protocol the entry follows: "llava-1.5", "lmms-eval", or "none" (README: the parity table)."""
    suffix_in_text: bool = False
    """The question texts already end with "\n" + prompt_suffix (LLaVA's eval files); asked as they are."""
    annotation_format: str = "jsonl"
    """How annotation_file is read and joined to the questions (eval.formats.ANNOTATION_FORMATS)."""
    image_aspect_ratio: str | None = None
    """pad or original when the reference fixes it (lmms-eval's ScienceQA: original); None = the run's flag."""
    group_by: str = "task"
    """Question field whose values get their own scores (per_<field> in the summary)."""
    submission: str | None = None
    """Server upload format (eval.submission.SUBMISSIONS) written by eval.run for a server-scored split."""
    submission_question_file: str | None = None
    """The server's full question list when it is larger than question_file (VQAv2: test2015 for test-dev)."""
    data_root: str | None = None
    """Default root for this entry's relative paths (an explicit --data-root takes precedence)."""
    description: str = ""
    """What the benchmark measures and which split it uses."""
    source: str = ""
    """Where the data comes from and how to prepare it."""

    def prompt(self, text: str) -> str:
        """The text a training sample asks: the question, then the suffix on its own line when there is one."""
        return with_suffix(text, self.prompt_suffix)

    def paths(self, data_root: str | Path | None = None) -> BenchmarkPaths:
        """The entry's files under `data_root` when given, else under its own data_root, else the default."""
        root = Path(data_root or self.data_root or DEFAULT_DATA_ROOT)

        def under(name: str | None) -> Path | None:
            return root / name if name else None

        return BenchmarkPaths(root / self.question_file, under(self.annotation_file), under(self.image_folder),
                              under(self.submission_question_file))


_FIELDS = {f.name: f for f in dataclasses.fields(Benchmark)}
_REQUIRED = {name for name, f in _FIELDS.items() if f.default is dataclasses.MISSING}
_OPTIONAL_STRINGS = {"image_folder", "data_root", "annotation_file", "image_aspect_ratio", "submission",
                     "submission_question_file"}
REFERENCES = ("llava-1.5", "lmms-eval", "llm-adapters", "none")
_CHOICES = {"reference": REFERENCES, "annotation_format": tuple(ANNOTATION_FORMATS),
            "image_aspect_ratio": ("pad", "original"), "submission": tuple(SUBMISSIONS)}


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
        elif key == "suffix_in_text":
            if not isinstance(value, bool):
                raise ValueError(f"{path}: suffix_in_text must be true or false, got {value!r}")
        elif not (isinstance(value, str) or (value is None and key in _OPTIONAL_STRINGS)):
            raise ValueError(f"{path}: field {key!r} must be a string, got {value!r}")
        elif key in _CHOICES and value is not None and value not in _CHOICES[key]:
            raise ValueError(f"{path}: {key} must be one of {', '.join(_CHOICES[key])}, got {value!r}")
    if data["name"] != path.stem:
        raise ValueError(f"{path}: name {data['name']!r} must equal the file name {path.stem!r}")
    if data["metric"] not in METRICS:
        raise ValueError(f"{path}: unknown metric {data['metric']!r}; known: {', '.join(METRICS)}")
    if (data["annotation_file"] is None) == (data.get("submission") is None):
        raise ValueError(f"{path}: a server-scored split has \"annotation_file\": null and a \"submission\" format; "
                         "an entry with annotations has no submission")
    if data.get("submission_question_file") and not data.get("submission"):
        raise ValueError(f"{path}: submission_question_file needs a submission format")
    if data.get("suffix_in_text") and not data.get("prompt_suffix"):
        raise ValueError(f"{path}: suffix_in_text needs the prompt_suffix the texts end with")
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
    wanted: list[Any] = [p.question_file, p.annotation_file, p.image_folder, p.submission_question_file]
    return [f for f in wanted if f is not None and not f.exists()]


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
        print(f"{bench.name:20} {bench.reference:9} {bench.metric:22} {bench.paths(args.data_root).question_file}  "
              f"[{status}]")
    return int(args.check and failed)


if __name__ == "__main__":
    sys.exit(main())
