"""Flickr30k -> LLaVA training JSON + eval files (benchmark "flickr30k", CIDEr).

Source (default): umaru97/flickr30k_train_val_test, parquet files that load with the pinned datasets 5: the
Karpathy split as three splits, train (29,000 images), val (1,014) and test (1,000), with the columns image,
caption (5 per image), sentids, split (the Karpathy split again), img_id, filename, i.e. nlphuji/flickr30k's
table. nlphuji/flickr30k itself is a loading script (flickr30k.py), which datasets 5 no longer runs.
lmms-lab/flickr30k (parquet too: image, caption, sentids, img_id, filename) holds all 31,783 images as one split
"test"; that is what lmms-eval's ``flickr30k_test`` scores, a different set from the Karpathy test split.

Columns read: image, caption, img_id, filename (and split with --karpathy-split, which keeps only the rows
whose "split" column has that value, for a local copy of the whole table). One question per image, instruction
"Provide a one-sentence caption for the provided image." (LLaVA-1.5 / lmms-eval); all captions are references,
and training gets one record per caption (<img_id>_<k>).

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
            raise ValueError("--karpathy-split needs a 'split' column (umaru97/flickr30k_train_val_test has one)")
        if row["split"] != args.karpathy_split:
            return
    captions = list(row["caption"])
    yield Item(id=str(row["img_id"]), text=CAPTION_PROMPT, answers=captions, targets=captions, image=row["image"],
               image_name=str(row["filename"]).rsplit(".", 1)[0])


SPEC = DatasetSpec(task="flickr30k", benchmark="flickr30k", default_dataset="umaru97/flickr30k_train_val_test",
                   default_split="test", columns=("image", "caption", "img_id", "filename"), convert=convert,
                   add_arguments=add_arguments)

if __name__ == "__main__":
    main(SPEC, __doc__)
