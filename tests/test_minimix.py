"""Tests of the minimix builder: determinism, split hygiene, file contracts and task heterogeneity."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from llava_thanora.data.minimix import PROMPT_SUFFIX, TASKS, MinimixConfig, build_minimix
from llava_thanora.data.minimix.__main__ import main

SIZES = {"train_per_task": 30, "test_per_task": 20, "pretrain_samples": 40}

# The swatch colours as a person would name them (the generator jitters each channel by at most 18).
NAMED = {"red": (215, 35, 35), "green": (40, 160, 60), "blue": (35, 70, 215), "yellow": (235, 205, 30),
         "orange": (245, 135, 25), "purple": (140, 50, 170), "black": (25, 25, 25), "pink": (245, 140, 190)}


def swatch_colour(image: Image.Image) -> str:
    """The named colour nearest to the image's least-white pixels (the square)."""
    pixels = np.asarray(image, dtype=np.float64).reshape(-1, 3)
    square = pixels[pixels.sum(axis=1) < pixels.sum(axis=1).max() - 60]
    mean = square.mean(axis=0)
    return min(NAMED, key=lambda name: float(np.abs(mean - NAMED[name]).sum()))


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
    assert len(first["files"]) > 3.5 * SIZES["train_per_task"] + 4 * SIZES["test_per_task"]  # images are hashed too
    for rel, digest in first["files"].items():  # the manifest tells the truth about the files
        assert hashlib.sha256((built / rel).read_bytes()).hexdigest() == digest, rel

    other = build_minimix(MinimixConfig(tmp_path / "other", seed=1, **SIZES))
    for task in TASKS:
        for rel in (f"train/{task}.json", f"{task}/test_annotations.jsonl"):
            assert other["files"][rel] != first["files"][rel], rel
    assert first["counts"] == other["counts"] == {
        **{t: {"train": 15 if t == "caption" else 30, "val": 20, "test": 20} for t in TASKS}, "pretrain": 40}


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
    with pytest.raises(ValueError, match="caption_train"):
        MinimixConfig(foreign, caption_train=0)


def test_training_files_follow_the_contract_and_prompt_rule(built):
    for task in TASKS:
        records = json.loads((built / "train" / f"{task}.json").read_text())
        # captions: half as many by default (each supervises many tokens; MinimixConfig.caption_train)
        assert len(records) == SIZES["train_per_task"] // (2 if task == "caption" else 1)
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


