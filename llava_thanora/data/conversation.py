"""Prompts from the checkpoint's chat template, and label masks from tokenizing turns.

LLaVA builds one long string, tokenizes it, then walks separators to guess where answers start; when the guess is
off it prints "tokenization mismatch" and trains the sample with every label masked. Here the sequence is *built*
from separately tokenized pieces, so the mask is exact by construction:

    [prompt_1][answer_1 </s>][prompt_2][answer_2 </s>] ...

`prompt_k` is the text the chat template puts between the previous answer and the k-th answer (for llava-1.5:
"USER: <image>\\n... ASSISTANT:"), obtained by rendering the conversation prefix with the template and taking the
difference. Answers are tokenized on their own and end with EOS, so the model learns to stop. A generation prompt
for evaluation is exactly `prompt_1`, the same tokens training saw.
"""

from __future__ import annotations

from dataclasses import dataclass

IGNORE_INDEX = -100
IMAGE_TAG = "<image>"
ROLES = {"human": "user", "gpt": "assistant", "system": "system"}


def with_suffix(text: str, suffix: str) -> str:
    """The prompt rule of training data and evaluation alike: the question text, then a newline and the task's
    instruction suffix when it has one ("...\nAnswer the question using a single word or phrase.")."""
    return f"{text}\n{suffix}" if suffix else text


def without_suffix(text: str, suffix: str) -> str:
    """Inverse of `with_suffix`; ValueError when `text` does not end with the suffix."""
    if not suffix:
        return text
    if not text.endswith("\n" + suffix):
        raise ValueError(f"the text does not end with the suffix {suffix!r}")
    return text[: -len(suffix) - 1]


class ConversationError(ValueError):
    """A conversation that cannot be turned into a training sequence (the caller adds file/line/id)."""


def to_messages(conversations: list[dict]) -> list[dict]:
    """LLaVA turns (`from`/`value`) to chat-template messages; `<image>` tags become leading image parts.

    Like LLaVA, the image goes to the start of its turn: "<image>\\nQ" and "Q <image>" both render as the template's
    image slot followed by the text.
    """
    messages = []
    for i, turn in enumerate(conversations):
        if not isinstance(turn, dict) or "from" not in turn or "value" not in turn:
            raise ConversationError(f"turn {i} must be an object with 'from' and 'value', got {turn!r:.80}")
        role = ROLES.get(turn["from"])
        if role is None:
            raise ConversationError(f"turn {i} has unknown role {turn['from']!r} (expected one of {sorted(ROLES)})")
        value = turn["value"]
        if not isinstance(value, str):
            raise ConversationError(f"turn {i} 'value' must be a string, got {type(value).__name__}")
        n_images = value.count(IMAGE_TAG)
        if n_images and role != "user":
            raise ConversationError(f"turn {i} ({turn['from']}) has an {IMAGE_TAG} tag; only human turns may")
        text = value.replace(IMAGE_TAG, "").strip()
        messages.append({"role": role, "content": [{"type": "image"}] * n_images + [{"type": "text", "text": text}]})
    body = [m for m in messages if m["role"] != "system"]
    if not body or body[-1]["role"] != "assistant":
        raise ConversationError("a conversation must end with a gpt turn (nothing would be trained)")
    for k, m in enumerate(body):
        expected = "user" if k % 2 == 0 else "assistant"
        if m["role"] != expected:
            raise ConversationError(f"turns must alternate human/gpt starting with human; turn {k} is {m['role']}")
    return messages


@dataclass
class TokenizedConversation:
    input_ids: list[int]
    labels: list[int]
    num_images: int


class PromptFormat:
    """Turns conversations into token ids and labels with the processor's chat template and tokenizer.

    `image_seq_length` is how many `<image>` tokens the processor expands one tag into (576 for llava-1.5); the
    model replaces exactly that many embeddings with image features.
    """

    def __init__(self, processor, image_seq_length: int):
        self.tokenizer = processor.tokenizer
        self.template = processor.chat_template
        if not self.template:
            raise ValueError("the processor has no chat_template; llava-hf checkpoints ship one (chat_template.jinja)")
        self.processor = processor
        self.image_seq_length = image_seq_length
        if self.tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no EOS token: answers could not end")

    @classmethod
    def from_processor(cls, processor) -> "PromptFormat":
        """Measure the image expansion by asking the processor itself, so it always agrees with the model."""
        from PIL import Image

        size = _processor_input_size(processor.image_processor)
        probe = processor(text=IMAGE_TAG, images=Image.new("RGB", (size, size)), add_special_tokens=False)
        image_id = processor.tokenizer.convert_tokens_to_ids(IMAGE_TAG)
        return cls(processor, sum(1 for t in probe["input_ids"][0] if t == image_id))

    def render(self, messages: list[dict], add_generation_prompt: bool) -> str:
        return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)

    def prompt_segments(self, messages: list[dict]) -> tuple[list[str], list[str]]:
        """Return (prompts, answers): the template text before each answer, and each answer's text."""
        prompts, answers, done = [], [], ""
        for k, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            upto = self.render(messages[:k], add_generation_prompt=True)
            if not upto.startswith(done):
                raise ConversationError("the chat template is not incremental: a prefix of the conversation renders "
                                        "differently on its own, so turns cannot be tokenized separately")
            prompts.append(upto[len(done):].lstrip() if done else upto)
            answers.append(m["content"][-1]["text"])
            done = self.render(messages[: k + 1], add_generation_prompt=False)
        return prompts, answers

    def _encode(self, text: str, first: bool) -> list[int]:
        text = text.replace(IMAGE_TAG, IMAGE_TAG * self.image_seq_length)
        return self.tokenizer(text, add_special_tokens=first)["input_ids"]

    def tokenize(self, conversations: list[dict]) -> TokenizedConversation:
        """Token ids and labels (IGNORE_INDEX outside answers) for one LLaVA conversation."""
        messages = to_messages(conversations)
        prompts, answers = self.prompt_segments(messages)
        input_ids, labels = [], []
        for k, (prompt, answer) in enumerate(zip(prompts, answers)):
            p = self._encode(prompt, first=k == 0)
            a = self._encode(answer, first=False) + [self.tokenizer.eos_token_id]
            input_ids += p + a
            labels += [IGNORE_INDEX] * len(p) + a
        num_images = sum(1 for m in messages for c in m["content"] if c["type"] == "image")
        return TokenizedConversation(input_ids, labels, num_images)

    def generation_prompt(self, text: str, num_images: int = 0, system: str | None = None) -> str:
        """The first prompt segment for a single question: identical to what training saw before its answer."""
        messages = [{"role": "system", "content": [{"type": "text", "text": system}]}] if system else []
        messages.append({"role": "user", "content": [{"type": "image"}] * num_images + [{"type": "text", "text": text}]})
        return self.render(messages, add_generation_prompt=True)

    def encode_prompt(self, prompt: str) -> list[int]:
        """Tokenize a generation prompt exactly as the first training segment (BOS, expanded image tokens)."""
        return self._encode(prompt, first=True)


def _processor_input_size(image_processor) -> int:
    crop = getattr(image_processor, "crop_size", None) or {}
    size = getattr(image_processor, "size", None) or {}
    return int(crop.get("height") or size.get("shortest_edge") or size.get("height") or 336)
