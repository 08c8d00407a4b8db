"""The text-only suites: commonsense-170k-format and GSM8K converters on fixtures with the published columns, their
answer extraction against LLM-Adapters' rule (re-implemented here from its commonsense_evaluate.py / evaluate.py),
and the scripts/text recipes through train.py's parser."""

from __future__ import annotations

import json
import random
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from eval.metrics import get_metric
from eval.metrics.reasoning import COMMONSENSE_LABELS, first_label, last_number

REPO = Path(__file__).resolve().parents[1]
BOOLQ = [
    {"instruction": "Please answer the following question with true or false, question: is the sky blue?\n\n"
                    "Answer format: true/false", "input": "", "output": "the correct answer is true", "answer": "true"},
    {"instruction": "Please answer the following question with true or false, question: is ice hot?\n\n"
                    "Answer format: true/false", "input": "", "output": "the correct answer is false", "answer": "false"},
]
SIQA = [{"instruction": "Please choose the correct answer to the question: Why did Ann call? \n\nAnswer1: to chat "
                        "Answer2: to sleep Answer3: to run\n\nAnswer format: answer1/answer2/answer3", "input": "",
         "output": "the correct answer is answer1", "answer": "answer1"}]


def llm_adapters_extract(task: str, sentence: str) -> str:
    """LLM-Adapters' extract_answer: the first match of the task's label alternation ("" when none)."""
    pattern = {"boolq": r"true|false", "piqa": r"solution1|solution2", "hellaswag": r"ending1|ending2|ending3|ending4",
               "winogrande": r"option1|option2"}.get(task, r"answer1|answer2|answer3|answer4|answer5")
    found = re.findall(pattern, sentence.strip())
    return found[0] if found else ""


def llm_adapters_number(sentence: str) -> float:
    """LLM-Adapters' extract_answer_number for gsm8k: the last number, commas removed; inf when none."""
    found = re.findall(r"-?\d+\.?\d*", sentence.replace(",", ""))
    return float(found[-1]) if found else float("inf")


def test_extraction_equals_llm_adapters_rules():
    rng = random.Random(0)
    words = ["the", "correct", "answer", "is", "true", "false", "solution1", "solution2", "answer1", "answer3",
             "answer5", "ending2", "ending4", "option1", "option2", "True", "answer", "1", "2.5", "-3", "1,234", ".", "x"]
    for _ in range(3000):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(0, 8)))
        for task in ("boolq", "piqa", "siqa", "hellaswag", "winogrande", "arc_c"):
            labels = COMMONSENSE_LABELS[task] if task != "siqa" else ("answer1", "answer2", "answer3")
            ours = first_label(text, labels)
            theirs = llm_adapters_extract(task, text)
            # LLM-Adapters uses answer1..answer5 for SIQA too; ours reads the 3 labels its answer format lists
            assert ours == theirs or (task == "siqa" and theirs in ("answer4", "answer5")), (task, text)
        reference = llm_adapters_number(text)
        ours = last_number(text)
        assert (ours is None and reference == float("inf")) or ours == reference, text


def convert(module: str, dataset: Path, out: Path, *extra: str) -> None:
    """The converter's own entry (`common.run`), in this process."""
    from scripts.prepare_data import commonsense, common, gsm8k

    argv = ["--dataset", str(dataset), "--output-dir", str(out), *extra]
    spec = commonsense.spec(extra[extra.index("--task") + 1]) if module == "commonsense" else gsm8k.SPEC
    common.run(spec, argv)


def test_commonsense_converter_and_scoring(tmp_path):
    (tmp_path / "boolq.json").write_text(json.dumps(BOOLQ))
    (tmp_path / "siqa.json").write_text(json.dumps(SIQA))
    convert("commonsense", tmp_path / "boolq.json", tmp_path / "out", "--task", "boolq", "--split", "test")
    convert("commonsense", tmp_path / "siqa.json", tmp_path / "out", "--task", "siqa", "--split", "train")
    rows = [json.loads(line) for line in (tmp_path / "out/boolq/test_questions.jsonl").read_text().splitlines()]
    assert rows[0]["labels"] == ["true", "false"] and rows[0]["text"] == BOOLQ[0]["instruction"]
    train = json.loads((tmp_path / "out/train/siqa_train.json").read_text())
    assert train[0]["conversations"][1]["value"] == "the correct answer is answer1" and "image" not in train[0]
    metric = get_metric("commonsense_accuracy")
    refs = {r["question_id"]: [a] for r, a in zip(rows, ("true", "false"))}
    questions = {r["question_id"]: r for r in rows}
    preds = {rows[0]["question_id"]: "the correct answer is true", rows[1]["question_id"]: "true, or maybe false"}
    assert metric.compute(preds, refs, questions) == 0.5  # the first label counts, as in LLM-Adapters
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{**BOOLQ[0], "answer": "yes"}]))
    with pytest.raises(ValueError, match="not one of its labels"):
        convert("commonsense", bad, tmp_path / "bad", "--task", "boolq")


def test_gsm8k_converter_reads_both_sources(tmp_path):
    hub = [{"question": "Tom has 3 apples and buys 4. How many?", "answer": "3 + 4 = 7\n#### 7"},
           {"question": "What is 1000 + 234?", "answer": "It is 1,234.\n#### 1,234"}]
    (tmp_path / "hub.jsonl").write_text("".join(json.dumps(r) + "\n" for r in hub))
    adapters = [{"instruction": "What is 2 * 21?", "input": "", "output": "2 * 21 = 42. The answer is 42", "answer": "42"}]
    (tmp_path / "adapters.json").write_text(json.dumps(adapters))
    convert("gsm8k", tmp_path / "hub.jsonl", tmp_path / "a", "--split", "test")
    convert("gsm8k", tmp_path / "adapters.json", tmp_path / "b", "--split", "test")
    annotations = [json.loads(x)["answers"] for x in (tmp_path / "a/gsm8k/test_annotations.jsonl").read_text().splitlines()]
    assert annotations == [["7"], ["1234"]]
    train = json.loads((tmp_path / "b/train/gsm8k_test.json").read_text())
    assert train[0]["conversations"][1]["value"].endswith("The answer is 42")
    metric = get_metric("gsm8k_accuracy")
    preds = {"x": "so she has 1,234 apples", "y": "7 apples, not 8", "z": "no idea"}
    assert metric.compute(preds, {"x": ["1234"], "y": ["7"], "z": ["3"]}) == pytest.approx(1 / 3)


def test_text_recipes_parse_with_their_settings(tmp_path):
    from llava_thanora.cli import registered
    from llava_thanora.train.args import parse_args

    env = {"PY": "echo", "LAUNCH": "echo", "CKPT": str(tmp_path / "none"), "DATA": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(["bash", "scripts/text/reproduce_table.sh"], cwd=REPO, capture_output=True, text=True,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    commands = [shlex.split(line) for line in proc.stdout.splitlines() if line.startswith("train.py")]
    assert len(commands) == 3
    for argv in commands:
        del argv[argv.index("--deepspeed"): argv.index("--deepspeed") + 2]
        del argv[argv.index("--bf16"): argv.index("--bf16") + 2]
        parsed = parse_args(argv[1:], registered())
        assert len(parsed.data.data_path.split(",")) == 8 and parsed.model.lora_r == 32
    converted = [line for line in proc.stdout.splitlines() if line.startswith("-m scripts.prepare_data")]
    assert len(converted) == 16 and any("--task siqa" in line and "social_i_qa/test.json" in line for line in converted)
