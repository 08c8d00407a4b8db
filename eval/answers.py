"""What produced an answers file, and the rule that answers are only ever reused by the run that wrote them.

An answers file ``A.jsonl`` comes with its record ``A.jsonl.record.json``::

    {"fingerprint": "3f2a...", "record": {"model": ..., "prompt": ..., "generation": ..., "questions": ...},
     "info": {...}}

`record` holds everything that decides an answer: the model (paths as given and resolved, and a fingerprint of
each weight file), the prompt (conversation mode and its format record, the suffix and whether the question
texts already carry it), the generation settings (token budget, greedy decoding, aspect ratio, dtype, image
processor backend) and the question file (path and content hash). Its `fingerprint` (a hash of `record`) is also
written into every answer line as ``"run"``, so an answer line carries what produced it even when the file is
copied without its record. LLaVA's own scorers ignore the extra key.

`prepare_resume` is the only way generation appends to an existing file: it resumes when every line carries the
fingerprint of the run about to start, and otherwise stops with an `AnswersMismatch` that lists what differs
(from the old record, when there is one) and says how to start over (``--overwrite``). Batch size, device,
sharding and ``--limit`` are not in the record: they do not change an answer (batched greedy answers equal
batch-size-1 answers, tested), so a run may be resumed with other values.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

from .io import JsonlError, iter_jsonl

RECORD_SUFFIX = ".record.json"
_CHUNK = 1 << 20


class AnswersMismatch(ValueError):
    """An existing answers file that this run must not append to; the message says why and what to do."""


def record_path(answers_file: str | Path) -> Path:
    answers_file = Path(answers_file)
    return answers_file.with_name(answers_file.name + RECORD_SUFFIX)


def fingerprint(record: Mapping[str, Any]) -> str:
    """A short stable hash of a record (key order does not matter)."""
    return hashlib.sha256(json.dumps(record, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_fingerprint(directory: str | Path | None) -> dict[str, str] | None:
    """{file name: fingerprint} of the ``*.safetensors`` files of a local checkpoint; None for a hub id.

    A fingerprint hashes the size and the first and last MiB, which differ between any two trainings, in
    milliseconds even for a 14 GB base: a retrained checkpoint in the same folder gets a new record.
    """
    if directory is None or not Path(directory).is_dir():
        return None
    out = {}
    for path in sorted(Path(directory).glob("*.safetensors")):
        size = path.stat().st_size
        digest = hashlib.sha256(str(size).encode())
        with path.open("rb") as f:
            digest.update(f.read(_CHUNK))
            f.seek(max(0, size - _CHUNK))
            digest.update(f.read(_CHUNK))
        out[path.name] = digest.hexdigest()[:16]
    return out


def model_record(model_path: str, model_base: str | None, model_id: str) -> dict[str, Any]:
    """The model part of a record: paths as given and resolved, and the weights' fingerprints."""
    def resolved(path: str | None) -> str | None:
        return str(Path(path).resolve()) if path is not None and Path(path).exists() else path

    return {"model_path": resolved(model_path), "model_base": resolved(model_base), "model_id": model_id,
            "weights": weights_fingerprint(model_path),
            "base_weights": weights_fingerprint(model_base) if model_base else None}


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """"key: old -> new" for every (dotted) key whose value differs."""
    a, b = _flatten(old), _flatten(new)
    return [f"{k}: {a.get(k, '(absent)')!r} -> {b.get(k, '(absent)')!r}" for k in sorted(set(a) | set(b))
            if a.get(k, "(absent)") != b.get(k, "(absent)")]


def read_record(answers_file: str | Path) -> dict[str, Any] | None:
    """The record file of `answers_file` ({"fingerprint", "record", "info"}), or None when there is none."""
    path = record_path(answers_file)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data.get("record"), dict) or fingerprint(data["record"]) != data.get("fingerprint"):
            raise ValueError("its fingerprint does not match its record")
    except (ValueError, AttributeError) as e:
        raise AnswersMismatch(f"{path}: not a valid answers record ({e}); delete it and the answers file, "
                              "or pass --overwrite") from None
    return data


def write_record(answers_file: str | Path, record: Mapping[str, Any], info: Mapping[str, Any] | None = None) -> str:
    """Write the record file next to `answers_file`; returns the fingerprint."""
    fp = fingerprint(record)
    path = record_path(answers_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"fingerprint": fp, "record": record, "info": dict(info or {})}, indent=2,
                               ensure_ascii=False) + "\n", encoding="utf-8")
    return fp


def _drop_partial_last_line(answers_file: Path) -> None:
    """A kill during a write can leave half a line at the end; cut it so appending stays valid JSONL."""
    raw = answers_file.read_bytes()
    if raw and not raw.endswith(b"\n"):
        answers_file.write_bytes(raw[: raw.rfind(b"\n") + 1])


def prepare_resume(answers_file: str | Path, record: Mapping[str, Any], info: Mapping[str, Any] | None = None,
                   overwrite: bool = False) -> set[str]:
    """Make `answers_file` ready for appending answers of the run described by `record`; returns the ids it
    already answers.

    A new file (or `overwrite`) starts empty with this record. An existing one is resumed only when its record
    and every line's "run" equal this run's fingerprint (a lost record file is rewritten when every line proves
    it was this run's); otherwise AnswersMismatch names the file, what differs
    and ``--overwrite``.
    """
    answers_file = Path(answers_file)
    fp = fingerprint(record)
    how = "pass --overwrite to start over, or write to another answers file"
    if overwrite or not answers_file.exists() or answers_file.stat().st_size == 0:
        answers_file.parent.mkdir(parents=True, exist_ok=True)
        answers_file.write_bytes(b"")
        write_record(answers_file, record, info)
        return set()
    old = read_record(answers_file)
    if old is not None and old["fingerprint"] != fp:
        changes = "; ".join(differences(old["record"], record))
        raise AnswersMismatch(f"{answers_file} holds answers of another run ({changes}); {how}")
    _drop_partial_last_line(answers_file)
    done, foreign = set(), {}
    try:
        for number, row in iter_jsonl(answers_file):
            if row.get("run") != fp:
                foreign.setdefault(row.get("run"), number)
            done.add(str(row.get("question_id")))
    except JsonlError as e:
        raise AnswersMismatch(f"{e}; {how}") from None
    if foreign:
        run, line = next(iter(foreign.items()))
        origin = ("no record of what produced it" if run is None
                  else f"run {run}, not this run's {fp}" + ("" if old else f" ({record_path(answers_file).name} is missing)"))
        raise AnswersMismatch(f"{answers_file}:{line}: this answer has {origin}; {how}")
    if old is None:  # every line carries this run's fingerprint: the lost record is this run's own
        write_record(answers_file, record, info)
    return done
