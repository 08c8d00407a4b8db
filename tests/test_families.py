"""Every model family through the same code as LLaVA-1.5: tiny checkpoints built offline, loaded like real ones.

Per family: exact label masks (image tokens counted by transformers' own processor for that image size), LoRA and
ThanoRA train and lower the loss, the merged checkpoint equals base + adapter, and batched generation equals batch
size 1. Text-only families refuse images and projector flags. Nothing outside the family layer names a LLaVA-1.5
module or class.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import write_color_task, write_count_task
from llava_thanora.cli import main

REPO = Path(__file__).resolve().parents[1]
VISION = ["llava_next", "llava_onevision", "qwen2_vl", "qwen2_5_vl"]
TEXT = ["llama", "qwen2"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """An image task (48x32 images: not square, so anyres and Qwen2-VL count other tokens than a square) and a
    text-only task."""
    root = tmp_path_factory.mktemp("families")
    return str(write_color_task(root, n=16)), str(write_count_task(root, n=16)), str(root / "images")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    from llava_thanora.model.tiny import TinyConfig, build_tiny

    root = tmp_path_factory.mktemp("tiny_families")
    return {f: str(build_tiny(root / f, TinyConfig(family=f))) for f in VISION + TEXT}


def data_paths(family: str, data) -> str:
    color, count, _ = data
    return count if family in TEXT else f"{color},{count}"


def train(model, data_path, images, out, method, *extra):
    return main(["--model_name_or_path", model, "--data_path", data_path, "--image_folder", images, "--output_dir", str(out), "--method", method, "--max_steps", "8",
                 "--lora_r", "4", "--lora_alpha", "8", "--per_device_train_batch_size", "4", "--learning_rate",
                 "1e-2", "--lr_scheduler_type", "constant", "--logging_steps", "1", "--save_strategy", "no",
                 "--report_to", "none", "--disable_tqdm", "true", "--seed", "0", "--dataloader_num_workers", "0",
                 *(["--thanora_preview_samples", "4"] if method == "thanora" else []), *extra])


@pytest.fixture(scope="module")
def runs(checkpoints, data, tmp_path_factory):
    """{family: {"lora": trainer, "thanora": trainer}}, trained once for the module."""
    out = {}
    for family, model in checkpoints.items():
        out[family] = {m: train(model, data_paths(family, data), data[2], tmp_path_factory.mktemp(f"{family}-{m}"), m)
                       for m in ("lora", "thanora")}
    return out


def losses(trainer) -> list[float]:
    return [h["loss"] for h in trainer.state.log_history if "loss" in h]


@pytest.mark.parametrize("family", VISION + TEXT)
def test_label_masks_and_image_tokens_are_exact(family, checkpoints, data):
    from llava_thanora.cli import registered
    from llava_thanora.data.conversation import IGNORE_INDEX
    from llava_thanora.data.images import load_image
    from llava_thanora.model.builder import load_base
    from llava_thanora.model.families import family_of
    from llava_thanora.train.args import parse_args
    from llava_thanora.train.main import load_data

    model_dir, images = checkpoints[family], data[2]
    parsed = parse_args(["--model_name_or_path", model_dir, "--data_path", data_paths(family, data),
                         "--image_folder", images, "--output_dir", "/tmp/unused"], registered())
    _, processor = load_base(model_dir)
    dataset, _ = load_data(parsed, processor)
    fam = family_of(model_dir)
    tok = processor.tokenizer
    for i in range(len(dataset)):
        item, turns = dataset[i], dataset.conversations(i)
        answers = [t["value"] for t in turns if t["from"] == "gpt"]
        supervised = [t for t in item["labels"].tolist() if t != IGNORE_INDEX]
        assert tok.decode(supervised, skip_special_tokens=False).replace(" ", "") == \
            "".join(a + tok.eos_token for a in answers).replace(" ", "")
        paths_i = dataset._field(i, "images")
        if paths_i:
            # transformers' own processor expands the placeholder for this image: the same count
            image = load_image(Path(images) / paths_i[0], fam.default_aspect_ratio, None)
            expanded = processor(text=fam.image_token, images=[image], add_special_tokens=False)["input_ids"][0]
            token = tok.convert_tokens_to_ids(fam.image_token)
            assert item["input_ids"].tolist().count(token) == list(expanded).count(token) > 1
            assert set(item) - {"input_ids", "labels"} == set(fam.image_inputs_keys)


@pytest.mark.parametrize("family", VISION + TEXT)
def test_lora_and_thanora_lower_the_loss(family, runs):
    for method, trainer in runs[family].items():
        seen = losses(trainer)
        assert len(seen) == 8 and sum(seen[-3:]) / 3 < sum(seen[:3]) / 3 - 0.2, (method, seen)
        assert trainer.method.name == method


def batch_logits(model, processor, fam, data):
    """Logits of one image question and one text question through the family's own inputs."""
    from eval.generate import Generator

    g = Generator(model, processor, data[2], max_new_tokens=1)
    questions = [{"question_id": "t", "text": "How many words are in: red blue"}]
    if fam.image_token:
        questions.append({"question_id": "i", "image": "color_0.png", "text": "What color is the image?"})
    outs = []
    for q in questions:
        images = g._images(q)
        inputs, counts = fam.process_images(processor, images) if images else ({}, None)
        ids = torch.tensor([g.format.encode_prompt(g.format.generation_prompt(q["text"], len(images)), counts)])
        with torch.no_grad():
            outs.append(model(input_ids=ids, **inputs, **fam.token_inputs(ids, g.format.image_token_id)).logits)
    return outs


