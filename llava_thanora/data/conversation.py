"""Prompt formats: how a LLaVA conversation becomes token ids, labels and generation prompts.

Two formats (`--conv_mode`, recorded in every training output's `prompt_format.json` and read back by `eval.*`):

template
    The checkpoint's own chat template (llava-hf's: "USER: <image>\\n... ASSISTANT:", no system text). LLaVA builds
    one long string, tokenizes it, then walks separators to guess where answers start; when the guess is off it
    prints "tokenization mismatch" and trains the sample with every label masked. Here the sequence is *built*
    from separately tokenized pieces, so the mask is exact by construction::

        [prompt_1][answer_1 </s>][prompt_2][answer_2 </s>] ...

    `prompt_k` is the text the chat template puts between the previous answer and the k-th answer, obtained by
    rendering the conversation prefix with the template and taking the difference. Answers are tokenized on their
    own and end with EOS. A generation prompt is exactly `prompt_1`, the same tokens training saw.
llava_v1
    LLaVA-1.5's `vicuna_v1` conversation, the format llava-v1.5 was instruction-tuned and evaluated with
    (`llava_v1.py`): the same string as LLaVA's `conv.get_prompt()` and the same token ids as its
    `tokenizer_image_token`, labels equal to its `preprocess_v1` masks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

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


def to_messages(conversations: list[dict], require_answer: bool = True) -> list[dict]:
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
    if require_answer and (not body or body[-1]["role"] != "assistant"):
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


CONV_MODES = ("template", "llava_v1")
PROMPT_FORMAT_FILE = "prompt_format.json"


class PromptFormat:
    """Turns conversations into token ids and labels, and questions into generation prompts (base class).

    The data marks images with `<image>` tags; the processor's own placeholder (`image_token`: "<image>" for the
    LLaVA families, "<|image_pad|>" for Qwen2-VL, None for a text-only model) stands for them in the rendered text
    and is expanded to as many copies as that image has features. `image_counts` gives the count of each image of
    a conversation in order (size-dependent for LLaVA-NeXT and Qwen2-VL, from the family's image processing);
    without it every image counts `image_seq_length` (576 for llava-1.5).
    """

    conv_mode = "base"

    def __init__(self, processor, image_seq_length: int):
        self.tokenizer = processor.tokenizer
        self.processor = processor
        self.image_seq_length = image_seq_length
        has_images = getattr(processor, "image_processor", None) is not None
        self.image_token = getattr(processor, "image_token", None) if has_images else None
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(self.image_token) if self.image_token else None
        if self.tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no EOS token: answers could not end")

    @classmethod
    def from_processor(cls, processor, conv_mode: str = "template",
                       image_seq_length: int | None = None) -> "PromptFormat":
        """The format called `conv_mode`. Unless `image_seq_length` is given, the image expansion is measured by
        asking the processor itself (a square image at its input size), so it always agrees with the model."""
        if conv_mode not in CONV_MODES:
            raise ValueError(f"unknown conversation format --conv_mode {conv_mode!r}; choose one of {CONV_MODES}")
        if image_seq_length is None:
            image_seq_length = _probe_image_tokens(processor)
        if conv_mode == "llava_v1":
            from .llava_v1 import VicunaV1Format

            return VicunaV1Format(processor, image_seq_length)
        return TemplateFormat(processor, image_seq_length)

    def expand_images(self, text: str, counts: list[int] | None) -> str:
        """`text` with the k-th image placeholder repeated counts[k] times (image_seq_length each by default)."""
        if not self.image_token or self.image_token not in text:
            return text
        pieces = text.split(self.image_token)
        counts = [self.image_seq_length] * (len(pieces) - 1) if counts is None else counts
        if len(counts) != len(pieces) - 1:
            raise ConversationError(f"{len(pieces) - 1} image placeholder(s) but {len(counts)} image(s)")
        return pieces[0] + "".join(self.image_token * n + piece for n, piece in zip(counts, pieces[1:]))

    def tokenize(self, conversations: list[dict], image_counts: list[int] | None = None) -> TokenizedConversation:
        """Token ids and labels (IGNORE_INDEX outside answers) for one LLaVA conversation."""
        raise NotImplementedError

    def generation_prompt(self, text: str, num_images: int = 0, system: str | None = None) -> str:
        """The text before the first answer of a one-question conversation (what training saw before it)."""
        raise NotImplementedError

    def encode_prompt(self, prompt: str, image_counts: list[int] | None = None) -> list[int]:
        """Token ids of a generation prompt, exactly as the first training segment (BOS, expanded image tokens)."""
        raise NotImplementedError

    def record(self) -> dict:
        """What `prompt_format.json` stores, so evaluation asks the way training taught."""
        return {"conv_mode": self.conv_mode}


class TemplateFormat(PromptFormat):
    """The checkpoint's chat template, turns tokenized separately (see the module docstring)."""

    conv_mode = "template"

    def __init__(self, processor, image_seq_length: int):
        super().__init__(processor, image_seq_length)
        if not processor.chat_template:
            raise ValueError("the processor has no chat_template; llava-hf checkpoints ship one (chat_template.jinja)")

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

    def _encode(self, text: str, first: bool, counts: list[int] | None = None) -> list[int]:
        return self.tokenizer(self.expand_images(text, counts), add_special_tokens=first)["input_ids"]

    def tokenize(self, conversations: list[dict], image_counts: list[int] | None = None) -> TokenizedConversation:
        messages = to_messages(conversations)
        num_images = sum(1 for m in messages for c in m["content"] if c["type"] == "image")
        if num_images and not self.image_token:
            raise ConversationError(f"{num_images} image(s), but this model has no vision tower (text only)")
        prompts, answers = self.prompt_segments(messages)
        counts = [self.image_seq_length] * num_images if image_counts is None else list(image_counts)
        if len(counts) != num_images:
            raise ConversationError(f"{num_images} image(s) in the conversation but {len(counts)} image token counts")
        input_ids, labels = [], []
        for k, (prompt, answer) in enumerate(zip(prompts, answers)):
            slots = prompt.count(self.image_token) if self.image_token else 0
            p = self._encode(prompt, first=k == 0, counts=counts[:slots])
            counts = counts[slots:]
            a = self._encode(answer, first=False) + [self.tokenizer.eos_token_id]
            input_ids += p + a
            labels += [IGNORE_INDEX] * len(p) + a
        return TokenizedConversation(input_ids, labels, num_images)

    def generation_prompt(self, text: str, num_images: int = 0, system: str | None = None) -> str:
        messages = [{"role": "system", "content": [{"type": "text", "text": system}]}] if system else []
        messages.append({"role": "user", "content": [{"type": "image"}] * num_images + [{"type": "text", "text": text}]})
        return self.render(messages, add_generation_prompt=True)

    def encode_prompt(self, prompt: str, image_counts: list[int] | None = None) -> list[int]:
        return self._encode(prompt, first=True, counts=image_counts)


def read_conv_mode(directory: str | Path) -> str | None:
    """The conversation format a training output recorded (`prompt_format.json`), or None when it has none."""
    path = Path(directory) / PROMPT_FORMAT_FILE
    if not path.is_file():
        return None
    try:
        mode = json.loads(path.read_text())["conv_mode"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a prompt-format record ({err})") from None
    if mode not in CONV_MODES:
        raise ValueError(f"{path}: unknown conv_mode {mode!r}; known: {CONV_MODES}")
    return mode


def write_prompt_format(directory: str | Path, prompt_format: PromptFormat) -> None:
    """Record the format of a training output, read back by `read_conv_mode`."""
    (Path(directory) / PROMPT_FORMAT_FILE).write_text(json.dumps(prompt_format.record(), indent=2) + "\n")


def _probe_image_tokens(processor) -> int:
    """How many placeholder tokens the processor expands one image at its input size into (0: no images)."""
    from PIL import Image

    image_processor = getattr(processor, "image_processor", None)
    token = getattr(processor, "image_token", None)
    if image_processor is None or token is None:
        return 0
    crop = getattr(image_processor, "crop_size", None) or {}
    size = getattr(image_processor, "size", None) or {}
    get = (lambda d, k: d.get(k) if isinstance(d, dict) else getattr(d, k, None))
    side = int(get(crop, "height") or get(size, "height") or get(size, "shortest_edge") or 336)
    side = side if side <= 2048 else 448  # Qwen2-VL's "shortest_edge" is a pixel count, not a side
    probe = processor(text=token, images=[Image.new("RGB", (side, side))], add_special_tokens=False)
    token_id = processor.tokenizer.convert_tokens_to_ids(token)
    return sum(1 for t in probe["input_ids"][0] if t == token_id)
