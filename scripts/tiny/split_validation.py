"""Hold out a validation split from minimix's TRAIN files, so hyper-parameters are chosen without the test split.

    python scripts/tiny/split_validation.py --data playground/data/minimix --out OUT --per_task 100

Writes OUT/train/<task>.json (the train files minus the held-out samples) and, for each task, the eval contract
files OUT/<task>/test_questions.jsonl and OUT/<task>/test_annotations.jsonl built from the held-out samples, so
`eval.run --data-root OUT` scores them with the same registry entries as the test split. Images stay where they
are (OUT/images links to the data's image folder). A held-out caption sample has its one training caption as the
only reference (the test split has five), so validation CIDEr is lower than test CIDEr.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from llava_thanora.data.conversation import without_suffix

TASKS = ("vqa", "ocr", "caption", "mcq")


def to_question(sample: dict, suffix: str) -> tuple[dict, dict]:
    """A training sample back into the question/annotation contract (the prompt rule of the minimix README)."""
    human, answer = sample["conversations"][0]["value"], sample["conversations"][1]["value"]
    try:
        text = without_suffix(human.removeprefix("<image>\n"), suffix)
    except ValueError as e:
        raise ValueError(f"sample {sample['id']}: human turn: {e}") from None
    question = {"question_id": sample["id"], "image": sample["image"], "text": text, "task": sample["task"]}
    # vqa_accuracy is VQA's 10-annotator formula: ten identical references, as the test split has.
    answers = [answer] * 10 if sample["task"] == "vqa" else [answer]
    return question, {"question_id": sample["id"], "answers": answers}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="playground/data/minimix")
    ap.add_argument("--out", required=True)
    ap.add_argument("--per_task", type=int, default=100)
    args = ap.parse_args(argv)
    data, out = Path(args.data), Path(args.out)
    suffixes = json.loads((data / "manifest.json").read_text())["prompt_suffix"]
    (out / "train").mkdir(parents=True, exist_ok=True)
    if not (out / "images").exists():
        os.symlink((data / "images").resolve(), out / "images")
    for task in TASKS:
        samples = json.loads((data / "train" / f"{task}.json").read_text())
        if len(samples) <= args.per_task:
            raise ValueError(f"{task}: {len(samples)} train samples cannot spare {args.per_task} for validation")
        keep, held = samples[: -args.per_task], samples[-args.per_task:]
        (out / "train" / f"{task}.json").write_text(json.dumps(keep))
        rows = [to_question(s, suffixes[task]) for s in held]
        (out / task).mkdir(exist_ok=True)
        for name, part in (("test_questions.jsonl", 0), ("test_annotations.jsonl", 1)):
            (out / task / name).write_text("".join(json.dumps(r[part]) + "\n" for r in rows))
        print(f"{task}: {len(keep)} train, {len(held)} validation")


if __name__ == "__main__":
    main()
