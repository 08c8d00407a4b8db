"""JSONL helpers shared by generation (eval.run) and scoring (eval.score).

Every reader reports bad input as `JsonlError` naming the file and the 1-based line, and every id lookup
keys rows by ``str(question_id)``: JSON allows ids to be numbers in one file and strings in another
(LLaVA's own files mix them), and a prediction must match its reference either way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

PathLike = str | os.PathLike


class JsonlError(ValueError):
    """A JSONL file that cannot be used as it is; the message names the file, and the line when known."""


def iter_jsonl(path: PathLike) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for every non-blank line of a JSONL file.

    Raises JsonlError for a missing file, invalid JSON, or a line that is not a JSON object.
    """
    path = Path(path)
    if not path.is_file():
        raise JsonlError(f"{path}: no such file")
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise JsonlError(f"{path}:{number}: invalid JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise JsonlError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
            yield number, obj


def read_jsonl(path: PathLike) -> list[dict[str, Any]]:
    """All objects of a JSONL file, in file order."""
    return [obj for _, obj in iter_jsonl(path)]


def read_by_id(path: PathLike, key: str = "question_id") -> dict[str, dict[str, Any]]:
    """Rows of a JSONL file keyed by ``str(row[key])``, in file order.

    Raises JsonlError when a row lacks `key` or when an id occurs twice (both lines are named), because a
    duplicate would silently decide which of two predictions or references counts.
    """
    rows: dict[str, dict[str, Any]] = {}
    first_line: dict[str, int] = {}
    for number, obj in iter_jsonl(path):
        if key not in obj or obj[key] is None or isinstance(obj[key], (dict, list)):
            raise JsonlError(f"{path}:{number}: missing or invalid '{key}'")
        qid = str(obj[key])
        if qid in rows:
            raise JsonlError(f"{path}:{number}: duplicate {key} {qid!r} (first on line {first_line[qid]})")
        rows[qid] = obj
        first_line[qid] = number
    return rows


def write_jsonl(path: PathLike, rows: Iterable[Mapping[str, Any]], append: bool = False) -> int:
    """Write (or with `append`, add) one JSON object per line; create parent folders. Returns the row count.

    Non-ASCII text is written as is (UTF-8), so answers stay readable and byte-identical across runs.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("a" if append else "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_json(path: PathLike) -> Any:
    """Parse a JSON file; JsonlError names the file and line on failure."""
    path = Path(path)
    if not path.is_file():
        raise JsonlError(f"{path}: no such file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise JsonlError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None


def write_json(path: PathLike, obj: Any) -> None:
    """Write indented JSON with a trailing newline; create parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
