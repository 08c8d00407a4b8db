"""Generate answers for a question file: batched, greedy, resumable, shardable.

    python -m eval.generate --model-path M [--model-base B] --question-file Q --image-folder D \
        --answers-file A --batch-size 16 --max-new-tokens 128 [--num-chunks C --chunk-idx I] \
        [--prompt-suffix S [--suffix-in-text]] [--overwrite]

Each line of A is `{"question_id", "prompt", "text", "model_id", "run"}`, and ``A.record.json`` says what
produced them (`eval.answers`: the model paths and weights, the conversation format, the suffix, the generation
settings, the question file); "run" is that record's fingerprint. Prompts are built exactly as in training
(`PromptFormat`), so a model is asked the way it was taught. Batches are left-padded; greedy answers equal those
of batch size 1 (tested). The question file may be one of LLaVA's eval files as it is (`eval.formats`): with
``--suffix-in-text`` the texts are declared to end with ``--prompt-suffix`` already and are asked unchanged.

Resuming: answers are appended and flushed batch by batch. Run the same command again after a kill and it keeps
the complete lines, drops a half-written last line, and answers only what is missing. It resumes only the same
run: another model, format, suffix, budget, dtype or question file stops with an error that lists what differs;
``--overwrite`` starts over. Sharding: `--num-chunks C --chunk-idx I` takes the I-th of C contiguous slices;
`python -m eval.merge_answers` joins the shards.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from .answers import AnswersMismatch, file_sha256, fingerprint, model_record, prepare_resume
from .formats import check_suffix, check_unique, prompt_text, read_questions


def chunk(items: list, num_chunks: int, index: int) -> list:
    """The `index`-th of `num_chunks` contiguous, near-equal slices (every item in exactly one slice)."""
    if not 0 <= index < num_chunks:
        raise ValueError(f"--chunk-idx {index} must be in [0, {num_chunks})")
    bounds = [round(i * len(items) / num_chunks) for i in range(num_chunks + 1)]
    return items[bounds[index]: bounds[index + 1]]


class Generator:
    """Holds the model and prompt format; answers batches of questions."""

    def __init__(self, model, processor, image_folder: str | None, image_aspect_ratio: str | None = None,
                 max_new_tokens: int = 128, model_id: str = "model", conv_mode: str = "template",
                 source: dict | None = None):
        from llava_thanora.data.conversation import PromptFormat
        from llava_thanora.model.families import family_of

        self.model, self.processor, self.image_folder = model, processor, image_folder
        self.family = family_of(model)  # images are processed and counted the family's way, as in training
        self.format = PromptFormat.from_processor(processor, conv_mode,
                                                  image_seq_length=self.family.nominal_image_tokens(processor))
        # the family's training setting unless asked otherwise (pad for LLaVA-1.5, the aspect kept for anyres/Qwen)
        self.aspect = image_aspect_ratio or self.family.default_aspect_ratio
        self.max_new_tokens, self.model_id = max_new_tokens, model_id
        # What the model is, for the answers' record (`eval.answers.model_record`; load_generator fills it in).
        self.source = dict(source) if source else {"model_id": model_id}
        self.device = next(model.parameters()).device

    def record(self, prompt_suffix: str = "", suffix_in_text: bool = False, question_file: str | None = None) -> dict:
        """Everything that decides this generator's answers (eval.answers): model, prompt, generation, questions."""
        questions = None
        if question_file is not None:
            questions = {"file": str(Path(question_file).resolve()), "sha256": file_sha256(question_file)}
        return {
            "model": self.source,
            "prompt": {"conv_mode": self.format.conv_mode, "format": self.format.record(),
                       "prompt_suffix": prompt_suffix, "suffix_in_text": suffix_in_text},
            "generation": {"max_new_tokens": self.max_new_tokens, "do_sample": False, "num_beams": 1,
                           "image_aspect_ratio": self.aspect, "dtype": str(self.model.dtype),
                           "image_processor": type(self.processor.image_processor).__name__},
            "questions": questions,
        }

    def _images(self, question: dict) -> list:
        from llava_thanora.data.images import load_image, resolve_image

        image = question.get("image")
        if not image:
            return []
        paths = [image] if isinstance(image, str) else image
        mean = getattr(self.processor.image_processor, "image_mean", None)
        return [load_image(resolve_image(self.image_folder, p), self.aspect, mean) for p in paths]

    @torch.no_grad()
    def answer(self, questions: list[dict], prompt_suffix: str = "", suffix_in_text: bool = False) -> list[dict]:
        prompts, ids, images = [], [], []
        for q in questions:
            imgs = self._images(q)
            counts = None
            if imgs:
                inputs, counts = self.family.process_images(self.processor, imgs)
                images.append(inputs)
            text = prompt_text(q, prompt_suffix, suffix_in_text)
            prompt = self.format.generation_prompt(text, num_images=len(imgs))
            prompts.append(prompt)
            ids.append(self.format.encode_prompt(prompt, counts))
        pad = self.processor.tokenizer.pad_token_id
        width = max(len(x) for x in ids)
        # Left padding: every prompt ends at the same position, so generated tokens line up across the batch.
        input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids], device=self.device)
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], device=self.device)
        inputs = {"input_ids": input_ids, "attention_mask": mask,
                  **self.family.token_inputs(input_ids, self.format.image_token_id)}
        if images:
            for key, value in self.family.collate_images(images).items():
                inputs[key] = value.to(self.device, self.model.dtype) if value.is_floating_point() else value.to(self.device)
        out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False, num_beams=1,
                                  pad_token_id=pad)
        texts = self.processor.tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
        return [{"question_id": q["question_id"], "prompt": p, "text": t.strip(), "model_id": self.model_id}
                for q, p, t in zip(questions, prompts, texts)]

    def run(self, questions: list[dict], answers_file: str | Path, batch_size: int = 1, prompt_suffix: str = "",
            progress: bool = True, suffix_in_text: bool = False, question_file: str | None = None,
            overwrite: bool = False) -> int:
        """Answer every question not yet in `answers_file`, appending batch by batch; returns how many were new.

        An existing file is resumed only when this run's record matches it (`eval.answers.prepare_resume`,
        which raises AnswersMismatch otherwise); `overwrite` starts it over.
        """
        from tqdm import tqdm

        answers_file = Path(answers_file)
        record = self.record(prompt_suffix, suffix_in_text, question_file)
        info = {"batch_size": batch_size, "device": str(self.device), "num_questions": len(questions)}
        done = prepare_resume(answers_file, record, info, overwrite)
        run = fingerprint(record)
        todo = [q for q in questions if str(q["question_id"]) not in done]
        # Longest prompts first keeps padding low within a batch; the answers file is keyed by id, not order.
        todo.sort(key=lambda q: len(q.get("text", "")), reverse=True)
        bar = tqdm(total=len(questions), initial=len(questions) - len(todo), desc=answers_file.name, disable=not progress)
        with answers_file.open("a", encoding="utf-8") as f:
            for start in range(0, len(todo), batch_size):
                rows = self.answer(todo[start: start + batch_size], prompt_suffix, suffix_in_text)
                f.write("".join(json.dumps({**r, "run": run}, ensure_ascii=False) + "\n" for r in rows))
                f.flush()
                os.fsync(f.fileno())  # a kill after this point loses nothing of this batch
                bar.update(len(rows))
        bar.close()
        return len(todo)


