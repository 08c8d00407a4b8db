"""COCO captions -> LLaVA training JSON + eval files (benchmark "coco_caption", CIDEr).

Source: lmms-lab/COCO-Caption (COCO 2014 val / test; test captions are not public). Columns read:
question_id (the image file name), image, answer (the reference captions). One question per image with the
instruction "Provide a one-sentence caption for the provided image."; all captions are references and
training gets one record per caption.

    python -m scripts.prepare_data.coco_caption --split val [--dataset PATH_OR_ID]
"""

from __future__ import annotations

from scripts.prepare_data.common import DatasetSpec, Item, main
from scripts.prepare_data.flickr30k import CAPTION_PROMPT


def convert(row, index, args, resources):
    name = str(row["question_id"]).rsplit(".", 1)[0]
    captions = list(row["answer"] or [])
    yield Item(id=name, text=CAPTION_PROMPT, answers=captions, targets=captions, image=row["image"], image_name=name)


SPEC = DatasetSpec(task="coco_caption", benchmark="coco_caption", default_dataset="lmms-lab/COCO-Caption",
                   default_split="val", columns=("question_id", "image", "answer"), convert=convert)

if __name__ == "__main__":
    main(SPEC, __doc__)
