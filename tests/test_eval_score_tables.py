"""eval.score's CLI contract, the benchmark registry, the eval shell scripts, and eval.tables."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from eval import score as score_cli
from eval import tables
from eval.benchmarks import DEFAULT_DATA_ROOT, Benchmark, get_benchmarks, load_benchmark_file, load_registry
from eval.io import JsonlError, read_by_id, read_jsonl

REPO = Path(__file__).resolve().parents[1]


def jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def files(tmp_path):
    """Three questions of two tasks: question, annotation and (shuffled) answer files."""
    q = jsonl(tmp_path / "q.jsonl", [
        {"question_id": 1, "image": "a.png", "text": "Colour?", "task": "vqa"},
        {"question_id": 2, "image": "b.png", "text": "Shape?", "task": "vqa"},
        {"question_id": "x3", "text": "Which?", "task": "mcq", "choices": ["cat", "dog"]},
    ])
    a = jsonl(tmp_path / "a.jsonl", [{"question_id": 1, "answers": ["red"]}, {"question_id": 2, "answers": ["cube"]},
                                     {"question_id": "x3", "answers": ["B"]}])
    r = jsonl(tmp_path / "r.jsonl", [{"question_id": "x3", "prompt": "p", "text": "B", "model_id": "m"},
                                     {"question_id": 2, "prompt": "p", "text": "sphere", "model_id": "m"},
                                     {"question_id": 1, "prompt": "p", "text": "Red.", "model_id": "m"}])
    return tmp_path, q, a, r


def run_score(capsys, *argv) -> dict:
    score_cli.main([str(a) for a in argv])
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1])


def test_score_matches_by_id_and_breaks_down_by_task(files, capsys):
    tmp, q, a, r = files
    summary = run_score(capsys, "--metric", "exact_match", "--result-file", r, "--annotation-file", a,
                        "--question-file", q, "--output", tmp / "s.json")
    assert summary["metric"] == "exact_match" and summary["n"] == 3 and summary["missing"] == 0
    assert summary["score"] == pytest.approx(200 / 3)                     # "Red." and "B" right, "sphere" wrong
    assert summary["per_task"] == {"mcq": {"score": 100.0, "n": 1}, "vqa": {"score": 50.0, "n": 2}}
    assert json.loads((tmp / "s.json").read_text()) == summary


def test_missing_answers_are_errors_unless_allowed(files, capsys):
    tmp, q, a, r = files
    partial = jsonl(tmp / "p.jsonl", read_jsonl(r)[:2])
    with pytest.raises(SystemExit) as err:
        score_cli.main(["--metric", "exact_match", "--result-file", str(partial), "--annotation-file", str(a)])
    message = str(err.value.code)
    assert str(partial) in message and "'1'" in message and "--allow-missing" in message
    summary = run_score(capsys, "--metric", "exact_match", "--result-file", partial, "--annotation-file", a,
                        "--allow-missing")
    assert summary["missing"] == 1 and summary["score"] == pytest.approx(100 / 3) and "per_task" not in summary


@pytest.mark.parametrize("extra_row, message", [
    ({"question_id": 1, "text": "red"}, "question_id '1' is answered twice"),
    ({"question_id": 99, "text": "red"}, "question_id '99' has no annotation"),
    ({"question_id": 5}, "has no annotation"),
    ({"text": "red"}, "missing 'question_id'"),
])
def test_bad_answer_files_name_file_line_and_id(files, extra_row, message):
    tmp, q, a, r = files
    bad = jsonl(tmp / "bad.jsonl", read_jsonl(r) + [extra_row])
    with pytest.raises(SystemExit) as err:
        score_cli.main(["--metric", "exact_match", "--result-file", str(bad), "--annotation-file", str(a)])
    assert f"{bad}:4" in str(err.value.code) and message in str(err.value.code)


def test_lettered_scores_follow_llava_by_default_and_need_the_question_file(files, capsys):
    tmp, q, a, r = files
    mcq_q = jsonl(tmp / "mq.jsonl", [read_jsonl(q)[2]])
    mcq_a = jsonl(tmp / "ma.jsonl", [read_jsonl(a)[2]])
    by_text = jsonl(tmp / "mr.jsonl", [{"question_id": "x3", "text": "It is a dog."}])
    official = run_score(capsys, "--metric", "mc_accuracy", "--result-file", by_text, "--annotation-file", mcq_a,
                         "--question-file", mcq_q)
    assert official["score"] == 0.0 and official["metric"] == "mc_accuracy"      # LLaVA reads no letter in it
    lenient = run_score(capsys, "--metric", "mc_accuracy_lenient", "--result-file", by_text, "--annotation-file",
                        mcq_a, "--question-file", mcq_q)
    assert lenient["score"] == 100.0 and lenient["metric"] == "mc_accuracy_lenient"  # the opt-in, named as such
    for metric in ("mc_accuracy", "mc_accuracy_lenient"):  # never a different score without the options
        with pytest.raises(SystemExit, match="pass --question-file"):
            score_cli.main(["--metric", metric, "--result-file", str(by_text), "--annotation-file", str(mcq_a)])
    with pytest.raises(SystemExit, match="--limit reads the question rows"):
        score_cli.main(["--metric", "exact_match", "--result-file", str(r), "--annotation-file", str(a),
                        "--limit", "1"])
    with pytest.raises(SystemExit) as err:
        score_cli.main(["--metric", "mc_accuracy", "--result-file", str(r), "--annotation-file", str(a),
                        "--question-file", str(mcq_q)])
    assert "hold different questions" in str(err.value.code)
    with pytest.raises(SystemExit) as err:   # a reference that is not a letter is named with its file and id
        score_cli.main(["--metric", "mc_accuracy", "--result-file", str(r), "--annotation-file", str(a),
                        "--question-file", str(q)])
    assert f"{a} (questions: {q}): question_id '1'" in str(err.value.code)
    limited = run_score(capsys, "--metric", "exact_match", "--result-file", r, "--annotation-file", a,
                        "--question-file", q, "--limit", "2")   # the answer to x3 is past the limit: not scored
    assert limited["n"] == 2 and limited["score"] == 50.0


def test_jsonl_errors_name_file_and_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"question_id": 1, "answers": ["a"]}\n\n{"question_id": 1, "answers": ["b"]}\n')
    with pytest.raises(JsonlError, match=r"x.jsonl:3: duplicate question_id '1' \(first on line 1\)"):
        read_by_id(path)
    path.write_text('{"question_id": 1}\n[1, 2]\n')
    with pytest.raises(JsonlError, match=r"x.jsonl:2: expected a JSON object"):
        read_jsonl(path)
    path.write_text('{"question_id": 1, "answers": []}\n')
    with pytest.raises(ValueError, match="'answers' must be a non-empty list of strings"):
        score_cli.load_annotations(path)


def test_builtin_registry_is_complete():
    registry = load_registry()
    expected = {"scienceqa_img", "docvqa", "chartqa", "textvqa", "ocrvqa", "iconqa", "vqav2", "gqa", "flickr30k",
                "coco_caption", "minimix_vqa", "minimix_ocr", "minimix_caption", "minimix_mcq",
                "scienceqa_img_lmms", "textvqa_lmms", "chartqa_lmms", "vqav2_lmms",
                "scienceqa_llava", "textvqa_llava", "gqa_llava", "vqav2_testdev_llava"}
    text_only = {"boolq", "piqa", "siqa", "hellaswag", "winogrande", "arc_e", "arc_c", "obqa", "gsm8k"}
    assert set(registry) == expected | text_only
    assert {registry[n].metric for n in text_only - {"gsm8k"}} == {"commonsense_accuracy"}
    assert registry["gsm8k"].metric == "gsm8k_accuracy"
    assert {n: registry[n].metric for n in ("scienceqa_img", "docvqa", "chartqa", "textvqa", "flickr30k")} == {
        "scienceqa_img": "mc_accuracy", "docvqa": "anls", "chartqa": "relaxed_accuracy", "textvqa": "vqa_accuracy",
        "flickr30k": "cider"}
    scripts = {p.stem for p in (REPO / "scripts/eval").glob("*.sh")} - {"common"}
    assert scripts == expected
    paths = registry["textvqa"].paths("/data")
    assert paths.question_file == Path("/data/textvqa/validation_questions.jsonl")
    assert paths.image_folder == Path("/data/images")
    # an explicit root wins; without one, an entry's own data_root, else the default
    assert registry["minimix_vqa"].paths("/elsewhere").question_file == Path("/elsewhere/vqa/test_questions.jsonl")
    assert registry["minimix_vqa"].paths().question_file == Path("playground/data/minimix/vqa/test_questions.jsonl")
    assert registry["textvqa"].paths().question_file == Path("playground/data/eval/textvqa/validation_questions.jsonl")


def test_minimix_entries_agree_with_the_minimix_builder():
    from llava_thanora.data.minimix import writer

    for task in writer.TASKS:
        bench = get_benchmarks([f"minimix_{task}"])[0]
        assert bench.prompt_suffix == writer.PROMPT_SUFFIX[task]
        assert "<image>\n" + bench.prompt("Q?") == writer.human_value("Q?", writer.PROMPT_SUFFIX[task])
        assert bench.question_file == f"{task}/test_questions.jsonl" and bench.image_folder == "images"


def entry(**overrides) -> dict:
    return {"name": "mytask", "question_file": "mytask/q.jsonl", "annotation_file": "mytask/a.jsonl",
            "metric": "anls", **overrides}


@pytest.mark.parametrize("overrides, message", [
    ({"colour": "red"}, "unknown field"),
    ({"metric": "bleu9"}, "unknown metric 'bleu9'"),
    ({"name": "other"}, "must equal the file name"),
    ({"max_new_tokens": 0}, "max_new_tokens must be a positive integer"),
    ({"prompt_suffix": 3}, "field 'prompt_suffix' must be a string"),
])
def test_bad_entries_are_rejected_with_the_file_named(tmp_path, overrides, message):
    path = tmp_path / "mytask.json"
    path.write_text(json.dumps(entry(**overrides)))
    with pytest.raises(ValueError, match=message):
        load_benchmark_file(path)
    data = entry()
    del data["metric"]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=rf"{path.name}: missing required field\(s\) \['metric'\]"):
        load_benchmark_file(path)


def test_user_directory_adds_and_overrides_entries(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine/mytask.json").write_text(json.dumps(entry(prompt_suffix="Answer briefly.")))
    (tmp_path / "mine/docvqa.json").write_text(json.dumps(entry(name="docvqa", metric="exact_match")))
    mine, doc = get_benchmarks("mytask,docvqa", [tmp_path / "mine"])
    assert isinstance(mine, Benchmark) and mine.prompt("Q?") == "Q?\nAnswer briefly." and mine.max_new_tokens == 128
    assert doc.metric == "exact_match"
    (tmp_path / "again").mkdir()
    (tmp_path / "again/mytask.json").write_text(json.dumps(entry()))
    with pytest.raises(ValueError, match="defined in both"):
        load_registry([tmp_path / "mine", tmp_path / "again"])
    with pytest.raises(ValueError, match=r"unknown benchmark\(s\) \['nope'\]"):
        get_benchmarks("nope")


def test_eval_script_passes_model_base_and_extra_flags():
    env = {**os.environ, "PYTHON": "echo", "BATCH_SIZE": "2"}
    out = subprocess.run(["bash", "scripts/eval/chartqa.sh", "ckpt/lora", "base/llava", "--seed", "1"], cwd=REPO,
                         env=env, capture_output=True, text=True, check=True).stdout.split()
    assert out == ["-m", "eval.run", "--model-path", "ckpt/lora", "--model-base", "base/llava", "--benchmarks",
                   "chartqa", "--output-dir", "results/eval/ckpt__lora", "--batch-size", "2", "--conv-mode", "llava_v1",
                   "--seed", "1"]
    # Two checkpoints with the same folder name get two output folders.
    dirs = {subprocess.run(["bash", "scripts/eval/chartqa.sh", path], cwd=REPO, env=env, capture_output=True,
                           text=True, check=True).stdout.split("--output-dir ")[1].split()[0]
            for path in ("runs/seed0/final", "runs/seed1/final/", "/abs/runs/seed0/final")}
    assert dirs == {"results/eval/runs__seed0__final", "results/eval/runs__seed1__final",
                    "results/eval/abs__runs__seed0__final"}
    usage = subprocess.run(["bash", "scripts/eval/chartqa.sh"], cwd=REPO, env=env, capture_output=True, text=True)
    assert usage.returncode == 2 and "usage" in usage.stderr
    assert DEFAULT_DATA_ROOT == "playground/data/eval"


def result(tmp_path: Path, name: str, method: str, seed, **scores) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"method": method, "seed": seed, "model": f"ckpt/{name}", "scores": {
        b: {"metric": "anls" if b == "docvqa" else "mc_accuracy", "score": s, "n": 10} for b, s in scores.items()}}))
    return str(path)


def test_tables_mean_std_avg_and_formats(tmp_path, capsys):
    files = [result(tmp_path, "l0", "lora", 0, scienceqa_img=80.0, docvqa=40.0),
             result(tmp_path, "l1", "lora", 1, scienceqa_img=82.0, docvqa=42.0),
             result(tmp_path, "t0", "thanora", 0, scienceqa_img=85.5, docvqa=41.0),
             result(tmp_path, "t1", "thanora", 1, scienceqa_img=86.5, docvqa=43.0),
             result(tmp_path, "i0", "individual", None, scienceqa_img=90.0)]
    markdown = tables.main([*files, "--output", str(tmp_path / "out/main")])
    lines = markdown.splitlines()
    assert lines[0] == "| Method | Seeds | scienceqa_img | docvqa | Avg |"
    # thanora Avg: runs average 63.25 and 64.75 -> 64.00 ± 1.06 (sample std); best values in bold.
    assert lines[3] == "| thanora | 2 | 86.00 ± 0.71 | **42.00 ± 1.41** | **64.00 ± 1.06** |"
    assert lines[4] == "| individual | 1 | **90.00** | – | – |"
    csv_rows = (tmp_path / "out/main.csv").read_text().splitlines()
    assert csv_rows[0] == "method,seeds,scienceqa_img,scienceqa_img_std,docvqa,docvqa_std,avg,avg_std"
    assert csv_rows[1].startswith("lora,2,81.0,1.414213562373")
    tex = (tmp_path / "out/main.tex").read_text()
    assert r"Method & scienceqa\_img & docvqa & Avg \\" in tex and r"\textbf{90.00} & -- & --" in tex
    assert (tmp_path / "out/main.md").read_text() == markdown
    only = tables.main([files[0], "--benchmarks", "docvqa"])
    assert only.splitlines()[2] == "| lora | 1 | **40.00** | **40.00** |"


def test_tables_reject_duplicates_and_metric_changes(tmp_path):
    a = result(tmp_path, "a", "lora", 0, docvqa=40.0)
    b = result(tmp_path, "b", "lora", 0, docvqa=41.0)
    with pytest.raises(SystemExit, match="appears in both"):
        tables.main([a, b])
    c = tmp_path / "c.json"
    c.write_text(json.dumps({"method": "x", "scores": {"docvqa": {"metric": "exact_match", "score": 1.0}}}))
    with pytest.raises(SystemExit, match="scored with 'anls'"):
        tables.main([a, str(c)])
    c.write_text(json.dumps({"method": "x", "scores": {"docvqa": {"score": "high"}}}))
    with pytest.raises(SystemExit, match=r"c.json: scores\['docvqa'\] must be an object with a numeric 'score'"):
        tables.main([str(c)])


def test_readme_parity_table_covers_the_registry():
    """Every registered benchmark has a row in the README's parity table, with the reference its entry names."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("### Parity with published numbers"):text.index("### Adding your own visual task")]
    names = {"LLaVA-1.5": "llava-1.5", "lmms-eval": "lmms-eval", "LLM-Adapters": "llm-adapters", "neither": "none"}
    rows = {}
    for line in section.splitlines():
        if line.startswith("| `"):
            first, reference = line.split(" | ")[:2]
            for name in first.strip("| ").split(", "):
                rows[name.strip("`")] = next(v for k, v in names.items() if reference.startswith(k))
    registry = load_registry()
    assert rows == {name: bench.reference for name, bench in registry.items()}