def load_questions(path: str, num_chunks: int = 1, chunk_idx: int = 0, limit: int | None = None) -> list[dict]:
    """The questions of a question file (`eval.formats.read_questions`), unique ids checked, first `limit`,
    then the `chunk_idx`-th of `num_chunks` slices."""
    questions = read_questions(path)
    check_unique(questions, path)
    questions = questions[:limit] if limit else questions
    return chunk(questions, num_chunks, chunk_idx)


def add_conv_mode_flag(ap: argparse.ArgumentParser) -> None:
    from llava_thanora.data.conversation import CONV_MODES

    ap.add_argument("--conv-mode", default=None, choices=CONV_MODES,
                    help="Conversation format (default: the one the training output recorded in prompt_format.json, "
                         "else the checkpoint's chat template). llava_v1 = LLaVA-1.5's vicuna_v1, with its system text.")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-path", required=True)
    ap.add_argument("--model-base", default=None, help="Base checkpoint when --model-path is a training output.")
    ap.add_argument("--question-file", required=True)
    ap.add_argument("--image-folder", default=None)
    ap.add_argument("--answers-file", required=True)
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--num-chunks", type=int, default=1)
    ap.add_argument("--chunk-idx", type=int, default=0)
    ap.add_argument("--prompt-suffix", default="", help="Appended to each question on a new line.")
    ap.add_argument("--suffix-in-text", action="store_true",
                    help="The question texts already end with --prompt-suffix (LLaVA's eval files): ask them as they "
                         "are (every text is checked).")
    ap.add_argument("--overwrite", action="store_true",
                    help="Start the answers file over instead of resuming it (needed when the run differs).")
    ap.add_argument("--image-aspect-ratio", default=None, choices=["pad", "square", "original"],
                    help="Default: the model family's (pad for LLaVA-1.5, original for anyres and Qwen2-VL).")
    add_conv_mode_flag(ap)
    ap.add_argument("--model-id", default=None, help="Recorded in each answer (default: the model path's name).")
    ap.add_argument("--limit", type=int, default=None, help="Only the first N questions (quick checks).")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    return ap


