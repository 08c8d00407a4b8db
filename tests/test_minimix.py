"""Tests of the minimix builder: determinism, split hygiene, file contracts and task heterogeneity."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from llava_thanora.data.minimix import PROMPT_SUFFIX, TASKS, MinimixConfig, build_minimix
from llava_thanora.data.minimix.__main__ import main
from llava_thanora.data.minimix.mcq import render_digit

SIZES = {"train_per_task": 30, "test_per_task": 20, "pretrain_samples": 40}

# Written independently of the generator: the correct option of each mcq template for digit d.
SOLVERS = {
    "linear": lambda d, p: str(p["a"] * d + p["b"]),
    "bus": lambda d, p: str(d + p["a"] - p["b"]),
    "square": lambda d, p: str(d * d - p["a"]),
    "change": lambda d, p: str(p["c"] - p["a"] * d),
    "remainder": lambda d, p: str((p["a"] * d + p["b"]) % p["m"]),
    "parity": lambda d, p: (f"d is {'even' if d % 2 == 0 else 'odd'} and "
                            f"{'greater' if d > p['k'] else 'not greater'} than {p['k']}"),
}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def open_rgb(root: Path, name: str) -> Image.Image:
    assert not Path(name).is_absolute() and ".." not in Path(name).parts, name
    with Image.open(root / "images" / name) as im:
        im.load()
        return im


def content_hash(root: Path, name: str) -> str:
    return hashlib.sha256(open_rgb(root, name).tobytes()).hexdigest()


def visual_complexity(root: Path, name: str) -> int:
    """zlib-compressed size of the raw pixels: a plain proxy for how much there is to see."""
    return len(zlib.compress(open_rgb(root, name).tobytes(), 9))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mm") / "minimix"
    # Built through the CLI so its argument handling is exercised too.
    main(["--output_dir", str(root), "--seed", "0", *(f"--{k}={v}" for k, v in SIZES.items())])
    return root


def test_same_seed_is_byte_identical_and_other_seed_differs(built, tmp_path):
    again = build_minimix(MinimixConfig(tmp_path / "again", seed=0, **SIZES))
    first = json.loads((built / "manifest.json").read_text())
    assert again["files"] == first["files"]
    assert (tmp_path / "again" / "manifest.json").read_bytes() == (built / "manifest.json").read_bytes()
    assert len(first["files"]) > 4 * (SIZES["train_per_task"] + SIZES["test_per_task"])  # images are hashed too
    for rel, digest in first["files"].items():  # the manifest tells the truth about the files
        assert hashlib.sha256((built / rel).read_bytes()).hexdigest() == digest, rel

    other = build_minimix(MinimixConfig(tmp_path / "other", seed=1, **SIZES))
    for task in TASKS:
        for rel in (f"train/{task}.json", f"{task}/test_annotations.jsonl"):
            assert other["files"][rel] != first["files"][rel], rel
    assert first["counts"] == other["counts"] == {
        **{t: {"train": 30, "test": 20} for t in TASKS}, "pretrain": 40}


def test_test_set_ignores_train_size_and_grows_by_prefix(tmp_path):
    small = build_minimix(MinimixConfig(tmp_path / "a", seed=3, train_per_task=2, test_per_task=3,
                                        pretrain_samples=4))
    large = build_minimix(MinimixConfig(tmp_path / "b", seed=3, train_per_task=5, test_per_task=6,
                                        pretrain_samples=8))
    for task in TASKS:
        for name in ("test_questions.jsonl", "test_annotations.jsonl"):
            lines_a = (tmp_path / "a" / task / name).read_text().splitlines()
            lines_b = (tmp_path / "b" / task / name).read_text().splitlines()
            assert len(lines_a) == 3 and lines_b[:3] == lines_a, (task, name)
    shared = [rel for rel in small["files"] if "/test/" in rel]
    assert len(shared) >= 4 and all(small["files"][rel] == large["files"][rel] for rel in shared)


def test_rebuild_replaces_a_minimix_dir_but_refuses_foreign_dirs(tmp_path):
    target = tmp_path / "mm"
    build_minimix(MinimixConfig(target, seed=3, train_per_task=2, test_per_task=2, pretrain_samples=4))
    (target / "stale.txt").write_text("left from an old build")
    build_minimix(MinimixConfig(target, seed=3, train_per_task=3, test_per_task=2, pretrain_samples=4))
    assert not (target / "stale.txt").exists()
    assert len(json.loads((target / "train" / "ocr.json").read_text())) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["mm"]  # no staging folder left behind

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="mine"):
        build_minimix(MinimixConfig(foreign, train_per_task=2, test_per_task=2, pretrain_samples=4))
    assert (foreign / "notes.txt").read_text() == "keep me"
    with pytest.raises(ValueError, match="test_per_task"):
        MinimixConfig(foreign, test_per_task=0)


def test_training_files_follow_the_contract_and_prompt_rule(built):
    for task in TASKS:
        records = json.loads((built / "train" / f"{task}.json").read_text())
        assert len(records) == SIZES["train_per_task"]
        assert len({r["id"] for r in records}) == len(records)
        for r in records:
            assert set(r) == {"id", "image", "conversations", "task"} and r["task"] == task
            human, gpt = r["conversations"]
            assert (human["from"], gpt["from"]) == ("human", "gpt")
            assert human["value"].count("<image>") == 1 and human["value"].startswith("<image>\n")
            assert human["value"].endswith("\n" + PROMPT_SUFFIX[task])
            assert gpt["value"].strip() and "<image>" not in gpt["value"]
            image = open_rgb(built, r["image"])
            assert (image.size, image.mode) == ((64, 64), "RGB")


def test_question_and_annotation_files_match(built):
    for task in TASKS:
        questions = read_jsonl(built / task / "test_questions.jsonl")
        answers = read_jsonl(built / task / "test_annotations.jsonl")
        assert len(questions) == SIZES["test_per_task"]
        assert [q["question_id"] for q in questions] == [a["question_id"] for a in answers]
        for q, a in zip(questions, answers):
            assert q["task"] == task and q["text"].strip()
            assert PROMPT_SUFFIX[task] not in q["text"]  # the eval registry appends it
            assert a["answers"] and all(isinstance(x, str) and x for x in a["answers"])
            assert (open_rgb(built, q["image"]).size, open_rgb(built, q["image"]).mode) == ((64, 64), "RGB")
        refs = [len(a["answers"]) for a in answers]
        if task == "vqa":
            assert all(n == 10 and len(set(a["answers"])) == 1 for n, a in zip(refs, answers))
        if task == "caption":
            assert min(refs) >= 5 and all(len(set(a["answers"])) == len(a["answers"]) for a in answers)
        if task == "ocr":
            assert refs == [1] * len(refs)


def test_mcq_answers_are_the_true_arithmetic_result(built):
    digits = load_digits()
    questions = read_jsonl(built / "mcq" / "test_questions.jsonl")
    answers = read_jsonl(built / "mcq" / "test_annotations.jsonl")
    assert len({a["template"] for a in answers}) >= 4  # the templates really vary
    for q, a in zip(questions, answers):
        choices = q["choices"]
        assert len(choices) == 4 and len(set(choices)) == 4
        for letter, value in zip("ABCD", choices):
            assert f"\n{letter}. {value}" in q["text"]
        (letter,) = a["answers"]
        assert letter in "ABCD"[: len(choices)]
        index, d = a["source_index"], a["digit"]
        assert int(digits.target[index]) == d
        # The image file really is that digit, and the marked option is the true result.
        assert open_rgb(built, q["image"]).tobytes() == render_digit(digits.images[index]).tobytes()
        assert choices["ABCD".index(letter)] == SOLVERS[a["template"]](d, a["params"])
        assert all(str(v) in q["text"] for v in a["params"].values())


def test_train_and_pretrain_never_touch_test(built):
    test_ids, test_files, test_pixels = set(), set(), set()
    for task in TASKS:
        for q in read_jsonl(built / task / "test_questions.jsonl"):
            test_ids.add(q["question_id"])
            test_files.add(q["image"])
            test_pixels.add(content_hash(built, q["image"]))
    others = [r for t in TASKS for r in json.loads((built / "train" / f"{t}.json").read_text())]
    pretrain = json.loads((built / "pretrain.json").read_text())
    assert len(pretrain) == SIZES["pretrain_samples"]
    for r in others + pretrain:
        assert r["id"] not in test_ids and r["image"] not in test_files, r["id"]
        assert content_hash(built, r["image"]) not in test_pixels, r["id"]


def test_pretrain_is_generic_description_not_task_format(built):
    sources = set()
    for r in json.loads((built / "pretrain.json").read_text()):
        human, gpt = r["conversations"]
        assert r["task"] == "pretrain" and human["value"].startswith("<image>\n")
        assert "\nA. " not in human["value"] and not any(s in human["value"] for s in PROMPT_SUFFIX.values())
        assert len(gpt["value"].split()) >= 4 and gpt["value"].endswith(".")
        sources.add(Path(r["image"]).name.split("_")[0])
    assert sources == {"easyvqa", "digit", "text", "scene"}


def test_tasks_are_really_different(built):
    def mean_question_length(task: str) -> float:
        return float(np.mean([len(q["text"]) for q in read_jsonl(built / task / "test_questions.jsonl")]))

    def mean_complexity(task: str) -> float:
        return float(np.mean([visual_complexity(built, q["image"])
                              for q in read_jsonl(built / task / "test_questions.jsonl")]))

    # ocr: complex image, short question; mcq: simple image, long question.
    assert mean_question_length("mcq") > 5 * mean_question_length("ocr")
    assert mean_complexity("ocr") > 10 * mean_complexity("mcq")


def test_package_does_not_import_transformers():
    code = "import sys, llava_thanora.data.minimix; print('transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
