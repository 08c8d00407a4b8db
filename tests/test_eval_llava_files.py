"""LLaVA-1.5's eval.zip files in, server files out: fixtures laid out as LLaVA's docs/Evaluation.md and with the
published files' keys (llava_textvqa_val_v051_ocr.jsonl + TextVQA_0.5.1_val.json, llava_test_CQM-A.json +
problems.json, llava_gqa_testdev_balanced.jsonl + GQA's testdev_balanced_questions.json,
llava_vqav2_mscoco_test-dev2015.jsonl + llava_vqav2_mscoco_test2015.jsonl), asked with the suffix exactly once
and scored as LLaVA's scripts score them."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from PIL import Image

from eval import generate as generate_cli
from eval import score as score_cli
from eval import submission as submission_cli
from eval.benchmarks import get_benchmarks
from eval.generate import Generator, load_questions
from eval.metrics import normalize_vqa_answer, vqa_accuracy
from eval.run import evaluate

SHORT = "Answer the question using a single word or phrase."
LETTER = "Answer with the option's letter from the given choices directly."


def jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def picture(path: Path, shade: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 28), (shade, 200 - shade, 90)).save(path, format="PNG")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """playground/data/eval as LLaVA's Evaluation.md lays it out, with a few questions per benchmark."""
    root = tmp_path_factory.mktemp("llava_eval")
    # TextVQA: LLaVA's question_id is the image id (two questions on image 003a8ae2ef43b901).
    jsonl(root / "textvqa/llava_textvqa_val_v051_ocr.jsonl", [
        {"question_id": "003a8ae2ef43b901", "image": "003a8ae2ef43b901.jpg", "category": "default",
         "text": f"What is the brand of this camera?\nReference OCR token: DAKOTA, DIGITAL, Single-Use\n{SHORT}"},
        {"question_id": "003a8ae2ef43b901", "image": "003a8ae2ef43b901.jpg", "category": "default",
         "text": f"What does the small white text spell?\nReference OCR token: DAKOTA, DIGITAL, Single-Use\n{SHORT}"},
        {"question_id": "b9dc400eb20bad64", "image": "b9dc400eb20bad64.jpg", "category": "default",
         "text": f"What kind of beer is this?\n{SHORT}"},
    ])
    (root / "textvqa/TextVQA_0.5.1_val.json").write_text(json.dumps({
        "dataset_type": "val", "dataset_name": "textvqa", "dataset_version": "0.5.1", "data": [
            {"question": q, "image_id": image, "image_classes": ["Camera"], "flickr_original_url": "",
             "flickr_300k_url": "", "image_width": 1024, "image_height": 664, "answers": answers,
             "question_tokens": q.split(), "question_id": qid, "set_name": "val"}
            for q, image, qid, answers in [
                ("what is the brand of this camera?", "003a8ae2ef43b901", 34602, ["dakota"] * 9 + ["nous les gosses"]),
                ("what does the small white text spell?", "003a8ae2ef43b901", 34603, ["copenhagen"] * 10),
                ("what kind of beer is this?", "b9dc400eb20bad64", 34604, ["ale"] * 7 + ["sublimely self-righteous ale"] * 3),
            ]]}))
    for i, image in enumerate(["003a8ae2ef43b901", "b9dc400eb20bad64"]):
        picture(root / f"textvqa/train_images/{image}.jpg", 40 * i)
    # ScienceQA: LLaVA's conversation list (image under <pid>/image.png), ScienceQA's problems.json and splits.
    (root / "scienceqa").mkdir()
    (root / "scienceqa/llava_test_CQM-A.json").write_text(json.dumps([
        {"id": "4", "image": "4/image.png", "conversations": [
            {"from": "human", "value": "<image>\nContext: Select the best answer.\nWhich animal is a mammal?\nA. frog\nB. whale"},
            {"from": "gpt", "value": "B"}]},
        {"id": "5", "conversations": [
            {"from": "human", "value": "Which word is a noun?\nA. cat\nB. run\nC. quickly"},
            {"from": "gpt", "value": "A"}]},
        {"id": "6", "image": "6/image.png", "conversations": [
            {"from": "human", "value": "<image>\nWhich state is farthest north?\nA. Ohio\nB. Maine\nC. Texas"},
            {"from": "gpt", "value": "B"}]},
    ]))
    (root / "scienceqa/problems.json").write_text(json.dumps({
        pid: {"question": q, "choices": c, "answer": a, "hint": "", "image": img, "task": "closed choice",
              "grade": "grade2", "subject": "natural science", "topic": "biology", "category": "", "skill": "",
              "lecture": "", "solution": "", "split": "test"}
        for pid, q, c, a, img in [("4", "Which animal is a mammal?", ["frog", "whale"], 1, "image.png"),
                                  ("5", "Which word is a noun?", ["cat", "run", "quickly"], 0, None),
                                  ("6", "Which state is farthest north?", ["Ohio", "Maine", "Texas"], 1, "image.png"),
                                  ("7", "A training problem?", ["x", "y"], 0, None)]}))
    (root / "scienceqa/pid_splits.json").write_text(json.dumps({"test": ["4", "5", "6"], "train": ["7"]}))
    for pid in ("4", "6"):
        picture(root / f"scienceqa/images/test/{pid}/image.png", 30 * int(pid))
    # GQA: LLaVA's question file and GQA's own question file.
    jsonl(root / "gqa/llava_gqa_testdev_balanced.jsonl", [
        {"question_id": "201307251", "image": "n161313.jpg", "text": f"Is it overcast?\n{SHORT}", "category": "default"},
        {"question_id": "201640614", "image": "n235859.jpg", "text": f"Who is wearing the dress?\n{SHORT}",
         "category": "default"}])
    (root / "gqa/data").mkdir(parents=True)
    (root / "gqa/data/testdev_balanced_questions.json").write_text(json.dumps({
        qid: {"semantic": [], "entailed": [], "equivalent": [qid], "question": q, "imageId": image, "isBalanced": True,
              "groups": {"global": None, "local": "13-sky_dark"}, "answer": answer, "semanticStr": "",
              "annotations": {"answer": {}, "question": {}, "fullAnswer": {}}, "types": {}, "fullAnswer": full}
        for qid, q, image, answer, full in [("201307251", "Is it overcast?", "n161313", "no", "No, it is clear."),
                                            ("201640614", "Who is wearing the dress?", "n235859", "woman",
                                             "The woman is wearing a dress.")]}))
    picture(root / "gqa/data/images/n161313.jpg", 10)
    picture(root / "gqa/data/images/n235859.jpg", 70)
    # VQAv2: test-dev questions, and the whole test2015 list EvalAI wants answers for.
    dev = [{"question_id": 262144000 + i, "image": f"COCO_test2015_00000026214{i}.jpg",
            "text": f"{q}\n{SHORT}", "category": "default"} for i, q in enumerate(["Is the ball flying?", "What color?"])]
    jsonl(root / "vqav2/llava_vqav2_mscoco_test-dev2015.jsonl", dev)
    jsonl(root / "vqav2/llava_vqav2_mscoco_test2015.jsonl",
          [{"question_id": 1, "image": "COCO_test2015_000000000001.jpg", "text": f"Is it?\n{SHORT}", "category": "default"}]
          + dev)
    for row in dev:
        picture(root / "vqav2/test2015" / row["image"], 90)
    return root


