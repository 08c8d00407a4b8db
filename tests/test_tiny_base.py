"""The tiny base's vision stage (scripts/tiny/pretrain_vision.py): it trains the tower alone, towards
predicting each image's description tokens from the mean of its patches, and leaves a checkpoint LLaVA code loads."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import write_color_task

REPO = Path(__file__).resolve().parents[1]


def load_script():
    spec = importlib.util.spec_from_file_location("pretrain_vision", REPO / "scripts/tiny/pretrain_vision.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_idf_weights_favour_rare_tokens():
    script = load_script()
    targets = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    w = script.idf_weights(targets)
    # log(N/df) by hand: token 0 in all 4 (0), token 1 in 2 (log 2), token 2 in 1 (log 4), token 3 never (0).
    raw = torch.tensor([0.0, 0.6931472, 1.3862944, 0.0])
    assert torch.allclose(w, raw * 3 / raw.sum(), atol=1e-6)
    # A power sharpens the weights towards the rarest token, still at mean 1 over the 3 tokens that occur.
    cubed = script.idf_weights(targets, power=3.0)
    assert torch.allclose(cubed, raw ** 3 * 3 / (raw ** 3).sum(), atol=1e-6)
    assert cubed[2] / cubed[1] == pytest.approx(8.0)


def test_vision_stage_trains_only_the_tower_and_lowers_its_loss(tiny_model, tmp_path, capsys):
    script = load_script()
    data = write_color_task(tmp_path, n=16)
    out = tmp_path / "vision"
    script.main(["--model", tiny_model, "--data_path", str(data), "--image_folder", str(tmp_path / "images"),
                 "--output_dir", str(out), "--steps", "20", "--batch_size", "8", "--learning_rate", "3e-3"])
    losses = [float(line.split(" loss ")[1].split()[0]) for line in capsys.readouterr().out.splitlines()
              if line.startswith("vision step")]
    before, after = load_file(Path(tiny_model) / "model.safetensors"), load_file(out / "model.safetensors")
    assert before.keys() == after.keys()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all("vision_tower" in k for k in changed)  # language model and projector untouched
    assert any("patch_embedding" in k for k in changed)
    # The tiny tower has 2 layers and LLaVA reads layer -2 (the first layer's output): the second layer never
    # reaches the language model, so the stage neither runs nor changes it, and the checkpoint still holds it.
    assert any("encoder.layers.0." in k for k in changed)
    assert not any("encoder.layers.1." in k for k in changed) and any("encoder.layers.1." in k for k in after)
    assert (out / "tokenizer.json").is_file() and (out / "tiny_config.json").is_file()
    assert losses and losses[-1] < 0.9 * script_initial_loss(script, tiny_model, data, tmp_path)


def script_initial_loss(script, model_dir, data, tmp_path) -> float:
    """The stage's loss with the untrained tower and a zero head: the uniform distribution's cross-entropy."""
    from transformers import AutoProcessor
    processor = AutoProcessor.from_pretrained(model_dir)
    _, targets = script.load_corpus(data, tmp_path / "images", processor)
    # -sum(t log(1/V)) = log V for every normalised target distribution.
    return float(torch.log(torch.tensor(float(targets.shape[1]))))


def test_the_stage_runs_the_layers_llava_reads_and_no_more(tiny_model):
    from transformers import LlavaForConditionalGeneration

    script = load_script()
    assert script.layers_read(3, -2) == 2 and script.layers_read(3, -1) == 3 and script.layers_read(3, 1) == 1
    with pytest.raises(ValueError, match="embeddings"):
        script.layers_read(3, -4)
    # The truncated tower's last hidden state is the full tower's hidden_states[vision_feature_layer].
    model = LlavaForConditionalGeneration.from_pretrained(tiny_model).eval()
    tower, layer = model.model.vision_tower, model.config.vision_feature_layer
    pixels = torch.randn(2, 3, model.config.vision_config.image_size, model.config.vision_config.image_size)
    full = tower(pixels, output_hidden_states=True).hidden_states[layer]
    tower.encoder.layers = tower.encoder.layers[:script.layers_read(len(tower.encoder.layers), layer)]
    assert torch.equal(tower(pixels, output_hidden_states=True).hidden_states[-1], full)


def test_vision_stage_rejects_bad_input(tiny_model, tmp_path):
    script = load_script()
    with pytest.raises(SystemExit, match="--steps"):
        script.main(["--model", tiny_model, "--data_path", "x", "--image_folder", "x", "--output_dir", "x",
                     "--steps", "0"])
    with pytest.raises(SystemExit, match="--idf_power"):
        script.main(["--model", tiny_model, "--data_path", "x", "--image_folder", "x", "--output_dir", "x",
                     "--idf_power", "0"])
    (tmp_path / "bad.json").write_text('[{"id": "a", "conversations": [{"from": "human", "value": "hi"}]}]')
    with pytest.raises(ValueError, match=r"bad.json: record 1 \(a\)"):
        script.main(["--model", tiny_model, "--data_path", str(tmp_path / "bad.json"), "--image_folder",
                     str(tmp_path), "--output_dir", str(tmp_path / "o"), "--steps", "2"])


def test_tower_probe_reads_what_the_features_hold_and_nothing_else():
    """bench/probe_tower.py's probe: held-out accuracy of a linear classifier, fitted on the first n_train rows.
    Features that encode the label (class mean + small noise) score 100; features independent of the label
    score near chance (3 classes: 33)."""
    import numpy as np
    spec = importlib.util.spec_from_file_location("probe_tower", REPO / "bench/probe_tower.py")
    probe_tower = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe_tower)
    rng = np.random.default_rng(0)
    labels = [("circle", "square", "triangle")[i % 3] for i in range(600)]
    means = {name: rng.normal(size=16) * 3 for name in set(labels)}
    x = np.stack([means[name] + 0.1 * rng.normal(size=16) for name in labels])
    assert probe_tower.probe(x, labels, 400) == 100.0
    assert probe_tower.probe(rng.normal(size=(600, 16)), labels, 400) < 50.0
    # fresh characters: one of the ocr task's glyphs each, from the probe's own stream (reproducible)
    images, chars = probe_tower.character_images(5, seed=0)
    again, chars_again = probe_tower.character_images(5, seed=0)
    from llava_thanora.data.minimix.ocr import GLYPHS
    assert chars == chars_again and all(c in GLYPHS for c in chars)
    assert [np.asarray(a).tobytes() for a in images] == [np.asarray(b).tobytes() for b in again]
