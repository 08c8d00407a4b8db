"""Generation: batched answers equal batch-size-1 answers, a killed run resumes without duplicates or broken lines,
shards merge back into the full answer set, answers are only ever resumed by the run that wrote them, and
eval.run's scores equal eval.score's on the same answers file."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from eval import score as score_cli
from eval.answers import AnswersMismatch, model_record, read_record, record_path
from eval.benchmarks import get_benchmarks
from eval.generate import Generator, chunk, load_questions
from eval.merge_answers import merge
from eval.run import evaluate


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
    assert set(row) == {"question_id", "prompt", "text", "model_id", "run"} and row["model_id"] == "tiny"
    record = read_record(tmp_path / "b1.jsonl")
    assert row["run"] == record["fingerprint"] == four["0"]["run"]  # batch size is not part of the record
    assert record["record"]["prompt"] == {"conv_mode": "template", "format": {"conv_mode": "template"},
                                          "prompt_suffix": "", "suffix_in_text": False}
    assert record["record"]["generation"] == {"max_new_tokens": 6, "do_sample": False, "num_beams": 1,
                                              "image_aspect_ratio": "pad", "dtype": "torch.float32",
                                              "image_processor": "CLIPImageProcessorPil"}
    assert row["prompt"].startswith("USER: <image>\n") and row["prompt"].endswith("ASSISTANT:")


def test_resume_after_kill_mid_write(generator, questions, tmp_path):
    qs = load_questions(questions[0])
    ref = tmp_path / "ref.jsonl"
    generator.run(qs, ref, batch_size=2, progress=False)
    lines = ref.read_text().splitlines(keepends=True)
    partial = tmp_path / "partial.jsonl"
    partial.write_text("".join(lines[:3]) + lines[3][: len(lines[3]) // 2])  # killed in the middle of a line
    record_path(partial).write_text(record_path(ref).read_text())
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


def test_answers_of_another_run_are_never_reused(generator, questions, tmp_path):
    """The issue's case: OLD answers a file, then NEW (another checkpoint) is pointed at the same file."""
    qs = load_questions(questions[0])[:3]
    answers = tmp_path / "a.jsonl"
    old = Generator(generator.model, generator.processor, questions[1], max_new_tokens=3, model_id="final",
                    source={"model_path": "/runs/seed0/final", "model_id": "final"})
    new = Generator(generator.model, generator.processor, questions[1], max_new_tokens=3, model_id="final",
                    source={"model_path": "/runs/seed1/final", "model_id": "final"})
    assert old.run(qs, answers, batch_size=3, progress=False) == 3
    with pytest.raises(AnswersMismatch) as err:
        new.run(qs, answers, batch_size=3, progress=False)
    message = str(err.value)
    assert "model.model_path: '/runs/seed0/final' -> '/runs/seed1/final'" in message and "--overwrite" in message
    with pytest.raises(AnswersMismatch, match=r"prompt.prompt_suffix: '' -> 'Be brief.'"):
        old.run(qs, answers, batch_size=3, prompt_suffix="Be brief.", progress=False)
    old.max_new_tokens = 4
    with pytest.raises(AnswersMismatch, match=r"generation.max_new_tokens: 3 -> 4"):
        old.run(qs, answers, batch_size=3, progress=False)
    old.max_new_tokens = 3
    assert new.run(qs, answers, batch_size=3, progress=False, overwrite=True) == 3  # starts over
    assert {json.loads(l)["run"] for l in answers.read_text().splitlines()} == {read_record(answers)["fingerprint"]}
    # Lines copied without their record: rejected when they are another run's or LLaVA's (no "run")...
    record_path(answers).unlink()
    with pytest.raises(AnswersMismatch, match="not this run's .* is missing"):
        old.run(qs, answers, batch_size=3, progress=False)
    llava = tmp_path / "llava.jsonl"
    llava.write_text(json.dumps({"question_id": 0, "prompt": "p", "text": "red", "answer_id": "x", "model_id": "m",
                                 "metadata": {}}) + "\n")
    with pytest.raises(AnswersMismatch, match="llava.jsonl:1: this answer has no record of what produced it"):
        old.run(qs, llava, batch_size=3, progress=False)
    # ...and resumed when every line proves it is this run's (the lost record is written again).
    assert new.run(qs, answers, batch_size=3, progress=False) == 0 and record_path(answers).is_file()