@pytest.mark.parametrize("family", VISION + TEXT)
def test_merge_equals_base_plus_adapter_and_batched_generation(family, runs, checkpoints, data, tmp_path):
    import importlib.util

    from eval.generate import Generator
    from llava_thanora.methods.loading import load_trained
    from llava_thanora.model.families import family_of

    out = runs[family]["lora"].args.output_dir
    spec = importlib.util.spec_from_file_location("merge_script", REPO / "scripts/merge_lora_weights.py")
    merge_script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(merge_script)
    merge_script.main(["--model-path", out, "--model-base", checkpoints[family], "--save-model-path", str(tmp_path)])
    adapter, processor, kind = load_trained(out, checkpoints[family])
    merged, merged_processor, _ = load_trained(str(tmp_path))
    fam = family_of(merged)
    assert kind == "peft" and family_of(checkpoints[family]).name == fam.name
    for a, b in zip(batch_logits(adapter, processor, fam, data), batch_logits(merged, merged_processor, fam, data)):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    g = Generator(merged, merged_processor, data[2], max_new_tokens=4)
    questions = [{"question_id": "a", "text": "How many words are in: red blue circle"},
                 {"question_id": "b", "text": "How many words are in: red"}]
    if fam.image_token:
        questions += [{"question_id": "c", "image": "color_0.png", "text": "What color is the image?"},
                      {"question_id": "d", "image": "color_3.png", "text": "What color?"}]
    batched = [r["text"] for r in g.answer(questions)]
    assert batched == [g.answer([q])[0]["text"] for q in questions]


def test_text_only_refuses_images_and_projector_flags(checkpoints, data, tmp_path):
    from llava_thanora.data.dataset import DataError

    color, count, images = data
    with pytest.raises(DataError, match="no vision tower"):
        train(checkpoints["llama"], color, images, tmp_path / "a", "lora")
    with pytest.raises(ValueError, match="have no vision-language projector"):
        train(checkpoints["llama"], count, images, tmp_path / "b", "lora", "--mm_projector_lr", "1e-3")
    with pytest.raises(ValueError, match="image_min_pixels / --image_max_pixels"):
        train(checkpoints["llava_next"], color, images, tmp_path / "c", "lora", "--image_max_pixels", "4096")


def test_family_is_chosen_from_config_not_folder_names(checkpoints, tmp_path):
    import shutil

    from llava_thanora.model.families import family_of

    misleading = tmp_path / "llava-1.5-7b-hf"  # a Qwen2-VL checkpoint in a folder named like LLaVA's
    shutil.copytree(checkpoints["qwen2_vl"], misleading)
    assert family_of(misleading).name == "qwen2_vl"
    (tmp_path / "x").mkdir()
    (tmp_path / "x/config.json").write_text('{"model_type": "whisper"}')
    with pytest.raises(ValueError, match="no model family loads model_type 'whisper'"):
        family_of(tmp_path / "x")


def test_no_llava_names_outside_the_family_layer():
    """data/, train/, eval/, methods/ and recipes/ ask the family: no identifier of theirs is a LLaVA-1.5 (or
    Qwen2-VL) module or class name. Flags named as LLaVA's (--vision_tower, --mm_projector_lr) and text are fine."""
    import io
    import tokenize

    banned = {"LlavaForConditionalGeneration", "LlavaProcessor", "CLIPVisionModel", "multi_modal_projector",
              "image_newline", "language_model", "visual", "get_image_features", "merger"}
    found = []
    for folder in ("llava_thanora/data", "llava_thanora/train", "llava_thanora/methods", "llava_thanora/recipes",
                   "eval"):
        for path in (REPO / folder).rglob("*.py"):
            for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
                if token.type == tokenize.NAME and token.string in banned:
                    found.append(f"{path.relative_to(REPO)}:{token.start[0]}: {token.line.strip()}")
    assert not found, "\n".join(found)