@pytest.fixture(scope="module")
def generator(tiny_model):
    from llava_thanora.methods.loading import load_trained

    model, processor, _ = load_trained(tiny_model)
    return Generator(model, processor, None, max_new_tokens=3, model_id="tiny")


def bench(name: str):
    return get_benchmarks([name])[0]


def answers_file(path: Path, texts: dict) -> Path:
    return jsonl(path, [{"question_id": q, "prompt": "", "text": t, "model_id": "m"} for q, t in texts.items()])


def rows(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_textvqa_llava_file_as_it_is(root, generator, tmp_path, capsys):
    entry = bench("textvqa_llava")
    summary = evaluate(generator, entry, str(root), tmp_path, batch_size=2, max_new_tokens=2, progress=False)
    answered = rows(tmp_path / "textvqa_llava/answers.jsonl")
    assert sorted(r["question_id"] for r in answered) == ["34602", "34603", "34604"]  # TextVQA's own ids
    assert all(r["prompt"].count(SHORT) == 1 for r in answered)                      # asked once, never twice
    assert summary["n"] == 3 and score_cli.main(summary["rescore"])["score"] == summary["score"]
    capsys.readouterr()
    # LLaVA's file keys questions by image: eval.generate names the problem and the way out.
    with pytest.raises(ValueError, match="textvqa_llava"):
        load_questions(str(root / "textvqa/llava_textvqa_val_v051_ocr.jsonl"))
    # An entry that would append the suffix to these texts is refused before anything is generated.
    with pytest.raises(ValueError, match="appending it would ask it twice"):
        evaluate(generator, dataclasses.replace(entry, suffix_in_text=False), str(root), tmp_path / "x", 2)
    # Scored as eval_textvqa.py: joined by (image id, lower-cased question), TextVQA's accuracy.
    texts = {"34602": "Dakota", "34603": "Copenhagen.", "34604": "sublimely self-righteous ale"}
    result = score_cli.main(["--metric", "vqa_accuracy", "--result-file", str(answers_file(tmp_path / "a.jsonl", texts)),
                             "--annotation-file", str(root / "textvqa/TextVQA_0.5.1_val.json"), "--annotation-format",
                             "textvqa", "--question-file", str(root / "textvqa/llava_textvqa_val_v051_ocr.jsonl")])
    capsys.readouterr()
    expected = (vqa_accuracy("Dakota", ["dakota"] * 9 + ["nous les gosses"]) + 1.0
                + vqa_accuracy("sublimely self-righteous ale", ["ale"] * 7 + ["sublimely self-righteous ale"] * 3)) / 3
    assert result["score"] == pytest.approx(100 * expected) and result["n"] == 3


def test_scienceqa_llava_files_as_they_are(root, generator, tmp_path, capsys):
    entry = bench("scienceqa_llava")
    evaluate(generator, entry, str(root), tmp_path, batch_size=3, max_new_tokens=2, progress=False)
    prompts = {r["question_id"]: r["prompt"] for r in rows(tmp_path / "scienceqa_llava/answers.jsonl")}
    assert prompts["4"] == ("USER: <image>\nContext: Select the best answer.\nWhich animal is a mammal?\nA. frog\n"
                            f"B. whale\n{LETTER} ASSISTANT:")           # model_vqa_science's --single-pred-prompt
    assert "<image>" not in prompts["5"] and prompts["5"].count(LETTER) == 1
    # eval_science_qa.py: a bare letter, "X. ...", one "The answer is X." count; "b" does not.
    texts = {"4": "B", "5": "The answer is A.", "6": "b"}
    result = score_cli.main(["--metric", "mc_accuracy", "--result-file", str(answers_file(tmp_path / "a.jsonl", texts)),
                             "--annotation-file", str(root / "scienceqa/problems.json"), "--annotation-format",
                             "scienceqa", "--question-file", str(root / "scienceqa/llava_test_CQM-A.json"),
                             "--group-by", "modality"])
    capsys.readouterr()
    assert result["score"] == pytest.approx(200 / 3)
    assert result["per_modality"] == {"image": {"score": 50.0, "n": 2}, "text": {"score": 100.0, "n": 1}}


def test_gqa_llava_file_through_eval_generate(root, tiny_model, tmp_path, capsys):
    question_file = str(root / "gqa/llava_gqa_testdev_balanced.jsonl")
    common = ["--model-path", tiny_model, "--question-file", question_file, "--image-folder",
              str(root / "gqa/data/images"), "--answers-file", str(tmp_path / "a.jsonl"), "--max-new-tokens", "2",
              "--prompt-suffix", SHORT]
    with pytest.raises(SystemExit, match="already ends with the suffix"):
        generate_cli.main(common)
    generate_cli.main(common + ["--suffix-in-text"])
    capsys.readouterr()
    assert all(r["prompt"].count(SHORT) == 1 for r in rows(tmp_path / "a.jsonl"))
    texts = {"201307251": "No.", "201640614": "The woman"}  # LLaVA's rstrip('.').lower(): "no" right, "the woman" not
    result = score_cli.main(["--metric", "exact_match", "--result-file", str(answers_file(tmp_path / "b.jsonl", texts)),
                             "--annotation-file", str(root / "gqa/data/testdev_balanced_questions.json"),
                             "--annotation-format", "gqa", "--question-file", question_file])
    capsys.readouterr()
    assert result["score"] == 50.0


def test_vqav2_testdev_submission(root, generator, tmp_path, capsys):
    entry = bench("vqav2_testdev_llava")
    summary = evaluate(generator, entry, str(root), tmp_path, batch_size=2, max_new_tokens=3, progress=False)
    answered = {r["question_id"]: r["text"] for r in rows(tmp_path / "vqav2_testdev_llava/answers.jsonl")}
    upload = json.loads(Path(summary["file"]).read_text())
    # Every test2015 question in its order; the test-dev ones answered through the EvalAI processor, the rest "".
    assert [u["question_id"] for u in upload] == [1, 262144000, 262144001]
    assert upload == [{"question_id": 1, "answer": ""}] + [
        {"question_id": q, "answer": normalize_vqa_answer(answered[q])} for q in (262144000, 262144001)]
    assert summary["answered"] == 2 and summary["format"] == "vqav2"
    partial = answers_file(tmp_path / "p.jsonl", {262144000: "Yes."})
    argv = ["vqav2", "--answers-file", str(partial), "--question-file",
            str(root / "vqav2/llava_vqav2_mscoco_test-dev2015.jsonl"), "--server-question-file",
            str(root / "vqav2/llava_vqav2_mscoco_test2015.jsonl"), "--output", str(tmp_path / "up.json")]
    with pytest.raises(SystemExit, match="no answer for 1 of the 2 questions"):  # LLaVA would upload "" silently
        submission_cli.main(argv)
    assert submission_cli.main(argv + ["--allow-missing"]) == 1
    assert json.loads((tmp_path / "up.json").read_text())[1] == {"question_id": 262144000, "answer": "yes"}
    gqa = answers_file(tmp_path / "g.jsonl", {"201307251": "No.", "201640614": "Woman"})
    submission_cli.main(["gqa", "--answers-file", str(gqa), "--question-file",
                         str(root / "gqa/llava_gqa_testdev_balanced.jsonl"), "--output", str(tmp_path / "gqa.json")])
    capsys.readouterr()
    assert json.loads((tmp_path / "gqa.json").read_text()) == [{"questionId": "201307251", "prediction": "no"},
                                                                {"questionId": "201640614", "prediction": "woman"}]
