"""See what the model sees: every sample of a training file through the same prompt format and dataset code as
`train.py`, as JSON lines or as a table.

    python -m llava_thanora.data.inspect --model_name_or_path M --data_path F [--image_folder D]
        [--conv_mode template|llava_v1] [--limit N] [--model_max_length 2048] [--pretty]

One JSON line per sample: `id`, `prompt` (the rendered text, `<image>` unexpanded), `input_ids` and `labels` (the
image placeholder expanded into the model's image tokens, -100 where the loss is masked). A bad sample prints
`{"id", "error"}` with its file, line and reason instead, and the exit status is 1. `--pretty` prints a table of
tokens with their labels (a run of image tokens on one row). Images are decoded only with `--check_images`.
"""

from __future__ import annotations

import argparse
import json
import sys

from .conversation import CONV_MODES, IGNORE_INDEX, PromptFormat, TemplateFormat, to_messages
from .dataset import DataConfig, DataError, SupervisedDataset
from .llava_v1 import VicunaV1Format


def rendered(prompt_format: PromptFormat, conversations: list[dict]) -> str:
    """The text the format tokenizes, with `<image>` unexpanded."""
    if isinstance(prompt_format, VicunaV1Format):
        return prompt_format.render(conversations)[0]
    if isinstance(prompt_format, TemplateFormat):  # (its ids come from the same text, tokenized turn by turn)
        return prompt_format.render(to_messages(conversations), add_generation_prompt=False)
    raise TypeError(f"no rendering for {type(prompt_format).__name__}")


def records(dataset: SupervisedDataset, limit: int | None = None, check_images: bool = False):
    """One dict per sample: `{id, prompt, input_ids, labels}`, or `{id, error}` for a sample found bad when drawn
    (those found bad up front come first, as `{id: None, error}`); `check_images` also decodes its images."""
    for message in dataset.skipped.messages:
        yield {"id": None, "error": message}
    for i in range(len(dataset) if limit is None else min(limit, len(dataset))):
        conversations = dataset.conversations(i)
        sample_id = dataset.sample_id(i)
        try:
            tok = dataset.tokenized(i)
            if check_images:
                dataset.load(i)
        except DataError as e:
            yield {"id": sample_id, "error": str(e)}
            continue
        yield {"id": sample_id, "prompt": rendered(dataset.format, conversations), "input_ids": tok.input_ids,
               "labels": tok.labels}


def table(record: dict, tokenizer, image_token_id: int) -> str:
    """A readable table of one record: position, id, token, label (`-` where masked)."""
    if "error" in record:
        return f"== {record['id']}: ERROR {record['error']}\n"
    lines = [f"== {record['id']}", repr(record["prompt"]), f"{'pos':>5} {'id':>7}  {'token':<24} label"]
    ids, labels, i = record["input_ids"], record["labels"], 0
    while i < len(ids):
        j = i
        while ids[i] == image_token_id and j + 1 < len(ids) and ids[j + 1] == image_token_id:
            j += 1
        token = tokenizer.convert_ids_to_tokens(ids[i])
        if j > i:
            token = f"{token} x{j - i + 1}"
        label = "-" if labels[i] == IGNORE_INDEX else str(labels[i])
        lines.append(f"{i:>5} {ids[i]:>7}  {token!r:<24} {label}")
        i = j + 1
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model_name_or_path", required=True, help="The checkpoint whose processor tokenizes.")
    ap.add_argument("--data_path", required=True, help="LLaVA JSON/JSONL file(s), comma-separated.")
    ap.add_argument("--image_folder", default=None, help="Root that 'image' paths are relative to.")
    ap.add_argument("--conv_mode", default="template", choices=CONV_MODES, help="Conversation format (train.py's).")
    ap.add_argument("--model_max_length", type=int, default=2048, help="Longer samples are reported as errors.")
    ap.add_argument("--limit", type=int, default=None, help="Only the first N samples (of each file, then overall).")
    ap.add_argument("--check_images", action="store_true", help="Also decode every image (as training will).")
    ap.add_argument("--pretty", action="store_true", help="A table of tokens and labels instead of JSON lines.")
    args = ap.parse_args(argv)

    from .images import load_processor

    processor = load_processor(args.model_name_or_path)  # the image processor training uses (PIL backend)
    prompt_format = PromptFormat.from_processor(processor, args.conv_mode)
    config = DataConfig([p for p in args.data_path.split(",") if p], image_folder=args.image_folder,
                        model_max_length=args.model_max_length, skip_bad_samples=True, max_samples=args.limit)
    try:
        dataset = SupervisedDataset(config, prompt_format, processor.image_processor)
    except DataError as e:  # a file that cannot be read at all, or no usable sample
        sys.stderr.write(f"{e}\n")
        return 2
    bad = 0
    for record in records(dataset, args.limit, args.check_images):
        bad += "error" in record
        if args.pretty:
            sys.stdout.write(table(record, processor.tokenizer, prompt_format.image_token_id))
        else:
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
