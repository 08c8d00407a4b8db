"""The dataset converters on tiny fixtures that have the columns of the published hub datasets.

Every converter runs in-process on a local copy (save_to_disk folders, or parquet files laid out as a hub
snapshot), then its outputs are checked: the training prompt rule, the question / annotation contract, the
images on disk, and that answering with the first reference scores 100 under the benchmark's metric.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, Sequence, Value
from PIL import Image as PILImage

from eval.benchmarks import get_benchmarks
from eval.io import read_jsonl
from eval.score import score_files
from scripts.prepare_data import (chartqa, coco_caption, docvqa, flickr30k, gqa, iconqa, ocrvqa, scienceqa,
                                  textvqa, vqav2)
from scripts.prepare_data.common import run

STR, INT, STRS = Value("string"), Value("int64"), Sequence(Value("string"))


def picture(shade: int) -> PILImage.Image:
    return PILImage.new("RGB", (6, 4), (shade, 255 - shade, 40))


def save(tmp_path: Path, name: str, columns: dict, features: dict, split: str | None = None) -> str:
    """A save_to_disk copy: a Dataset, or a DatasetDict with one `split` when given."""
    ds = Dataset.from_dict(columns, features=Features(features))
    path = tmp_path / name
    (DatasetDict({split: ds}) if split else ds).save_to_disk(str(path))
    return str(path)


def convert(module, tmp_path: Path, dataset: str, split: str, *extra: str) -> tuple[list, list, list, Path]:
    out = tmp_path / "out"
    paths = run(module.SPEC, ["--dataset", dataset, "--split", split, "--output-dir", str(out), *extra])
    train = json.loads(paths["train"].read_text())
    return train, read_jsonl(paths["questions"]), read_jsonl(paths["annotations"]), out


def oracle_score(tmp_path: Path, benchmark: str, questions_file: Path, annotations_file: Path) -> float:
    """Score answers equal to each question's first reference with the benchmark's metric."""
    answers = tmp_path / "oracle.jsonl"
    answers.write_text("".join(json.dumps({"question_id": a["question_id"], "prompt": "", "text": a["answers"][0],
                                           "model_id": "oracle"}) + "\n" for a in read_jsonl(annotations_file)))
    bench = get_benchmarks([benchmark])[0]
    return score_files(bench.metric, answers, annotations_file, questions_file)["score"]


def test_scienceqa_letters_context_and_split_selection(tmp_path):
    path = save(tmp_path, "sqa", {
        "image": [picture(1), None], "question": ["Which is a mammal?", "Pick one."],
        "choices": [["frog", "whale"], ["x", "y", "z"]], "answer": [1, 2], "hint": ["Think about milk.", ""],
        "subject": ["biology", "physics"], "lecture": ["", ""], "solution": ["", ""],
    }, {"image": Image(), "question": STR, "choices": STRS, "answer": Value("int8"), "hint": STR, "subject": STR,
        "lecture": STR, "solution": STR}, split="test")
    train, questions, annotations, out = convert(scienceqa, tmp_path, path, "test")
    assert questions[0]["text"] == "Context: Think about milk.\nWhich is a mammal?\nA. frog\nB. whale"
    assert questions[0]["choices"] == ["frog", "whale"] and questions[0]["task"] == "scienceqa"
    assert [a["answers"] for a in annotations] == [["B"], ["C"]]
    assert train[0]["conversations"][0]["value"] == (
        "<image>\n" + questions[0]["text"] + "\nAnswer with the option's letter from the given choices directly.")
    assert train[0]["conversations"][1]["value"] == "B" and train[0]["task"] == "scienceqa"
    assert "image" not in questions[1] and not train[1]["conversations"][0]["value"].startswith("<image>")
    assert (out / "images" / questions[0]["image"]).is_file()
    qfile, afile = out / "scienceqa/test_questions.jsonl", out / "scienceqa/test_annotations.jsonl"
    assert oracle_score(tmp_path, "scienceqa_img", qfile, afile) == 100.0
    with pytest.raises(ValueError, match="no split 'validation'"):
        convert(scienceqa, tmp_path, path, "validation")
    _, only_images, _, _ = convert(scienceqa, tmp_path, path, "test", "--images-only")
    assert len(only_images) == 1


def test_docvqa_keeps_all_answers_and_rejects_unanswered_split(tmp_path):
    columns = {"questionId": ["7", "8"], "question": ["What is the date?", "Who signed?"],
               "question_types": [["other"], ["other"]], "image": [picture(2), picture(2)], "docId": [5, 5],
               "ucsf_document_id": ["a", "a"], "ucsf_document_page_no": ["1", "1"],
               "answers": [["May 1", "1 May"], ["J. Doe"]], "data_split": ["val", "val"]}
    features = {"questionId": STR, "question": STR, "question_types": STRS, "image": Image(), "docId": INT,
                "ucsf_document_id": STR, "ucsf_document_page_no": STR, "answers": STRS, "data_split": STR}
    train, questions, annotations, out = convert(docvqa, tmp_path, save(tmp_path, "doc", columns, features),
                                                 "validation")
    assert annotations[0] == {"question_id": "7", "answers": ["May 1", "1 May"]}
    assert train[0]["conversations"][1]["value"] == "May 1"
    assert questions[0]["image"] == questions[1]["image"] == "docvqa/doc5.png"
    assert len(list((out / "images" / "docvqa").iterdir())) == 1
    assert oracle_score(tmp_path, "docvqa", out / "docvqa/validation_questions.jsonl",
                        out / "docvqa/validation_annotations.jsonl") == 100.0
    columns["answers"] = [[], []]
    with pytest.raises(ValueError, match="no reference answers"):
        convert(docvqa, tmp_path, save(tmp_path, "doc_test", columns, features), "test")


def test_chartqa_subsets_and_shared_charts(tmp_path):
    path = save(tmp_path, "chart", {
        "image": [picture(3), picture(3), picture(4)], "query": ["Max value?", "Min value?", "Label of red?"],
        "label": [["12.5"], ["3"], ["Sales"]], "human_or_machine": [0, 1, 0],
    }, {"image": Image(), "query": STR, "label": STRS, "human_or_machine": ClassLabel(names=["human", "machine"])})
    _, questions, _, out = convert(chartqa, tmp_path, path, "test")
    assert [q["subset"] for q in questions] == ["human", "augmented", "human"]
    assert questions[0]["image"] == questions[1]["image"] != questions[2]["image"]
    summary = score_files("relaxed_accuracy", _answers(tmp_path, {"chartqa-test-00000": "12.9",
                                                                  "chartqa-test-00001": "4",
                                                                  "chartqa-test-00002": "sales"}),
                          out / "chartqa/test_annotations.jsonl", out / "chartqa/test_questions.jsonl",
                          group_by="subset")
    assert summary["per_subset"] == {"augmented": {"score": 0.0, "n": 1}, "human": {"score": 100.0, "n": 2}}


def _answers(tmp_path: Path, texts: dict) -> Path:
    path = tmp_path / "answers.jsonl"
    path.write_text("".join(json.dumps({"question_id": q, "prompt": "", "text": t, "model_id": "m"}) + "\n"
                            for q, t in texts.items()))
    return path


def test_textvqa_as_llava_by_default_and_lmms_eval_without_ocr(tmp_path):
    path = save(tmp_path, "tvqa", {
        "image_id": ["img1", "img2"], "question_id": [34602, 34603],
        "question": ["what brand is this?", "what does the NASA sign say?"],
        "image": [picture(5), picture(6)], "answers": [["sony"] * 3 + ["Sony"] * 6 + ["sony tv"], ["launch"] * 10],
        "ocr_tokens": [["DAKOTA", "DIGITAL", "Single-Use"], []], "set_name": ["val", "val"],
    }, {"image_id": STR, "question_id": Value("int32"), "question": STR, "image": Image(), "answers": STRS,
        "ocr_tokens": STRS, "set_name": STR})
    train, questions, annotations, out = convert(textvqa, tmp_path, path, "validation")
    assert questions[0]["question_id"] == "34602" and len(annotations[0]["answers"]) == 10
    # LLaVA's llava_textvqa_val_v051_ocr.jsonl wording: capital first letter, the tokens in their own casing.
    assert questions[0]["text"] == "What brand is this?\nReference OCR token: DAKOTA, DIGITAL, Single-Use"
    assert questions[1]["text"] == "What does the NASA sign say?"          # no tokens: no OCR line
    assert train[0]["conversations"][0]["value"] == (
        "<image>\n" + questions[0]["text"] + "\nAnswer the question using a single word or phrase.")
    assert train[0]["conversations"][1]["value"] == "Sony"
    noocr = read_jsonl(out / "textvqa/validation_noocr_questions.jsonl")   # lmms-eval's: str.capitalize, no OCR
    assert [q["text"] for q in noocr] == ["What brand is this?", "What does the nasa sign say?"]
    assert [q["question_id"] for q in noocr] == ["34602", "34603"] and noocr[0]["image"] == questions[0]["image"]
    for bench, qfile in (("textvqa", "validation_questions.jsonl"), ("textvqa_lmms", "validation_noocr_questions.jsonl")):
        bench_entry = get_benchmarks([bench])[0]
        assert bench_entry.question_file == f"textvqa/{qfile}"
        assert oracle_score(tmp_path, bench, out / "textvqa" / qfile, out / "textvqa/validation_annotations.jsonl") == 100
    train, questions, _, _ = convert(textvqa, tmp_path, path, "validation", "--no-ocr-tokens")
    assert questions[0]["text"] == "What brand is this?" and "OCR" not in train[0]["conversations"][0]["value"]
    bare = save(tmp_path, "tvqa_bare", {"image_id": ["i"], "question_id": [1], "question": ["q?"], "image": [picture(1)],
                                        "answers": [["a"] * 10]},
                {"image_id": STR, "question_id": INT, "question": STR, "image": Image(), "answers": STRS})
    with pytest.raises(ValueError, match="no 'ocr_tokens' column"):
        convert(textvqa, tmp_path, bare, "validation")


def test_ocrvqa_one_item_per_question(tmp_path):
    path = save(tmp_path, "ocr", {
        "image": [picture(6)], "image_id": ["B001"], "questions": [["Who wrote this book?", "Is this a novel?"]],
        "answers": [["Jane Austen", "Yes"]], "title": ["Emma"],
    }, {"image": Image(), "image_id": STR, "questions": STRS, "answers": STRS, "title": STR})
    train, questions, annotations, out = convert(ocrvqa, tmp_path, path, "test")
    assert [q["question_id"] for q in questions] == ["B001_0", "B001_1"]
    assert annotations[1]["answers"] == ["Yes"] and train[0]["conversations"][1]["value"] == "Jane Austen"
    assert oracle_score(tmp_path, "ocrvqa", out / "ocrvqa/test_questions.jsonl",
                        out / "ocrvqa/test_annotations.jsonl") == 100.0


def iconqa_columns(answer_choose_txt: str) -> tuple[dict, dict]:
    return ({"question_id": ["1", "2", "3"], "question": ["How many dots?", "What shape?", "Which one?"],
             "choices": ["", "circle,square", "a,b"], "answer": ["4", answer_choose_txt, "0"],
             "query_image": [picture(7), picture(8), picture(9)], "choice_image_0": [None, None, picture(1)],
             "ques_type": ["fill_in_blank", "choose_txt", "choose_img"]},
            {"question_id": STR, "question": STR, "choices": STR, "answer": STR, "query_image": Image(),
             "choice_image_0": Image(), "ques_type": STR})


def test_iconqa_subtasks(tmp_path):
    train, questions, annotations, out = convert(iconqa, tmp_path, save(tmp_path, "icon", *iconqa_columns("square")),
                                                 "test")
    assert [q["ques_type"] for q in questions] == ["fill_in_blank", "choose_txt"]  # choose_img skipped
    assert questions[1]["text"] == ("What shape?\nA. circle\nB. square\n"
                                    "Answer with the option's letter from the given choices directly.")
    assert annotations[1]["answers"] == ["B", "square"] and train[1]["conversations"][1]["value"] == "B"
    assert train[0]["conversations"][0]["value"].endswith("\nAnswer the question using a single word or phrase.")
    assert oracle_score(tmp_path, "iconqa", out / "iconqa/test_questions.jsonl",
                        out / "iconqa/test_annotations.jsonl") == 100.0
    _, _, by_index, _ = convert(iconqa, tmp_path, save(tmp_path, "icon_i", *iconqa_columns("0")), "test",
                                "--answer-is-index")
    assert by_index[1]["answers"] == ["A", "circle"]
    with pytest.raises(ValueError, match="--answer-is-index"):
        convert(iconqa, tmp_path, save(tmp_path, "icon_bad", *iconqa_columns("triangle")), "test")


def test_vqav2_answers_and_consensus_target(tmp_path):
    answers = [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1}
               for i, a in enumerate(["2"] * 7 + ["two"] * 2 + ["3"])]
    path = save(tmp_path, "vqa", {
        "question_type": ["how many"], "multiple_choice_answer": ["2"], "answers": [answers], "image_id": [42],
        "answer_type": ["number"], "question_id": [420001], "question": ["How many dogs?"], "image": [picture(10)],
    }, {"question_type": STR, "multiple_choice_answer": STR,
        "answers": [{"answer": STR, "answer_confidence": STR, "answer_id": INT}], "image_id": INT,
        "answer_type": STR, "question_id": INT, "question": STR, "image": Image()})
    train, questions, annotations, out = convert(vqav2, tmp_path, path, "validation")
    assert annotations[0]["answers"][7] == "two" and questions[0]["answer_type"] == "number"
    assert questions[0]["image"] == "vqav2/42.png" and train[0]["conversations"][1]["value"] == "2"
    assert oracle_score(tmp_path, "vqav2", out / "vqav2/validation_questions.jsonl",
                        out / "vqav2/validation_annotations.jsonl") == 100.0


def test_gqa_joins_separate_image_config_from_parquet_snapshot(tmp_path):
    snapshot = tmp_path / "GQA"
    for config, columns, features in [
        ("testdev_balanced_instructions",
         {"id": ["q1", "q2"], "imageId": ["n1", "n1"], "question": ["Is it red?", "What is it?"],
          "answer": ["yes", "ball"], "fullAnswer": ["Yes, it is red.", "It is a ball."]},
         {"id": STR, "imageId": STR, "question": STR, "answer": STR, "fullAnswer": STR}),
        ("testdev_balanced_images", {"id": ["n1", "n2"], "image": [picture(11), picture(12)]},
         {"id": STR, "image": Image()}),
    ]:
        (snapshot / config).mkdir(parents=True)
        Dataset.from_dict(columns, features=Features(features)).to_parquet(
            str(snapshot / config / "testdev-00000-of-00001.parquet"))
    train, questions, annotations, out = convert(gqa, tmp_path, str(snapshot), "testdev")
    assert [q["image"] for q in questions] == ["gqa/n1.png", "gqa/n1.png"]
    assert annotations[1]["answers"] == ["ball"] and questions[0]["full_answer"] == "Yes, it is red."
    assert oracle_score(tmp_path, "gqa", out / "gqa/testdev_questions.jsonl",
                        out / "gqa/testdev_annotations.jsonl") == 100.0


def flickr30k_snapshot(root: Path) -> Path:
    """umaru97/flickr30k_train_val_test as the hub stores it: data/<split>-00000-of-00001-<hash>.parquet, one file per
    Karpathy split, with nlphuji/flickr30k's columns (its "split" column repeats the split)."""
    features = Features({"image": Image(), "caption": STRS, "sentids": STRS, "split": STR, "img_id": STR,
                         "filename": STR})
    for n, (split, ids) in enumerate([("train", ["101", "102"]), ("val", ["103"]), ("test", ["100", "104"])]):
        rows = {"image": [picture(13 + int(i) - 100) for i in ids],
                "caption": [[f"A dog runs {i}.", "A brown dog."] if i == "100" else [f"Two people {i}."] for i in ids],
                "sentids": [[f"{i}0", f"{i}1"] if i == "100" else [f"{i}0"] for i in ids], "split": [split] * len(ids),
                "img_id": ids, "filename": [f"{i}.jpg" for i in ids]}
        (root / "data").mkdir(parents=True, exist_ok=True)
        Dataset.from_dict(rows, features=features).to_parquet(str(root / "data" / f"{split}-00000-of-00001-{n}f4c5.parquet"))
    return root


