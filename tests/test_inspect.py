"""`python -m llava_thanora.data.inspect`: one JSON line per sample with exactly what training feeds the model, and
every bad sample named by file, line and id."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from llava_thanora.data import inspect


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("inspect")
    Image.new("RGB", (10, 20), (255, 0, 0)).save(root / "red.png")
    (root / "broken.png").write_bytes(b"not an image")
    turns = [{"from": "human", "value": "<image>\nWhat color?"}, {"from": "gpt", "value": "red"},
             {"from": "human", "value": "Sure?"}, {"from": "gpt", "value": "Yes."}]
    samples = [
        {"id": "a", "image": "red.png", "conversations": turns},
        {"id": "b", "conversations": turns[1:2]},  # starts with gpt: found before training
        {"id": "c", "conversations": [{"from": "human", "value": "q " * 300}, {"from": "gpt", "value": "a"}]},
        {"id": "d", "image": "broken.png", "conversations": turns[:2]},
    ]
    path = root / "d.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in samples))
    return str(path), str(root)


def run(capsys, data, tiny_model, *extra):
    path, folder = data
    code = inspect.main(["--model_name_or_path", tiny_model, "--data_path", path, "--image_folder", folder,
                         "--model_max_length", "256", *extra])
    return code, capsys.readouterr().out


@pytest.mark.parametrize("conv_mode", ["template", "llava_v1"])
def test_json_lines_are_what_training_sees(capsys, data, tiny_model, processor, conv_mode):
    from llava_thanora.data.conversation import PromptFormat
    from llava_thanora.data.dataset import DataConfig, SupervisedDataset

    code, out = run(capsys, data, tiny_model, "--conv_mode", conv_mode)
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 1  # bad samples were found
    assert lines[0]["id"] is None and f"{data[0]}:2: sample id='b'" in lines[0]["error"]
    good = {r["id"]: r for r in lines if "prompt" in r}
    assert sorted(good) == ["a", "d"] and set(good["a"]) == {"id", "prompt", "input_ids", "labels"}
    assert "would be truncated away" in next(r["error"] for r in lines if r["id"] == "c")
    # the same ids and labels as the training dataset's items
    fmt = PromptFormat.from_processor(processor, conv_mode)
    ds = SupervisedDataset(DataConfig([data[0]], data[1], model_max_length=256, skip_bad_samples=True), fmt,
                           processor.image_processor)
    item = ds[0]
    assert good["a"]["input_ids"] == item["input_ids"].tolist() and good["a"]["labels"] == item["labels"].tolist()
    assert good["a"]["input_ids"].count(fmt.image_token_id) == fmt.image_seq_length
    assert good["a"]["prompt"].count("<image>") == 1  # unexpanded in the text
    if conv_mode == "llava_v1":
        assert good["a"]["prompt"].startswith("A chat between a curious user") and good["a"]["prompt"].endswith(
            "USER: Sure? ASSISTANT: Yes.</s>")


def test_check_images_and_pretty(capsys, data, tiny_model):
    code, out = run(capsys, data, tiny_model, "--check_images", "--limit", "4")
    assert code == 1 and "unreadable" in next(json.loads(x)["error"] for x in out.splitlines() if '"d"' in x)
    code, out = run(capsys, data, tiny_model, "--pretty", "--limit", "1")
    assert "== a" in out and "<image> x16" in out  # the 16 image tokens on one row
    assert out.count("</s>") >= 2