def resolve_conv_mode(model_path: str, conv_mode: str | None) -> str:
    """The conversation format to ask `model_path` in: `conv_mode` when given, else the one its training recorded
    (`prompt_format.json`), else the checkpoint's chat template. Overriding a recorded format is allowed (e.g. to
    measure its effect) but said out loud."""
    from llava_thanora.data.conversation import read_conv_mode

    recorded = read_conv_mode(model_path)
    if conv_mode is None:
        return recorded or "template"
    if recorded is not None and recorded != conv_mode:
        print(f"warning: {model_path} was trained with --conv_mode {recorded}; asking it with {conv_mode} instead",
              file=sys.stderr)
    return conv_mode


def load_generator(model_path: str, model_base: str | None = None, device: str = "cpu", dtype: str = "auto",
                   image_folder: str | None = None, image_aspect_ratio: str | None = None, max_new_tokens: int = 128,
                   model_id: str | None = None, conv_mode: str | None = None) -> Generator:
    """Load any training output or full model (`load_trained`) onto `device` and wrap it in a Generator."""
    from llava_thanora.methods.loading import load_trained
    from llava_thanora.model.builder import DTYPES

    torch_dtype = DTYPES.get(dtype, torch.bfloat16 if device.startswith("cuda") else torch.float32)
    model, processor, _ = load_trained(model_path, model_base, torch_dtype)
    model.to(device)
    model_id = model_id or Path(model_path.rstrip("/")).name
    return Generator(model, processor, image_folder, image_aspect_ratio, max_new_tokens, model_id,
                     resolve_conv_mode(model_path, conv_mode), model_record(model_path, model_base, model_id))


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    try:  # bad input fails before the model loads
        questions = load_questions(args.question_file, args.num_chunks, args.chunk_idx, args.limit)
        check_suffix(questions, args.prompt_suffix, args.suffix_in_text, args.question_file)
    except ValueError as e:
        sys.exit(f"error: {e}")
    generator = load_generator(args.model_path, args.model_base, args.device, args.dtype, args.image_folder,
                               args.image_aspect_ratio, args.max_new_tokens, args.model_id, args.conv_mode)
    try:
        new = generator.run(questions, args.answers_file, args.batch_size, args.prompt_suffix,
                            suffix_in_text=args.suffix_in_text, question_file=args.question_file,
                            overwrite=args.overwrite)
    except AnswersMismatch as e:
        sys.exit(f"error: {e}")
    print(f"{new} new answers, {len(questions)} in total -> {args.answers_file}")


if __name__ == "__main__":
    main()
