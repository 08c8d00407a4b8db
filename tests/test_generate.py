"""Generation: batched answers equal batch-size-1 answers, a killed run resumes without duplicates or broken lines,
and shards merge back into the full answer set."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from eval.generate import Generator, chunk, completed_ids, load_questions
from eval.merge_answers import merge


@pytest.fixture(scope="module")
def questions(tmp_path_factory):
    root = tmp_path_factory.mktemp("questions")
    (root / "img").mkdir()
    rows = []
    for i in range(7):
        if i % 3 != 2:  # a mix of image and text-only questions, of different lengths
            Image.new("RGB", (30 + 5 * i, 40), (40 * i, 255 - 30 * i, 90)).save(root / "img" / f"{i}.png")
            rows.append({"question_id": i, "image": f"{i}.png", "text": "What color is this?" + " Be brief." * i})
        else:
            rows.append({"question_id": f"t{i}", "text": "Name a shape" + " please" * i})
    qfile = root / "q.jsonl"
    qfile.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(qfile), str(root / "img")


@pytest.fixture(scope="module")
def generator(tiny_model, questions):
    from llava_thanora.methods.loading import load_trained

    model, processor, _ = load_trained(tiny_model)
    return Generator(model, processor, questions[1], max_new_tokens=6, model_id="tiny")


def read(path):
    return {str(r["question_id"]): r for r in map(json.loads, open(path))}


def test_batched_equals_batch_size_one(generator, questions, tmp_path):
    qs = load_questions(questions[0])
    generator.run(qs, tmp_path / "b1.jsonl", batch_size=1, progress=False)
    generator.run(qs, tmp_path / "b4.jsonl", batch_size=4, progress=False)
    one, four = read(tmp_path / "b1.jsonl"), read(tmp_path / "b4.jsonl")
    assert set(one) == {str(q["question_id"]) for q in qs}
    assert {k: v["text"] for k, v in one.items()} == {k: v["text"] for k, v in four.items()}
    assert any(v["text"] for v in one.values())
    row = one["0"]
    assert set(row) == {"question_id", "prompt", "text", "model_id"} and row["model_id"] == "tiny"
    assert row["prompt"].startswith("USER: <image>\n") and row["prompt"].endswith("ASSISTANT:")


def test_resume_after_kill_mid_write(generator, questions, tmp_path):
    qs = load_questions(questions[0])
    ref = tmp_path / "ref.jsonl"
    generator.run(qs, ref, batch_size=2, progress=False)
    lines = ref.read_text().splitlines(keepends=True)
    partial = tmp_path / "partial.jsonl"
    partial.write_text("".join(lines[:3]) + lines[3][: len(lines[3]) // 2])  # killed in the middle of a line
    assert len(completed_ids(partial)) == 3 and partial.read_text().endswith("\n")
    new = generator.run(qs, partial, batch_size=2, progress=False)
    assert new == len(qs) - 3
    text = partial.read_text()
    ids = [json.loads(l)["question_id"] for l in text.splitlines()]
    assert len(ids) == len(set(map(str, ids))) == len(qs)
    assert {k: v["text"] for k, v in read(partial).items()} == {k: v["text"] for k, v in read(ref).items()}
    assert generator.run(qs, partial, batch_size=2, progress=False) == 0  # nothing left to do


def test_chunks_cover_everything_and_merge(generator, questions, tmp_path):
    qs = load_questions(questions[0])
    parts = [chunk(qs, 3, i) for i in range(3)]
    assert sum(parts, []) == qs
    shards = []
    for i in range(3):
        shard = tmp_path / f"a.{i}.jsonl"
        generator.run(load_questions(questions[0], 3, i), shard, batch_size=3, progress=False)
        shards.append(str(shard))
    out = tmp_path / "merged.jsonl"
    assert merge(questions[0], shards, str(out)) == len(qs)
    assert [str(json.loads(l)["question_id"]) for l in out.read_text().splitlines()] == [str(q["question_id"]) for q in qs]
    with pytest.raises(ValueError, match="no answer"):
        merge(questions[0], shards[:2], str(tmp_path / "bad.jsonl"))
