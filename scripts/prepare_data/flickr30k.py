"""Flickr30k -> LLaVA training JSON + eval files (benchmark "flickr30k", CIDEr).

Source: lmms-lab/flickr30k (one split, "test", holding all 31,783 images) or nlphuji/flickr30k, whose extra
"split" column carries the Karpathy train / val / test assignment (select with --karpathy-split). Columns
read: image, caption (5 per image), img_id, filename. One question per image, instruction "Provide a
one-sentence caption for the provided image." (LLaVA-1.5 / lmms-eval); all captions are references, and
training gets one record per caption (<img_id>_<k>).

    python -m scripts.prepare_data.flickr30k --split test [--dataset PATH_OR_ID] [--karpathy-split test]
"""

from __future__ import annotations

from scripts.prepare_data.common import DatasetSpec, Item, main

CAPTION_PROMPT = "Provide a one-sentence caption for the provided image."


def add_arguments(parser):
    parser.add_argument("--karpathy-split", help="keep only rows whose 'split' column has this value")


def convert(row, index, args, resources):
    if args.karpathy_split is not None:
        if "split" not in row:
            raise ValueError("--karpathy-split needs a 'split' column (e.g. nlphuji/flickr30k)")
        if row["split"] != args.karpathy_split:
            return
    captions = list(row["caption"])
    yield Item(id=str(row["img_id"]), text=CAPTION_PROMPT, answers=captions, targets=captions, image=row["image"],
               image_name=str(row["filename"]).rsplit(".", 1)[0])


SPEC = DatasetSpec(task="flickr30k", benchmark="flickr30k", default_dataset="lmms-lab/flickr30k",
                   default_split="test", columns=("image", "caption", "img_id", "filename"), convert=convert,
                   add_arguments=add_arguments)

if __name__ == "__main__":
    main(SPEC, __doc__)
