"""Question and annotation files: this project's JSONL and LLaVA-1.5's ``eval.zip`` files, read as they are.

Question files (`read_questions`):

- JSONL, one ``{"question_id", "image"?, "text", ...}`` per line: this project's files and LLaVA's
  ``model_vqa_loader`` files (``llava_textvqa_val_v051_ocr.jsonl``, ``llava_gqa_testdev_balanced.jsonl``,
  ``llava_vqav2_mscoco_test-dev2015.jsonl``, ...), which carry extra keys such as "category";
- a ``.json`` list of LLaVA conversations (``llava_test_CQM-A.json``, read by LLaVA's ``model_vqa_science``):
  ``{"id", "image"?, "conversations": [{"from": "human", "value": "<image>\\nContext: ..."}, ...]}``. The question
  is the first human turn with its ``<image>`` tag removed and stripped, as model_vqa_science reads it.

LLaVA's model_vqa_loader files already end each text with the prompt suffix; a registry entry says so with
``"suffix_in_text": true`` (`eval.generate --suffix-in-text`), and `check_suffix` holds every question to what
the entry says, so a suffix is never appended twice or silently missing.

Annotation formats (`ANNOTATION_FORMATS`; `load_benchmark` joins a question list with its references):

==========  ==================================================================================================
jsonl       this project's ``{"question_id", "answers": [...]}`` lines, joined by question_id
textvqa     TextVQA's ``TextVQA_0.5.1_val.json`` (``{"data": [{"question_id", "image_id", "question",
            "answers"}]}``), joined as LLaVA's ``eval_textvqa.py`` does: by (the question file's question_id, which
            LLaVA sets to the image id, and the question, lower-cased). The question is the text's first line that
            is not the ``Reference OCR token:`` line. Each question then takes TextVQA's own question_id (LLaVA's
            file repeats an image id for every question on that image; answers are keyed by question_id) and
            keeps LLaVA's as "llava_question_id".
scienceqa   ScienceQA's ``problems.json`` (``{pid: {"choices", "answer": index, "image", ...}}``), joined by pid =
            question_id as LLaVA's ``eval_science_qa.py``: the reference is the answer's letter, the question row
            gets the problem's "choices" and "modality" ("image" when the question has an image, LLaVA's
            IMG-Accuracy subset, else "text").
gqa         GQA's ``testdev_balanced_questions.json`` (``{question_id: {"answer", ...}}``), joined by
            question_id; the reference is "answer", as GQA's ``eval.py`` compares it.
==========  ==================================================================================================
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from llava_thanora.data.conversation import with_suffix

from .io import JsonlError, iter_jsonl, read_by_id, read_json

Question = dict[str, Any]
IMAGE_TAG = "<image>"
OCR_LINE = "Reference OCR token:"


def _conversation_question(row: Mapping[str, Any], where: str) -> Question:
    turns = row.get("conversations")
    human = next((t for t in turns if isinstance(t, dict) and t.get("from") == "human"), None) \
        if isinstance(turns, list) else None
    if human is None or not isinstance(human.get("value"), str) or "id" not in row:
        raise JsonlError(f"{where}: a LLaVA conversation row needs 'id' and a human turn with a 'value'")
    out = {k: v for k, v in row.items() if k not in ("id", "conversations")}
    return {"question_id": row["id"], **out, "text": human["value"].replace(IMAGE_TAG, "").strip()}


def read_questions(path: str | Path) -> list[Question]:
    """Question rows of a JSONL file or of a LLaVA conversation list (``.json``), in file order.

    Every row ends up with "question_id" and "text"; JsonlError names the file and line (or item) otherwise.
    """
    path = Path(path)
    if path.suffix == ".json":
        rows = read_json(path)
        if not isinstance(rows, list):
            raise JsonlError(f"{path}: a .json question file must be a list of LLaVA conversation rows")
        numbered = [(f"{path} item {i}", row) for i, row in enumerate(rows)]
    else:
        numbered = [(f"{path}:{n}", row) for n, row in iter_jsonl(path)]
    questions = []
    for where, row in numbered:
        if not isinstance(row, dict):
            raise JsonlError(f"{where}: expected a JSON object")
        if "text" not in row and "conversations" in row:
            row = _conversation_question(row, where)
        for key in ("question_id", "text"):
            if key not in row:
                raise JsonlError(f"{where}: question {row.get('question_id', '?')!r} has no {key!r}")
        if not isinstance(row["text"], str):
            raise JsonlError(f"{where}: 'text' must be a string")
        questions.append(row)
    return questions


def check_unique(questions: list[Question], path: str | Path) -> None:
    """Answers are keyed by question_id, so two questions may not share one (the lines are named)."""
    first: dict[str, int] = {}
    for index, q in enumerate(questions):
        qid = str(q["question_id"])
        if qid in first:
            raise ValueError(
                f"{path}: question_id {qid!r} is used by questions {first[qid] + 1} and {index + 1}; answers are keyed "
                "by question_id. (LLaVA's TextVQA file keys questions by image id: evaluate it with eval.run and "
                "the textvqa_llava entry, whose TextVQA_0.5.1_val.json gives each question its own id.)")
        first[qid] = index


def check_suffix(questions: list[Question], suffix: str, suffix_in_text: bool, path: str | Path) -> None:
    """Every text ends with "\\n" + suffix when `suffix_in_text`, and none does otherwise."""
    if not suffix:
        if suffix_in_text:
            raise ValueError(f"{path}: suffix_in_text needs the suffix the texts end with (prompt_suffix)")
        return
    for q in questions:
        ends = q["text"].endswith("\n" + suffix)
        if suffix_in_text and not ends:
            raise ValueError(f"{path}: question {q['question_id']!r} does not end with the suffix {suffix!r}, "
                             "although the texts are declared to carry it (suffix_in_text / --suffix-in-text)")
        if not suffix_in_text and ends:
            raise ValueError(f"{path}: question {q['question_id']!r} already ends with the suffix {suffix!r}; "
                             "appending it would ask it twice. LLaVA's eval files carry it: set "
                             '"suffix_in_text": true in the entry (eval.generate: --suffix-in-text)')


def prompt_text(question: Question, suffix: str, suffix_in_text: bool = False) -> str:
    """What the model is asked: the text as it is when it carries the suffix, else text + newline + suffix."""
    return question["text"] if suffix_in_text else with_suffix(question["text"], suffix)


def load_annotations(path: str | Path) -> dict[str, list[str]]:
    """{question_id: answers} from an annotation JSONL; answers must be a non-empty list of strings."""
    out = {}
    for qid, row in read_by_id(path).items():
        answers = row.get("answers")
        if not (isinstance(answers, list) and answers and all(isinstance(a, str) for a in answers)):
            raise JsonlError(f"{path}: question_id {qid!r}: 'answers' must be a non-empty list of strings")
        out[qid] = answers
    return out


Joined = tuple[list[Question], dict[str, list[str]]]


def _join_jsonl(questions: list[Question], path: Path) -> Joined:
    return questions, load_annotations(path)


def textvqa_question(text: str) -> str:
    """The question inside a LLaVA TextVQA text: its first line that is not the OCR-token line."""
    return next((line for line in text.split("\n") if not line.startswith(OCR_LINE)), "")


def _join_textvqa(questions: list[Question], path: Path) -> Joined:
    data = read_json(path)
    rows = data.get("data") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise JsonlError(f"{path}: expected TextVQA's {{\"data\": [...]}} annotation file")
    index = {(str(r["image_id"]), str(r["question"]).lower()): r for r in rows}
    rekeyed, annotations = [], {}
    for q in questions:
        key = (str(q["question_id"]), textvqa_question(q["text"]).lower())
        if key not in index:
            raise ValueError(f"{path}: no TextVQA question for image {key[0]!r} asking {key[1]!r}")
        qid = str(index[key]["question_id"])
        rekeyed.append({**q, "question_id": qid, "llava_question_id": q["question_id"]})
        annotations[qid] = [str(a) for a in index[key]["answers"]]
    return rekeyed, annotations


def _join_scienceqa(questions: list[Question], path: Path) -> Joined:
    problems = read_json(path)
    if not isinstance(problems, dict):
        raise JsonlError(f"{path}: expected ScienceQA's problems.json ({{pid: problem}})")
    joined, annotations = [], {}
    for q in questions:
        pid = str(q["question_id"])
        problem = problems.get(pid)
        if not isinstance(problem, dict):
            raise ValueError(f"{path}: no problem {pid!r}")
        choices, answer = problem["choices"], problem["answer"]
        if not 0 <= answer < len(choices):
            raise ValueError(f"{path}: problem {pid!r}: answer index {answer} outside {len(choices)} choices")
        joined.append({**q, "choices": choices, "modality": "image" if q.get("image") else "text"})
        annotations[pid] = [string.ascii_uppercase[answer]]
    return joined, annotations


def _join_gqa(questions: list[Question], path: Path) -> Joined:
    data = read_json(path)
    if not isinstance(data, dict):
        raise JsonlError(f"{path}: expected GQA's {{question_id: question}} file")
    annotations = {}
    for q in questions:
        entry = data.get(str(q["question_id"]))
        if not isinstance(entry, dict) or not isinstance(entry.get("answer"), str):
            raise ValueError(f"{path}: no GQA question {str(q['question_id'])!r} with an answer")
        annotations[str(q["question_id"])] = [entry["answer"]]
    return questions, annotations


ANNOTATION_FORMATS: Mapping[str, Callable[[list[Question], Path], Joined]] = {
    "jsonl": _join_jsonl, "textvqa": _join_textvqa, "scienceqa": _join_scienceqa, "gqa": _join_gqa,
}


@dataclass(frozen=True)
class QuestionSet:
    """A question file joined with its annotations (`load_benchmark`)."""

    questions: dict[str, Question]
    """{question_id: row} of the questions to answer and score, in file order."""
    annotations: dict[str, list[str]]
    """{question_id: reference answers} of the same questions."""
    skipped: frozenset[str]
    """Ids of the file's questions past `limit`: an answer to one of them is not scored, and not an error."""