def test_mcq_answer_follows_from_the_image_and_the_context(built):
    """The answer is the fact the base is taught (pretrain.json's sentences, read here without the generator):
    the mascot of the game the context names for today, or what the colour the pixels show stands for."""
    mascot, stands_for = {}, {}
    for r in json.loads((built / "pretrain.json").read_text()):
        answer = r["conversations"][1]["value"]
        if m := re.fullmatch(r"The mascot of the (\w+) game is the (\w+)\.", answer):
            assert mascot.setdefault(m[1], m[2]) == m[2]  # one fact, stated consistently
        if m := re.fullmatch(r"The color (\w+) stands for (\w+)\.", answer):
            assert stands_for.setdefault(m[1], m[2]) == m[2]
    questions = read_jsonl(built / "mcq" / "test_questions.jsonl")
    answers = read_jsonl(built / "mcq" / "test_annotations.jsonl")
    letters = [a["answers"][0] for a in answers]
    assert {letters.count(x) for x in "ABCD"} == {len(letters) // 4}  # guessing one letter scores exactly 25
    checked = {"mascot": 0, "card": 0}
    for q, a in zip(questions, answers):
        choices = q["choices"]
        assert q["text"].startswith("Context: ") and len(q["text"]) > 250  # text-heavy
        assert q["text"].endswith("\n" + "\n".join(f"{x}. {v}" for x, v in zip("ABCD", choices)))
        (today,) = re.findall(r"Today the class plays the (\w+) game\.", q["text"])
        colour = swatch_colour(open_rgb(built, q["image"]))  # seen in the pixels, not read from the annotation
        assert (colour, today) == (a["colour"], a["today"]), q["question_id"]
        animal = choices["ABCD".index(a["answers"][0])]
        if "mascot of today's game" in q["text"]:
            truth = mascot.get(today)
        else:
            assert "Which animal does that color stand for?" in q["text"]
            truth = stands_for.get(colour)
        if truth is not None:
            assert truth == animal, q["question_id"]
            checked[a["kind"]] += 1
    assert min(checked.values()) >= 3  # both kinds were checked against taught facts
    # Neither the colour's fact nor today's mascot alone gives the answer to every question.
    truths = [a["answers"][0] for a in answers]
    by_colour = ["ABCD"[list(q["choices"]).index(stands_for[a["colour"]])] if a["colour"] in stands_for else None
                 for q, a in zip(questions, answers)]
    by_mascot = ["ABCD"[list(q["choices"]).index(mascot[a["today"]])] if a["today"] in mascot else None
                 for q, a in zip(questions, answers)]
    assert sum(x is not None and x != t for x, t in zip(by_colour, truths)) >= 1
    assert sum(x is not None and x != t for x, t in zip(by_mascot, truths)) >= 1


def ink_error(root: Path, question: dict, annotation: dict, text: str) -> float:
    """Mean distance from the recorded ink colour of the pixels where `text`, drawn with the recorded font,
    size and angle, would put its strokes: small only if the image really shows that text there."""
    from llava_thanora.data.minimix.ocr import DARK_INKS, LIGHT_INKS, find_fonts
    from PIL import ImageDraw, ImageFont
    fonts = {f.name: f.path for f in find_fonts(False)}
    path, size = fonts[annotation["font"]], annotation["size"]
    font = ImageFont.load_default(size=size) if path is None else ImageFont.truetype(path, size)
    left, top, right, bottom = font.getbbox(text)
    mask = Image.new("L", (right - left + 4, bottom - top + 4), 0)
    ImageDraw.Draw(mask).text((2 - left, 2 - top), text, fill=255, font=font)
    if annotation["angle"]:
        mask = mask.rotate(annotation["angle"], resample=Image.Resampling.BICUBIC, expand=True)
    x0, y0, x1, y1 = annotation["box"]
    if mask.size != (x1 - x0, y1 - y0):  # another text has another extent
        return float("inf")
    strokes = np.asarray(mask) >= 250  # fully opaque strokes: no blending with the background
    pixels = np.asarray(open_rgb(root, question["image"]), dtype=np.float64)[y0:y1, x0:x1][strokes]
    ink = np.array({**DARK_INKS, **LIGHT_INKS}[annotation["ink"]], dtype=np.float64)
    return float(np.abs(pixels - ink).mean())


def test_ocr_answer_is_the_text_drawn_in_the_image(built):
    questions = read_jsonl(built / "ocr" / "test_questions.jsonl")
    annotations = read_jsonl(built / "ocr" / "test_annotations.jsonl")
    texts = [a["answers"][0] for a in annotations]
    for q, a in zip(questions, annotations):
        # Noise is at most std 8, so the true text's strokes sit within ~12 of the ink colour on average.
        assert ink_error(built, q, a, a["answers"][0]) < 15, q["question_id"]
        decoys = [t for t in texts if t != a["answers"][0]][:3]
        assert all(ink_error(built, q, a, t) > 15 for t in decoys), q["question_id"]


def test_caption_reference_names_what_is_drawn(built):
    from llava_thanora.data.minimix.caption import COLOURS
    where = {(0, 0): "top left", (1, 0): "top", (2, 0): "top right", (0, 1): "left", (1, 1): "center",
             (2, 1): "right", (0, 2): "bottom left", (1, 2): "bottom", (2, 2): "bottom right"}
    questions = read_jsonl(built / "caption" / "test_questions.jsonl")
    annotations = read_jsonl(built / "caption" / "test_annotations.jsonl")
    for q, a in zip(questions, annotations):
        pixels = np.asarray(open_rgb(built, q["image"]), dtype=np.int64)
        shapes = a["shapes"]
        assert 2 <= len(shapes) <= 4
        for shape in shapes:
            x, y = (int(v) for v in shape["centre"])
            assert np.abs(pixels[y, x] - COLOURS[shape["colour"]]).max() <= 2, q["question_id"]
            column, row = shape["cell"]
            assert int(shape["centre"][0] // (64 / 3)) == column and int(shape["centre"][1] // (64 / 3)) == row
        # The first reference (the training target) lists the shapes row by row, each with its place.
        first = a["answers"][0].lower()
        ordered = sorted(shapes, key=lambda s: (s["cell"][1], s["cell"][0]))
        spots = [first.index(f"{s['colour']} {s['kind']}") for s in ordered]
        assert spots == sorted(spots), first
        for s in ordered:
            assert f"{s['colour']} {s['kind']} " + ("in the " if tuple(s["cell"]) in
                                                   {(0, 0), (2, 0), (1, 1), (0, 2), (2, 2)} else "") in first
            assert where[tuple(s["cell"])] in first


def test_vqa_answer_is_easy_vqas_own(built):
    from easy_vqa import get_test_questions
    truth = {}
    texts, answers, image_ids = get_test_questions()
    for text, answer, image_id in zip(texts, answers, image_ids):
        truth.setdefault((image_id, text.lower()), set()).add(answer)
    questions = read_jsonl(built / "vqa" / "test_questions.jsonl")
    annotations = read_jsonl(built / "vqa" / "test_annotations.jsonl")
    kinds = [a["kind"] for a in annotations]
    assert all(kinds.count(k) == len(kinds) // 4 for k in ("colour", "shape", "yes", "no"))
    for q, a in zip(questions, annotations):
        image_id = int(Path(q["image"]).stem.split("_")[1])
        assert truth[(image_id, q["text"].lower())] == {a["answers"][0]}, q["question_id"]


def test_pretrain_yes_no_checks_agree_with_easy_vqas_own_answers(built):
    """Each yes/no check names the image's colour and shape as easy-VQA's own "what color/shape" answers do,
    and says yes exactly when the attribute asked about is the image's."""
    from easy_vqa import get_answers, get_train_questions
    SHAPES = {"circle", "rectangle", "triangle"}
    COLOURS = set(get_answers()) - SHAPES - {"yes", "no"}
    verified = [0, 0]  # colours, shapes
    what = {}  # image id -> the answers of its "what color" / "what shape" questions
    for text, answer, image_id in zip(*get_train_questions()):
        if text.startswith("what") and answer not in ("yes", "no"):
            what.setdefault(image_id, set()).add(answer)
    checks = [r for r in json.loads((built / "pretrain.json").read_text()) if "/check_" in r["image"]]
    assert checks and {r["conversations"][1]["value"].endswith("yes.") for r in checks} == {True, False}
    for r in checks:
        image_id = int(Path(r["image"]).stem.split("_")[1])
        asked = re.fullmatch(r"<image>\nIs the shape in the image (?:a )?(\w+)\?", r["conversations"][0]["value"])[1]
        colour, shape, verdict = re.fullmatch(r"It is a (\w+) (\w+), so the answer is (yes|no)\.",
                                              r["conversations"][1]["value"]).groups()
        known = what.get(image_id, set())
        for named, kind in ((colour, COLOURS), (shape, SHAPES)):
            if known & kind:  # easy-VQA asks this image "what color" / "what shape"
                assert known & kind == {named}, r["id"]
                verified[kind is SHAPES] += 1
        assert verdict == ("yes" if asked in (colour, shape) else "no"), r["id"]
    assert min(verified) >= 1  # both the colour and the shape were checked against easy-VQA


def test_validation_split_is_a_data_root_disjoint_from_test_and_train(built):
    """val/ is laid out like the main data root (so eval.run can score it) and shares nothing with the others."""
    held = {split: (set(), set(), set()) for split in ("val", "test")}
    for task in TASKS:
        for split, root in (("val", built / "val"), ("test", built)):
            questions = read_jsonl(root / task / "test_questions.jsonl")
            assert len(questions) == SIZES["test_per_task"]
            for q in questions:
                ids, files, pixels = held[split]
                ids.add(q["question_id"])
                files.add(q["image"])
                pixels.add(content_hash(root, q["image"]))
    for a, b in zip(held["val"], held["test"]):
        assert not a & b
    train = [r for t in TASKS for r in json.loads((built / "train" / f"{t}.json").read_text())]
    for r in train + json.loads((built / "pretrain.json").read_text()):
        ids, files, pixels = held["val"]
        assert r["id"] not in ids and content_hash(built, r["image"]) not in pixels, r["id"]


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
    assert sources == {"easyvqa", "swatch", "text", "scene", "fact", "check"}


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