def test_captions_one_training_record_per_caption(tmp_path):
    assert flickr30k.SPEC.default_dataset == "umaru97/flickr30k_train_val_test"  # parquet: loads with datasets 5
    snapshot = flickr30k_snapshot(tmp_path / "flickr30k_train_val_test")
    train, questions, annotations, out = convert(flickr30k, tmp_path, str(snapshot), "test")
    assert [q["question_id"] for q in questions] == ["100", "104"] and [t["id"] for t in train[:2]] == ["100_0", "100_1"]
    assert annotations[0]["answers"] == ["A dog runs 100.", "A brown dog."]
    assert train[1]["conversations"] == [
        {"from": "human", "value": "<image>\nProvide a one-sentence caption for the provided image."},
        {"from": "gpt", "value": "A brown dog."}]
    assert questions[0]["image"] == "flickr30k/100.png"
    _, val, _, _ = convert(flickr30k, tmp_path, str(snapshot), "val", "--karpathy-split", "val")
    assert [q["question_id"] for q in val] == ["103"]
    assert oracle_score(tmp_path, "flickr30k", out / "flickr30k/test_questions.jsonl",
                        out / "flickr30k/test_annotations.jsonl") > 100  # CIDEr of the references themselves
    coco = save(tmp_path, "coco", {"question_id": ["COCO_val2014_000000000042.jpg"], "image": [picture(15)],
                                   "question": ["caption"], "answer": [["A cat.", "A kitten sleeping."]]},
                {"question_id": STR, "image": Image(), "question": STR, "answer": STRS})
    _, questions, annotations, out = convert(coco_caption, tmp_path, coco, "val")
    assert questions[0]["question_id"] == "COCO_val2014_000000000042"
    assert (out / "images" / questions[0]["image"]).is_file()


def test_missing_columns_and_max_samples(tmp_path):
    path = save(tmp_path, "bad", {"question": ["q"], "image": [picture(1)]}, {"question": STR, "image": Image()})
    with pytest.raises(ValueError, match=r"missing column\(s\) \['questionId', 'docId', 'answers'\]"):
        convert(docvqa, tmp_path, path, "validation")
    ocr = save(tmp_path, "ocr", {"image": [picture(1), picture(2)], "image_id": ["a", "b"],
                                 "questions": [["q1"], ["q2"]], "answers": [["x"], ["y"]]},
               {"image": Image(), "image_id": STR, "questions": STRS, "answers": STRS})
    _, questions, _, _ = convert(ocrvqa, tmp_path, ocr, "test", "--max-samples", "1")
    assert [q["question_id"] for q in questions] == ["a_0"]