def load_benchmark(question_file: str | Path, annotation_file: str | Path, annotation_format: str = "jsonl",
                   limit: int | None = None) -> QuestionSet:
    """A question file and its annotations joined by `annotation_format`, keeping the first `limit` questions.

    The two files must hold the same questions; the error lists ids found in only one of them.
    """
    if annotation_format not in ANNOTATION_FORMATS:
        raise ValueError(f"unknown annotation format {annotation_format!r}; known: {', '.join(ANNOTATION_FORMATS)}")
    questions, annotations = ANNOTATION_FORMATS[annotation_format](read_questions(question_file), Path(annotation_file))
    check_unique(questions, question_file)
    by_id = {str(q["question_id"]): q for q in questions}
    if set(by_id) != set(annotations):
        only_q, only_a = set(by_id) - set(annotations), set(annotations) - set(by_id)
        raise ValueError(f"{question_file} and {annotation_file} hold different questions "
                         f"(only in questions: {first_ids(only_q) or '-'}; only in annotations: {first_ids(only_a) or '-'})")
    kept = list(by_id)[:limit] if limit else list(by_id)
    return QuestionSet({q: by_id[q] for q in kept}, {q: annotations[q] for q in kept}, frozenset(by_id) - set(kept))


def first_ids(ids: set[str], k: int = 5) -> str:
    shown = sorted(ids)[:k]
    return ", ".join(map(repr, shown)) + (f" and {len(ids) - k} more" if len(ids) > k else "")
