"""Data contract: exact label masks from tokenized turns, and every bad input named by file and line/id."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from llava_thanora.data.conversation import IGNORE_INDEX
from llava_thanora.data.dataset import Collator, DataConfig, DataError, SupervisedDataset


@pytest.fixture(scope="module")
def llava_v1_format(processor):
    from llava_thanora.data.conversation import PromptFormat

    return PromptFormat.from_processor(processor, "llava_v1")


def supervised_spans(ids, labels):
    """Contiguous runs of supervised tokens, as token lists (checks both the mask and that labels == ids there)."""
    spans, cur = [], []
    for i, l in zip(ids, labels):
        if l == IGNORE_INDEX:
            if cur:
                spans.append(cur)
                cur = []
        else:
            assert l == i, "a supervised label must equal its input token"
            cur.append(l)
    if cur:
        spans.append(cur)
    return spans


def make_dataset(tmp_path, samples, prompt_format, processor, name="data.json", jsonl=False, **cfg):
    path = tmp_path / name
    if jsonl:
        path.write_text("".join(json.dumps(s) + "\n" for s in samples))
    else:
        path.write_text(json.dumps(samples))
    (tmp_path / "img").mkdir(exist_ok=True)
    config = DataConfig([str(path)], image_folder=str(tmp_path / "img"), **cfg)
    return SupervisedDataset(config, prompt_format, processor.image_processor), path


def turn(frm, value):
    return {"from": frm, "value": value}


def test_single_turn_mask_is_exactly_the_answer(tmp_path, prompt_format, processor):
    (tmp_path / "img").mkdir()
    Image.new("RGB", (40, 20), (255, 0, 0)).save(tmp_path / "img" / "red.png")
    ds, _ = make_dataset(tmp_path, [{"id": "a", "image": "red.png",
                                     "conversations": [turn("human", "<image>\nWhat color?"), turn("gpt", "red")]}],
                         prompt_format, processor)
    item = ds[0]
    tok = processor.tokenizer
    ids, labels = item["input_ids"].tolist(), item["labels"].tolist()
    spans = supervised_spans(ids, labels)
    assert len(spans) == 1
    assert spans[0] == tok("red", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    # The prompt is the chat template's generation prompt, with the image expanded to the model's image tokens.
    prompt_ids = ids[: len(ids) - len(spans[0])]
    expected_prompt = prompt_format.encode_prompt(prompt_format.generation_prompt("What color?", num_images=1))
    assert prompt_ids == expected_prompt
    assert prompt_ids.count(tok.convert_tokens_to_ids("<image>")) == prompt_format.image_seq_length == 16
    # LLaVA's `pad`: a 40x20 image is padded to a square, then resized to the tower's 32x32.
    assert tuple(item["pixel_values"].shape) == (1, 3, 32, 32)


def test_multi_turn_and_text_only_masks(tmp_path, prompt_format, processor):
    conv = [turn("human", "Hi there"), turn("gpt", "hello"), turn("human", "what is two plus two"), turn("gpt", "four")]
    ds, _ = make_dataset(tmp_path, [{"id": "m", "conversations": conv}], prompt_format, processor)
    item = ds[0]
    tok = processor.tokenizer
    spans = supervised_spans(item["input_ids"].tolist(), item["labels"].tolist())
    assert spans == [tok(a, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for a in ("hello", "four")]
    assert "pixel_values" not in item
    text = tok.decode(item["input_ids"])
    assert text.count("ASSISTANT:") == 2 and text.count("USER:") == 2
    assert item["input_ids"][0].item() == tok.bos_token_id


def test_task_defaults_to_file_stem_and_mixture(tmp_path, prompt_format, processor):
    a = tmp_path / "alpha.json"
    b = tmp_path / "beta.jsonl"
    a.write_text(json.dumps([{"id": "1", "conversations": [turn("human", "q"), turn("gpt", "x")]}]))
    b.write_text(json.dumps({"id": "2", "task": "custom", "conversations": [turn("human", "q"), turn("gpt", "y")]}) + "\n"
                 + json.dumps({"id": "3", "conversations": [turn("human", "q"), turn("gpt", "z")]}) + "\n")
    ds = SupervisedDataset(DataConfig([str(a), str(b)]), prompt_format, processor.image_processor)
    assert len(ds) == 3 and ds.tasks == ["alpha", "beta", "custom"]
    assert ds.task_indices() == {"alpha": [0], "beta": [2], "custom": [1]}
    batch = Collator(processor.tokenizer.pad_token_id)([ds[0], ds[1]])
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()


GOOD = {"id": "ok", "conversations": [turn("human", "q"), turn("gpt", "a")]}
ASK = [turn("human", "<image>\nq"), turn("gpt", "a")]


@pytest.fixture()
def image_dir(tmp_path):
    (tmp_path / "img").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "img" / "ok.png")
    (tmp_path / "img" / "broken.png").write_bytes(b"not a png at all")
    Image.new("RGB", (8, 8)).save(tmp_path / "outside.png")
    return tmp_path


# Found before training: structure, tags against images, image paths (no tokenizer, no image decoding).
@pytest.mark.parametrize("bad, message", [
    ({"conversations": [turn("human", "q"), turn("gpt", "a")]}, "missing required field 'id'"),
    ({"id": "x"}, "missing required field 'conversations'"),
    ({"id": "x", "conversations": [turn("robot", "q"), turn("gpt", "a")]}, "unknown role 'robot'"),
    ({"id": "x", "conversations": [turn("human", "<image>\n<image>\nq"), turn("gpt", "a")], "image": "ok.png"},
     "2 <image> tag(s) but 1 image(s)"),
    ({"id": "x", "conversations": ASK, "image": "missing.png"}, "not found"),
    ({"id": "x", "conversations": ASK, "image": "../outside.png"}, "outside --image_folder"),
    ({"id": "x", "conversations": ASK, "image": "/etc/hostname"}, "absolute"),
    ({"id": "x", "conversations": [turn("human", "q")]}, "must end with a gpt turn"),
    ({"id": "x", "conversations": ASK, "image": 3}, "'image' must be a path"),
])
def test_cheap_checks_stop_before_training_with_file_line_and_id(image_dir, prompt_format, processor, bad, message):
    with pytest.raises(DataError) as err:
        make_dataset(image_dir, [GOOD, GOOD, bad], prompt_format, processor, name="d.jsonl", jsonl=True)
    text = str(err.value)
    assert message in text
    assert f"{image_dir / 'd.jsonl'}:3" in text  # file and line
    if "id" in bad:
        assert "id='x'" in text


# Found by the worker that draws the sample: what needs the tokenizer or the image's bytes.
@pytest.mark.parametrize("bad, message", [
    ({"id": "x", "conversations": ASK, "image": "broken.png"}, "unreadable"),
    ({"id": "x", "conversations": [turn("human", "q " * 400), turn("gpt", "a")]}, "would be truncated away"),
    ({"id": "x", "conversations": [turn("system", "s"), turn("system", "t"), *ASK[:1], turn("gpt", "a")],
      "image": "ok.png"}, "2 system turns"),
])
def test_lazy_checks_stop_when_drawn_with_file_line_and_id(image_dir, llava_v1_format, processor, bad, message):
    ds, path = make_dataset(image_dir, [GOOD, GOOD, bad], llava_v1_format, processor, name="d.jsonl", jsonl=True,
                            model_max_length=256)
    assert len(ds) == 3
    ds[0], ds[1]
    with pytest.raises(DataError) as err:
        ds[2]
    assert message in str(err.value) and f"{path}:3: sample id='x'" in str(err.value)


def test_nothing_is_trained_with_an_empty_label(tmp_path, prompt_format, processor):
    class MasksEverything:
        def __getattr__(self, name):  # everything but tokenize is the real format's
            return getattr(prompt_format, name)

        def tokenize(self, conversations, image_counts=None):
            tok = prompt_format.tokenize(conversations, image_counts)
            return type(tok)(tok.input_ids, [IGNORE_INDEX] * len(tok.labels), tok.num_images)

    ds, path = make_dataset(tmp_path, [GOOD], MasksEverything(), processor)
    with pytest.raises(DataError, match=rf"{path} item #0: sample id='ok': no token is supervised"):
        ds[0]


def test_skip_bad_samples_counts_and_reports(image_dir, prompt_format, processor):
    bad = {"id": "b", "conversations": [turn("alien", "q"), turn("gpt", "a")]}
    lazy = {"id": "l", "image": "broken.png", "conversations": ASK}
    ds, path = make_dataset(image_dir, [GOOD, bad, GOOD, bad, lazy], prompt_format, processor, skip_bad_samples=True)
    assert len(ds) == 3 and ds.skipped.count == 2
    assert f"{path} item #1" in ds.skipped.examples[0] and "unknown role" in ds.skipped.examples[0]
    # the lazily found one (index 2 of the kept samples) is replaced by the next sample and counted
    assert ds[2]["input_ids"].tolist() == ds[0]["input_ids"].tolist()
    assert ds.skipped.lazy_count == 1 and "1 replaced while training" in ds.skipped.report()


def test_skips_found_in_workers_reach_the_main_process(image_dir, prompt_format, processor):
    lazy = {"id": "l", "image": "broken.png", "conversations": ASK}
    ds, _ = make_dataset(image_dir, [GOOD, lazy, lazy, GOOD], prompt_format, processor, skip_bad_samples=True)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, collate_fn=Collator(0))
    assert sum(len(b["input_ids"]) for b in loader) == 4
    assert ds.skipped.lazy_count == 2  # each bad sample counted once, whichever worker met it


def test_checks_are_cheap_and_the_parse_is_cached(tmp_path, prompt_format, processor):
    """Construction tokenizes at most the calibration samples and opens no image; the parsed file is cached until
    the file changes."""
    calls = []

    class Counting:
        def __getattr__(self, name):
            return getattr(prompt_format, name)

        def tokenize(self, conversations, image_counts=None):
            calls.append(1)
            return prompt_format.tokenize(conversations, image_counts)

    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "lazy.png").write_bytes(b"decoded only when drawn")
    samples = [{"id": str(i), "image": "lazy.png", "conversations": ASK} for i in range(100)]
    cache = tmp_path / "cache"
    ds, path = make_dataset(tmp_path, samples, Counting(), processor, cache_dir=str(cache))
    assert len(ds) == 100 and len(calls) <= 32 + 2  # the length estimate's calibration
    [arrow] = cache.glob("*.arrow")
    stamp = arrow.stat().st_mtime_ns
    SupervisedDataset(DataConfig([str(path)], str(tmp_path / "img"), cache_dir=str(cache)), Counting(), None)
    assert arrow.stat().st_mtime_ns == stamp  # reused, not parsed again
    ds, _ = make_dataset(tmp_path, samples[:7], Counting(), processor, cache_dir=str(cache))
    [again] = cache.glob("*.arrow")  # a changed file is parsed again, its stale copy removed
    assert len(ds) == 7 and again != arrow


def test_lengths_are_estimated_without_tokenizing(two_task_data, prompt_format, processor):
    paths, images = two_task_data
    ds = SupervisedDataset(DataConfig(paths.split(","), images), prompt_format, processor.image_processor)
    exact = [len(prompt_format.tokenize(ds.conversations(i)).input_ids) for i in range(len(ds))]
    estimate = ds.lengths()
    assert ds.has_image() == [i < 24 for i in range(48)]
    # image tokens are counted exactly, the text from its characters: within a few tokens of the real count
    assert all(abs(a - b) <= 0.25 * b for a, b in zip(estimate, exact)), list(zip(estimate, exact))
    assert min(estimate[:24]) > max(estimate[24:])  # the 16 image tokens dominate these short samples


@pytest.mark.parametrize("content, where", [
    ('[{"id": "1", "conversations": []},\n {"id": 2,, }]', ":2: invalid JSON"),
    ('{"id": "1"}', "must hold a list"),
])
def test_unreadable_json_names_the_line(tmp_path, prompt_format, processor, content, where):
    path = tmp_path / "broken.json"
    path.write_text(content)
    with pytest.raises(DataError, match=str(path).replace(".", r"\.") + ".*") as err:
        SupervisedDataset(DataConfig([str(path)]), prompt_format, processor.image_processor)
    assert where in str(err.value)


def test_unreadable_jsonl_line(tmp_path, prompt_format, processor):
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps(GOOD) + "\n{oops\n")
    with pytest.raises(DataError, match=r"broken\.jsonl:3: invalid JSON"):
        SupervisedDataset(DataConfig([str(path)]), prompt_format, processor.image_processor)


def test_square_aspect_ratio_is_the_processors_resize_and_crop(tmp_path, prompt_format, processor):
    """LLaVA's default `square`: no padding; a 40x20 image is resized and centre-cropped by the processor."""
    import numpy as np

    (tmp_path / "img").mkdir()
    wide = Image.new("RGB", (40, 20), (255, 0, 0))
    wide.paste((0, 0, 255), (0, 0, 10, 20))  # a blue band that the centre crop cuts off and `pad` keeps
    wide.save(tmp_path / "img" / "wide.png")
    sample = [{"id": "w", "image": "wide.png", "conversations": [turn("human", "<image>\nq"), turn("gpt", "a")]}]
    square, _ = make_dataset(tmp_path, sample, prompt_format, processor, name="s.json", image_aspect_ratio="square")
    padded, _ = make_dataset(tmp_path, sample, prompt_format, processor, name="p.json", image_aspect_ratio="pad")
    want = processor.image_processor(wide, return_tensors="pt")["pixel_values"]
    assert np.allclose(square[0]["pixel_values"].numpy(), want.numpy())
    assert not np.allclose(padded[0]["pixel_values"].numpy(), want.numpy())
