"""`--conv_mode llava_v1`: LLaVA-1.5's `vicuna_v1` conversation, exactly as LLaVA trains and evaluates with it.

The string is what LLaVA's `conv.get_prompt()` renders after `preprocess_multimodal` (checked character for
character in the tests)::

    A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed,
    and polite answers to the user's questions. USER: <image>\\nWhat is on the table? ASSISTANT: A cup.</s>USER: What
    colour is it? ASSISTANT: Red.</s>

- the system text, then `" "`; each human turn as `"USER: " + text + " "`, each answer as `"ASSISTANT: " + text +
  "</s>"`; a generation prompt ends with `"ASSISTANT:"`;
- a turn with `<image>` has its tag(s) moved to the front, followed by `\\n`, and is stripped (other turns are
  used as they are, as LLaVA does);
- a system turn in the data replaces the system text.

Token ids are those of LLaVA's `tokenizer_image_token`: the string is cut at each `<image>`, every piece is
tokenized on its own with BOS, the BOS of every later piece is dropped, and each tag becomes the model's image
tokens (`image_seq_length` copies of the `<image>` id, where LLaVA's model expands its -200 index into the same
number of features). Turn boundaries are therefore tokenized as LLaVA's tokenizer sees them (the `legacy` setting
decides whether "USER" after "</s>" gets a leading "▁").

Labels are those of LLaVA's `preprocess_v1`: each answer's tokens and its `</s>`, found from the tokenizer's
character offsets (a token is supervised when it overlaps `" " + answer + "</s>"`, the span LLaVA's separator
arithmetic ends up labelling), so they never depend on LLaVA's length heuristics and never "mismatch".
"""

from __future__ import annotations

from .conversation import (
    IGNORE_INDEX, IMAGE_TAG, ConversationError, PromptFormat, TokenizedConversation, to_messages,
)

SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the user's questions.")
USER, ASSISTANT = "USER", "ASSISTANT"
SEP, SEP2 = " ", "</s>"


def turn_text(value: str, human: bool) -> str:
    """A turn's text as LLaVA's `preprocess_multimodal` leaves it: image tags to the front, each followed by a
    newline, then stripped; turns without a tag unchanged."""
    count = value.count(IMAGE_TAG) if human else 0
    if not count:
        return value
    return (f"{IMAGE_TAG}\n" * count + value.replace(IMAGE_TAG, "").strip()).strip()


class VicunaV1Format(PromptFormat):
    """LLaVA-1.5's `vicuna_v1` format (see the module docstring)."""

    conv_mode = "llava_v1"

    def __init__(self, processor, image_seq_length: int):
        super().__init__(processor, image_seq_length)
        self.image_token = IMAGE_TAG  # LLaVA-1.5's own placeholder, whatever the processor calls its token
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(IMAGE_TAG)
        if self.tokenizer.eos_token != SEP2:
            raise ValueError(f"--conv_mode llava_v1 is Vicuna's format, which ends every answer with {SEP2}, but this "
                             f"tokenizer's EOS is {self.tokenizer.eos_token!r}; use --conv_mode template")
        if not getattr(self.tokenizer, "is_fast", True):
            raise ValueError("--conv_mode llava_v1 needs a tokenizer with character offsets (a fast tokenizer)")

    def render(self, conversations: list[dict], add_generation_prompt: bool = False,
               system: str | None = None) -> tuple[str, list[tuple[int, int]]]:
        """(the prompt string, the character span of `" " + answer + "</s>"` of every answer)."""
        # the shared checks: roles, alternation, tags only in human turns
        to_messages(conversations, require_answer=not add_generation_prompt)
        systems = [t["value"] for t in conversations if t["from"] == "system"]
        if len(systems) > 1:
            raise ConversationError(f"{len(systems)} system turns; a conversation has at most one")
        text = (systems[0] if systems else system or SYSTEM) + SEP
        spans = []
        for turn in conversations:
            if turn["from"] == "human":
                text += f"{USER}: {turn_text(turn['value'], True)}{SEP}"
            elif turn["from"] == "gpt":
                start = len(text) + len(ASSISTANT) + 1  # the space after "ASSISTANT:"
                text += f"{ASSISTANT}: {turn['value']}{SEP2}"
                spans.append((start, len(text)))
        if add_generation_prompt:
            text += f"{ASSISTANT}:"
        return text, spans

    def _encode(self, text: str, counts: list[int] | None = None) -> tuple[list[int], list[tuple[int, int]]]:
        """LLaVA's `tokenizer_image_token` (image tags expanded), with each token's character span in `text`."""
        ids, offsets, position, drop = [], [], 0, 0
        chunks = text.split(IMAGE_TAG)
        counts = [self.image_seq_length] * (len(chunks) - 1) if counts is None else list(counts)
        if len(counts) != len(chunks) - 1:
            raise ConversationError(f"{len(chunks) - 1} image tag(s) but {len(counts)} image token counts")
        for k, chunk in enumerate(chunks):
            encoded = self.tokenizer(chunk, add_special_tokens=True, return_offsets_mapping=True)
            chunk_ids, chunk_offsets = list(encoded["input_ids"]), list(encoded["offset_mapping"])
            if k == 0:
                drop = 1 if chunk_ids and chunk_ids[0] == self.tokenizer.bos_token_id else 0
            else:  # LLaVA drops as many leading tokens (the BOS) from every later piece as the first one had
                chunk_ids, chunk_offsets = chunk_ids[drop:], chunk_offsets[drop:]
                ids += [self.image_token_id] * counts[k - 1]
                offsets += [(position - len(IMAGE_TAG), position)] * counts[k - 1]
            ids += chunk_ids
            offsets += [(position + a, position + b) for a, b in chunk_offsets]
            position += len(chunk) + len(IMAGE_TAG)
        return ids, offsets

    def tokenize(self, conversations: list[dict], image_counts: list[int] | None = None) -> TokenizedConversation:
        text, spans = self.render(conversations)
        ids, offsets = self._encode(text, image_counts)
        labels = [t if any(a < end and b > start for start, end in spans) else IGNORE_INDEX
                  for t, (a, b) in zip(ids, offsets)]
        answers = sum(1 for t in conversations if t["from"] == "gpt")
        if sum(1 for t in labels if t == self.tokenizer.eos_token_id) != answers:
            raise ConversationError("an answer's </s> did not tokenize as the EOS token (does the text contain "
                                    "'</s>'?); nothing is trained on a sample whose answers cannot be delimited")
        return TokenizedConversation(ids, labels, text.count(IMAGE_TAG))

    def generation_prompt(self, text: str, num_images: int = 0, system: str | None = None) -> str:
        question = [{"from": "human", "value": IMAGE_TAG * num_images + text}]
        return self.render(question, add_generation_prompt=True, system=system)[0]

    def encode_prompt(self, prompt: str, image_counts: list[int] | None = None) -> list[int]:
        return self._encode(prompt, image_counts)[0]
