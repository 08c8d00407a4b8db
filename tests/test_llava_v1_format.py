"""`--conv_mode llava_v1` against LLaVA's own definitions (haotian-liu/LLaVA: `conversation.py` conv_vicuna_v1 with
SeparatorStyle.TWO, `mm_utils.tokenizer_image_token`, `train.preprocess_multimodal` and `train.preprocess_v1`),
re-implemented independently below from reading that code, and run with the same tokenizer: the tiny model's and
the real Llama-2 (= vicuna-7b-v1.5) tokenizer in both `legacy` settings."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from conftest import llama2_tokenizer
from llava_thanora.data.conversation import IGNORE_INDEX, PromptFormat
from llava_thanora.data.llava_v1 import VicunaV1Format

SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the user's questions.")
LLAVA_IMAGE_INDEX = -200  # LLaVA's IMAGE_TOKEN_INDEX

CONVERSATIONS = {
    "issue example": [
        {"from": "human", "value": "<image>\nWhat is on the table?"}, {"from": "gpt", "value": "A cup."},
        {"from": "human", "value": "What colour is it?"}, {"from": "gpt", "value": "Red."}],
    "tag after the text": [{"from": "human", "value": "Read the sign. <image>"}, {"from": "gpt", "value": "STOP"}],
    "digits and spaces": [{"from": "human", "value": "<image>\nHow many?  "}, {"from": "gpt", "value": "123"},
                          {"from": "human", "value": " And now?"}, {"from": "gpt", "value": " 7 apples "}],
    "text only": [{"from": "human", "value": "Say hi."}, {"from": "gpt", "value": "Hi there!"}],
}


# ------------------------------------------------------------------ LLaVA, re-implemented from its definitions
def llava_prompt(conversation: list[dict], generation: bool = False) -> str:
    """preprocess_multimodal (tag to the front + "\\n", stripped) then conv_vicuna_v1.get_prompt()."""
    text = SYSTEM + " "
    messages = []
    for turn in conversation:
        value = turn["value"]
        if "<image>" in value:
            value = ("<image>\n" + value.replace("<image>", "").strip()).strip()
        messages.append(("USER" if turn["from"] == "human" else "ASSISTANT", value))
    if generation:
        messages.append(("ASSISTANT", None))
    for i, (role, message) in enumerate(messages):
        text += f"{role}: {message}" + (" " if i % 2 == 0 else "</s>") if message else f"{role}:"
    return text


def llava_ids(prompt: str, tok) -> list[int]:
    """tokenizer_image_token: pieces between tags tokenized alone, later pieces lose their first token (BOS)."""
    pieces = [tok(p).input_ids for p in prompt.split("<image>")]
    skip = 1 if pieces[0] and pieces[0][0] == tok.bos_token_id else 0
    ids = pieces[0][:skip]
    for k, piece in enumerate(pieces):
        ids += ([LLAVA_IMAGE_INDEX] if k else []) + piece[skip:]
    return ids


def is_legacy(tok) -> bool:
    """`tokenizer.legacy` as LLaVA reads it; for a tokenizer saved without the attribute, its behaviour: does text
    right after a special token get a leading "▁"?"""
    if hasattr(tok, "legacy"):
        return tok.legacy
    return tok.convert_ids_to_tokens(tok("</s>a", add_special_tokens=False).input_ids)[1].startswith("\u2581")


def llava_labels(prompt: str, tok) -> list[int] | None:
    """preprocess_v1's masking; None where LLaVA would print "tokenization mismatch" and mask everything."""
    ids = llava_ids(prompt, tok)
    labels = list(ids)
    has_image = "<image>" in prompt
    length = (lambda s: len(llava_ids(s, tok))) if has_image else (lambda s: len(tok(s).input_ids))
    cur = 1
    labels[:1] = [IGNORE_INDEX]
    for i, round_text in enumerate(prompt.split("</s>")):
        if not round_text:
            break
        parts = round_text.split(" ASSISTANT: ")
        if len(parts) != 2:
            break
        round_len, instruction_len = length(round_text), length(parts[0] + " ASSISTANT: ") - 2
        if i and not is_legacy(tok):  # LLaVA: `not tokenizer.legacy and IS_TOKENIZER_GREATER_THAN_0_14`
            round_len, instruction_len = round_len - 1, instruction_len - 1
        labels[cur: cur + instruction_len] = [IGNORE_INDEX] * len(labels[cur: cur + instruction_len])
        cur += round_len
    labels[cur:] = [IGNORE_INDEX] * len(labels[cur:])
    return labels if cur == len(ids) else None


def expand(ids: list[int], values: list[int], n: int) -> list[int]:
    """`values` (LLaVA's ids or labels) as the model receives them: each image position (a -200 in LLaVA's ids)
    becomes n positions holding the value there (its label is masked; ids get the image token)."""
    out = []
    for i, v in zip(ids, values):
        out += [v] * (n if i == LLAVA_IMAGE_INDEX else 1)
    return out


