"""Checkpoints in haotian-liu/LLaVA's own layout: a tiny original LLaVA-1.5 (Llama weights under model.layers,
`model.mm_projector.0/2`, mm_* config keys, .bin shards, the real Llama-2 tokenizer without `<image>`) plus a
tiny CLIP folder, both built here. The converter's llava-hf model must compute what the original computes
(re-implemented below as LLaVA does it: Llama on embeddings where the image's features replace its -200 token;
features = CLIP's hidden state at mm_vision_select_layer without CLS, through Linear-GELU-Linear); a LoRA folder
in LLaVA's layout merges onto it exactly, or the merge stops."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open

from test_llava_v1_format import LLAVA_IMAGE_INDEX, llava_ids, llava_prompt

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]  # LLaVA's linear names


@pytest.fixture(scope="module")
def original(tmp_path_factory, llama2_vocabulary):
    """(original LLaVA folder, CLIP folder, the original state dict)."""
    from transformers import (
        CLIPConfig, CLIPImageProcessorPil, CLIPModel, LlamaConfig, LlamaForCausalLM, LlamaTokenizer,
    )

    root = tmp_path_factory.mktemp("original")
    orig, clip = root / "llava-v1.5-tiny", root / "clip"
    pieces, merges = llama2_vocabulary
    tok = LlamaTokenizer(vocab={p: i for i, p in enumerate(pieces)}, merges=merges, legacy=False,
                         add_bos_token=True, add_eos_token=False)
    tok.pad_token = "<unk>"  # as LLaVA-1.5's tokenizer_config has it
    tok.save_pretrained(orig)
    text = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=4, vocab_size=32000, max_position_embeddings=2048, bos_token_id=1,
                       eos_token_id=2, pad_token_id=0)
    torch.manual_seed(0)
    state = LlamaForCausalLM._from_config(text).state_dict()
    for i, shape in ((0, (64, 48)), (2, (64, 64))):  # mm_hidden_size 48 -> hidden 64
        state[f"model.mm_projector.{i}.weight"] = torch.randn(shape) * 0.1
        state[f"model.mm_projector.{i}.bias"] = torch.randn(shape[0]) * 0.1
    keys = sorted(state)
    for k, part in enumerate((keys[: len(keys) // 2], keys[len(keys) // 2:]), 1):  # two .bin shards, as released
        torch.save({key: state[key] for key in part}, orig / f"pytorch_model-0000{k}-of-00002.bin")
    config = {**text.to_dict(), "architectures": ["LlavaLlamaForCausalLM"], "model_type": "llava",
              "mm_vision_tower": "openai/clip-vit-large-patch14-336", "mm_hidden_size": 48,
              "mm_projector_type": "mlp2x_gelu", "mm_vision_select_layer": -2, "mm_vision_select_feature": "patch",
              "mm_use_im_start_end": False, "mm_use_im_patch_token": False, "mm_patch_merge_type": "flat",
              "image_aspect_ratio": "pad", "use_mm_proj": True, "tune_mm_mlp_adapter": False,
              "freeze_mm_mlp_adapter": False, "tokenizer_model_max_length": 2048, "torch_dtype": "float32"}
    (orig / "config.json").write_text(json.dumps(config))
    vision = dict(hidden_size=48, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4, image_size=32,
                  patch_size=8)
    text_tower = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                      vocab_size=100, bos_token_id=0, eos_token_id=1, pad_token_id=1)
    CLIPModel._from_config(CLIPConfig(text_config=text_tower, vision_config=vision, projection_dim=16)).save_pretrained(clip)
    CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(clip)
    return orig, clip, state


@pytest.fixture(scope="module")
def converted(original, tmp_path_factory):
    from scripts.convert_llava_checkpoint import main as convert

    orig, clip, _ = original
    out = tmp_path_factory.mktemp("converted") / "llava-v1.5-tiny-hf"
    convert(["--model-path", str(orig), "--vision-tower", str(clip), "--save-path", str(out)])
    return out


def original_logits(orig, clip_dir, state, prompt, pixels, lora=None):
    """LLaVA-1.5's forward, as haotian-liu/LLaVA computes it (prepare_inputs_labels_for_multimodal): the prompt
    tokenized by tokenizer_image_token, the -200 position replaced by the projected features. `lora`: {module
    name: delta W} added to the Llama weights (what merging a LoRA must give)."""
    from transformers import AutoTokenizer, CLIPVisionModel, LlamaConfig, LlamaForCausalLM

    config = json.loads((Path(orig) / "config.json").read_text())
    known = set(LlamaConfig().to_dict()) - {"architectures", "model_type"}
    llama = LlamaForCausalLM(LlamaConfig(**{k: v for k, v in config.items() if k in known}))
    tok = AutoTokenizer.from_pretrained(orig)
    weights = {k: v.clone() for k, v in state.items() if "mm_projector" not in k}
    for name, delta in (lora or {}).items():
        weights[name + ".weight"] += delta
    llama.load_state_dict(weights)
    projector = {k: v for k, v in state.items() if "mm_projector" in k}
    clip = CLIPVisionModel.from_pretrained(clip_dir).eval()
    with torch.no_grad():
        hidden = clip(pixels, output_hidden_states=True).hidden_states[config["mm_vision_select_layer"]][:, 1:]
        x = F.linear(hidden, projector["model.mm_projector.0.weight"], projector["model.mm_projector.0.bias"])
        features = F.linear(F.gelu(x), projector["model.mm_projector.2.weight"], projector["model.mm_projector.2.bias"])
        ids = llava_ids(prompt, tok)
        at = ids.index(LLAVA_IMAGE_INDEX)
        embed = llama.get_input_embeddings()
        embeds = torch.cat([embed(torch.tensor([ids[:at]])), features, embed(torch.tensor([ids[at + 1:]]))], dim=1)
        return llama.eval()(inputs_embeds=embeds).logits


def converted_logits(model, processor, prompt, pixels):
    from llava_thanora.data.conversation import PromptFormat

    ids = PromptFormat.from_processor(processor, "llava_v1").encode_prompt(prompt)
    with torch.no_grad():
        return model.eval()(input_ids=torch.tensor([ids]), pixel_values=pixels).logits


PROMPT = llava_prompt([{"from": "human", "value": "<image>\nWhat is on the table?"}], generation=True)


def test_converted_checkpoint_computes_the_original_model(original, converted):
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    orig, clip, state = original
    pixels = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    model, processor = LlavaForConditionalGeneration.from_pretrained(converted), AutoProcessor.from_pretrained(converted)
    got = converted_logits(model, processor, PROMPT, pixels)
    want = original_logits(orig, clip, state, PROMPT, pixels)
    assert got.shape[:2] == want.shape[:2] and got.shape[-1] == 32064  # 32000 + <image> + <pad>, to a multiple of 64
    assert torch.allclose(got[..., :32000], want, atol=1e-5), (got[..., :32000] - want).abs().max()
    # llava-hf's tokens and files, in the layout transformers 4.x reads too
    tok = processor.tokenizer
    assert tok.convert_tokens_to_ids(["<image>", "<pad>"]) == [32000, 32001] and tok.pad_token == "<pad>"
    assert json.loads((converted / "prompt_format.json").read_text())["conv_mode"] == "llava_v1"
    assert_portable_layout(converted)


def test_train_py_and_eval_load_the_converted_checkpoint(converted, color_data, tmp_path):
    from llava_thanora.cli import main
    from llava_thanora.methods.loading import load_trained

    _, _, kind = load_trained(str(converted))  # what eval.generate / eval.run call
    assert kind == "full"
    data_path, image_folder = color_data
    trainer = main(["--model_name_or_path", str(converted), "--data_path", data_path, "--image_folder", image_folder,
                    "--output_dir", str(tmp_path / "out"), "--version", "v1", "--max_steps", "1",
                    "--per_device_train_batch_size", "2", "--lora_r", "4", "--report_to", "none",
                    "--save_strategy", "no", "--dataloader_num_workers", "0", "--mm_projector_type", "mlp2x_gelu",
                    "--mm_vision_select_layer", "-2"])
    assert trainer.state.global_step == 1


def assert_portable_layout(directory: Path) -> None:
    """The llava-hf hub layout and tokenizer files that transformers 4.57 reads (checked there by
    scripts/check_transformers4.py): every weight under language_model.* / vision_tower.vision_model.* /
    multi_modal_projector.*, no v5-only tokenizer list, a flat preprocessor_config.json."""
    keys = []
    for file in directory.glob("*.safetensors"):
        with safe_open(str(file), "pt") as f:
            keys += list(f.keys())
    prefixes = ("language_model.model.", "language_model.lm_head.", "vision_tower.vision_model.", "multi_modal_projector.")
    assert keys and all(k.startswith(prefixes) for k in keys), [k for k in keys if not k.startswith(prefixes)][:3]
    assert any(k.startswith("vision_tower.vision_model.embeddings.") for k in keys)
    tokenizer_config = json.loads((directory / "tokenizer_config.json").read_text())
    assert "extra_special_tokens" not in tokenizer_config and tokenizer_config["added_tokens_decoder"]
    assert tokenizer_config["tokenizer_class"] != "TokenizersBackend"  # a v5-only class name
    image = json.loads((directory / "preprocessor_config.json").read_text())
    assert image["image_processor_type"] == "CLIPImageProcessor"
    assert "image_processor" not in json.loads((directory / "processor_config.json").read_text())


def test_loading_an_original_folder_names_the_converter(original, tiny_model, tmp_path):
    from llava_thanora.cli import main
    from llava_thanora.methods.loading import load_trained
    from llava_thanora.model.original import OriginalLayoutError

    orig, _, _ = original
    with pytest.raises(OriginalLayoutError, match="scripts/convert_llava_checkpoint.py --model-path"):
        load_trained(str(orig))
    with pytest.raises(OriginalLayoutError, match="LlavaLlamaForCausalLM"):
        main(["--model_name_or_path", str(orig), "--data_path", "x.json", "--output_dir", str(tmp_path)])


def llava_lora_folder(directory: Path, state: dict, layers: list[int] | None = None, targets=TARGETS) -> dict:
    """A LoRA output as haotian-liu/LLaVA writes it (peft on LlavaLlamaForCausalLM: keys
    base_model.model.model.layers.N..., adapter_model.bin; the projector in non_lora_trainables.bin, its config.json);
    returns {module: delta W} and the new projector, the function a merge must produce."""
    from peft import LoraConfig

    directory.mkdir(parents=True)
    r, alpha = 4, 8
    LoraConfig(r=r, lora_alpha=alpha, target_modules=list(targets), lora_dropout=0.05, bias="none",
               task_type="CAUSAL_LM", base_model_name_or_path="lmsys/vicuna-7b-v1.5").save_pretrained(directory)
    gen = torch.Generator().manual_seed(2)
    adapter, deltas = {}, {}
    for name in sorted(k.removesuffix(".weight") for k in state if k.endswith("_proj.weight")):
        if layers is not None and int(name.split(".")[2]) not in layers:
            continue
        d_out, d_in = state[name + ".weight"].shape
        a, b = torch.randn(r, d_in, generator=gen) * 0.1, torch.randn(d_out, r, generator=gen) * 0.1
        adapter[f"base_model.model.{name}.lora_A.weight"] = a
        adapter[f"base_model.model.{name}.lora_B.weight"] = b
        deltas[name] = (alpha / r) * b @ a
    torch.save(adapter, directory / "adapter_model.bin")
    projector = {f"base_model.model.model.mm_projector.{i}.{w}": state[f"model.mm_projector.{i}.{w}"] + 0.05
                 for i in (0, 2) for w in ("weight", "bias")}
    torch.save(projector, directory / "non_lora_trainables.bin")
    (directory / "config.json").write_text(json.dumps({"architectures": ["LlavaLlamaForCausalLM"], "model_type": "llava"}))
    return {"deltas": deltas, "projector": {k.removeprefix("base_model.model."): v for k, v in projector.items()}}


def merge(model_path, base, out):
    from scripts.merge_lora_weights import main as merge_main

    merge_main(["--model-path", str(model_path), "--model-base", str(base), "--save-model-path", str(out)])


def test_llava_lora_folder_merges_onto_the_converted_base(original, converted, tmp_path, capsys):
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    orig, clip, state = original
    expected = llava_lora_folder(tmp_path / "llava-lora", state)
    merge(tmp_path / "llava-lora", converted, tmp_path / "merged")
    assert "14 layers changed, 4 other trained tensors" in capsys.readouterr().out  # 7 linear layers x 2 layers
    merged = tmp_path / "merged"
    pixels = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    got = converted_logits(LlavaForConditionalGeneration.from_pretrained(merged), AutoProcessor.from_pretrained(merged),
                           PROMPT, pixels)
    want = original_logits(orig, clip, {**state, **expected["projector"]}, PROMPT, pixels, lora=expected["deltas"])
    assert torch.allclose(got[..., :32000], want, atol=1e-4), (got[..., :32000] - want).abs().max()
    assert json.loads((merged / "prompt_format.json").read_text())["conv_mode"] == "llava_v1"  # from the base
    assert_portable_layout(merged)


@pytest.mark.parametrize("case, message", [
    ("missing", "the adapter file has no values for 14 of the 28 adapter tensors"),
    ("foreign", "names target modules that match no module of the base: ['query_key_value']"),
    ("zero", "the adapter changes nothing"),
])
def test_a_merge_that_would_be_wrong_stops(original, converted, tmp_path, case, message):
    _, _, state = original
    folder = tmp_path / "lora"
    if case == "missing":  # the config names every layer, the file holds decoder layer 0 only
        llava_lora_folder(folder, state, layers=[0])
    elif case == "foreign":
        llava_lora_folder(folder, state, targets=[*TARGETS, "query_key_value"])
    else:
        llava_lora_folder(folder, state)
        weights = torch.load(folder / "adapter_model.bin", weights_only=True)
        torch.save({k: v * 0 if "lora_B" in k else v for k, v in weights.items()}, folder / "adapter_model.bin")
        (folder / "non_lora_trainables.bin").unlink()
    with pytest.raises((SystemExit, ValueError)) as err:
        merge(folder, converted, tmp_path / "out")
    assert message in str(err.value)
    assert not (tmp_path / "out").exists()