def test_model_record_fingerprints_the_weights(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 3000)
    first = model_record(str(tmp_path), None, "m")
    assert first["model_path"] == str(tmp_path.resolve()) and set(first["weights"]) == {"model.safetensors"}
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 2999 + b"\1")  # retrained into the same folder
    assert model_record(str(tmp_path), None, "m")["weights"] != first["weights"]
    assert model_record("llava-hf/llava-1.5-7b-hf", None, "m")["weights"] is None  # a hub id: its name says it


def test_shards_of_different_runs_do_not_merge(generator, questions, tmp_path):
    qs = load_questions(questions[0])
    generator.run(load_questions(questions[0], 2, 0), tmp_path / "s0.jsonl", batch_size=4, progress=False)
    generator.max_new_tokens = 2
    try:
        generator.run(load_questions(questions[0], 2, 1), tmp_path / "s1.jsonl", batch_size=4, progress=False)
    finally:
        generator.max_new_tokens = 6
    with pytest.raises(ValueError, match="different runs"):
        merge(questions[0], [str(tmp_path / "s0.jsonl"), str(tmp_path / "s1.jsonl")], str(tmp_path / "m.jsonl"))
    assert len(qs) == 7


def test_eval_run_and_eval_score_give_the_same_score(generator, questions, tmp_path, capsys):
    """A lettered benchmark (LLaVA's rule reads the options) and --limit: the recorded command rescores exactly."""
    root = tmp_path / "data"
    (root / "mcq").mkdir(parents=True)
    rows = [{"question_id": f"m{i}", "image": f"{i % 2}.png", "text": "Which colour?\nA. red\nB. blue", "task": "mcq",
             "choices": ["red", "blue"]} for i in range(4)]
    (root / "mcq/q.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "mcq/a.jsonl").write_text("".join(json.dumps({"question_id": r["question_id"], "answers": ["B"]}) + "\n"
                                              for r in rows))
    (tmp_path / "reg").mkdir()
    (tmp_path / "reg/mcq_test.json").write_text(json.dumps({
        "name": "mcq_test", "question_file": "mcq/q.jsonl", "annotation_file": "mcq/a.jsonl", "metric": "mc_accuracy",
        "image_folder": "img", "prompt_suffix": "Answer with the option's letter from the given choices directly.",
        "max_new_tokens": 3}))
    (root / "img").symlink_to(questions[1])
    bench = get_benchmarks(["mcq_test"], [tmp_path / "reg"])[0]
    for limit in (None, 3):
        out = tmp_path / f"out{limit}"
        summary = evaluate(generator, bench, str(root), out, batch_size=2, limit=limit, progress=False)
        answers = out / "mcq_test/answers.jsonl"
        # Some answers are letters: overwrite two with texts only the lenient extractor would read.
        lines = [json.loads(l) for l in answers.read_text().splitlines()]
        lines[0]["text"], lines[1]["text"] = "B", "blue"
        answers.write_text("".join(json.dumps(l) + "\n" for l in lines))
        summary = evaluate(generator, bench, str(root), out, batch_size=2, limit=limit, progress=False)
        rescored = score_cli.main(summary["rescore"])
        capsys.readouterr()
        assert {k: rescored[k] for k in ("metric", "score", "n", "missing")} == \
               {k: summary[k] for k in ("metric", "score", "n", "missing")}
        assert summary["n"] == (limit or 4) and summary["score"] >= 100 / summary["n"] - 1e-9  # "B" counts