# ------------------------------------------------------------------------------------------------------ tests
def check_against_llava(fmt: VicunaV1Format, tok, name: str, conversation: list[dict]) -> bool:
    """Our string, ids and labels against LLaVA's; returns whether LLaVA's own masking matched (no mismatch)."""
    text, _ = fmt.render(conversation)
    assert text == llava_prompt(conversation), name
    tokenized = fmt.tokenize(conversation)
    n = fmt.image_seq_length
    ids = llava_ids(text, tok)
    image = [fmt.image_token_id if i == LLAVA_IMAGE_INDEX else i for i in ids]
    assert tokenized.input_ids == expand(ids, image, n), name
    # what we supervise is each answer (as LLaVA's string has it) followed by its </s>
    supervised = tok.decode([t for t in tokenized.labels if t != IGNORE_INDEX])
    assert supervised.replace(" ", "") == "".join(t["value"] + "</s>" for t in conversation if t["from"] == "gpt"
                                                  ).replace(" ", ""), name
    reference = llava_labels(text, tok)
    if reference is not None:
        assert tokenized.labels == expand(ids, reference, n), name
    # a generation prompt is the training text up to the first answer, token for token
    question = [conversation[0]]
    prompt = fmt.generation_prompt(question[0]["value"].replace("<image>", ""), question[0]["value"].count("<image>"))
    assert prompt == llava_prompt(question, generation=True)
    prompt_ids = fmt.encode_prompt(prompt)
    assert tokenized.input_ids[: len(prompt_ids)] == prompt_ids and tokenized.labels[len(prompt_ids) - 1] == IGNORE_INDEX
    return reference is not None


@pytest.mark.parametrize("legacy", [True, False])
def test_real_llama2_tokenizer_matches_llava(llama2_vocabulary, legacy):
    tok = llama2_tokenizer(llama2_vocabulary, legacy)
    fmt = VicunaV1Format(SimpleNamespace(tokenizer=tok), image_seq_length=576)
    # LLaVA's own masking (with its legacy=False correction) reports no mismatch here, and equals ours
    assert all(check_against_llava(fmt, tok, name, conv) for name, conv in CONVERSATIONS.items())
    text, _ = fmt.render(CONVERSATIONS["issue example"])
    assert text == (f"{SYSTEM} USER: <image>\nWhat is on the table? ASSISTANT: A cup.</s>USER: What colour is it? "
                    "ASSISTANT: Red.</s>")
    # 643 tokens as llava-1.5 sees them (legacy=False, llava-hf's setting); legacy=True adds a "▁" before "USER"
    assert len(fmt.tokenize(CONVERSATIONS["issue example"]).input_ids) == (644 if legacy else 643)


def test_tiny_tokenizer_matches_llava(processor):
    fmt = PromptFormat.from_processor(processor, "llava_v1")
    assert fmt.conv_mode == "llava_v1" and fmt.record() == {"conv_mode": "llava_v1"}
    for name, conversation in CONVERSATIONS.items():
        check_against_llava(fmt, processor.tokenizer, name, conversation)


def test_system_turn_wins_and_bad_inputs_are_named(processor):
    fmt = PromptFormat.from_processor(processor, "llava_v1")
    conversation = [{"from": "system", "value": "Be brief."}, *CONVERSATIONS["text only"]]
    assert fmt.render(conversation)[0] == "Be brief. USER: Say hi. ASSISTANT: Hi there!</s>"
    with pytest.raises(ValueError, match="at most one"):
        fmt.tokenize([{"from": "system", "value": "a"}, *conversation])
    with pytest.raises(ValueError, match="did not tokenize as the EOS"):
        fmt.tokenize([{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A</s>B"}])
    with pytest.raises(ValueError, match="unknown conversation format"):
        PromptFormat.from_processor(processor, "vicuna_v0")


def test_training_records_the_format_and_evaluation_follows_it(tiny_model, color_data, tmp_path):
    from eval.generate import load_generator
    from llava_thanora.cli import main

    data_path, images = color_data
    main(["--model_name_or_path", tiny_model, "--data_path", data_path, "--image_folder", images,
          "--output_dir", str(tmp_path), "--max_steps", "1", "--lora_r", "4", "--lora_alpha", "8",
          "--per_device_train_batch_size", "2", "--report_to", "none", "--disable_tqdm", "true",
          "--conv_mode", "llava_v1"])
    assert json.loads((tmp_path / "prompt_format.json").read_text()) == {"conv_mode": "llava_v1"}
    generator = load_generator(str(tmp_path), tiny_model, max_new_tokens=2, image_folder=images)
    row = generator.answer([{"question_id": "q", "image": "color_0.png", "text": "What color is the image?"}])[0]
    assert row["prompt"] == f"{SYSTEM} USER: <image>\nWhat color is the image? ASSISTANT:"
    assert load_generator(tiny_model).format.conv_mode == "template"  # nothing recorded: the chat template
