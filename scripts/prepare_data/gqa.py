"""GQA -> LLaVA training JSON + eval files (benchmark "gqa", exact match).

Source: lmms-lab/GQA, which stores questions and images in separate configs: questions in
<tier>_instructions (columns read: id, imageId, question, answer) and pictures in <tier>_images (columns:
id, image). Default tier testdev_balanced (split "testdev"), as LLaVA-1.5 reports; for training use
--config train_balanced_instructions --images-config train_balanced_images --split train. The question row
keeps "full_answer" (the dataset's sentence answer) for reference.

    python -m scripts.prepare_data.gqa --split testdev [--dataset PATH_OR_ID] [--images-dataset PATH_OR_ID]
"""

from __future__ import annotations

from scripts.prepare_data.common import DatasetSpec, Item, load_source, main


def add_arguments(parser):
    parser.add_argument("--images-dataset", help="where the image config lives (default: --dataset)")
    parser.add_argument("--images-config", default="testdev_balanced_images")


def prepare(args):
    """The image table (raw bytes, not decoded) and a map from image id to its row."""
    import datasets

    images = load_source(args.images_dataset or args.dataset, args.images_config, args.split)
    for column in ("id", "image"):
        if column not in images.column_names:
            raise ValueError(f"image table {args.images_config}: missing column {column!r}")
    images = images.cast_column("image", datasets.Image(decode=False))
    return images, {str(i): n for n, i in enumerate(images["id"])}


def convert(row, index, args, resources):
    images, row_of = resources
    image_id = str(row["imageId"])
    if image_id not in row_of:
        raise ValueError(f"question {row['id']}: image {image_id} is not in the image table {args.images_config}")
    yield Item(id=str(row["id"]), text=row["question"], answers=[row["answer"]],
               image=images[row_of[image_id]]["image"], image_name=image_id,
               extra={"full_answer": row.get("fullAnswer") or ""})


SPEC = DatasetSpec(task="gqa", benchmark="gqa", default_dataset="lmms-lab/GQA",
                   default_config="testdev_balanced_instructions", default_split="testdev",
                   columns=("id", "imageId", "question", "answer"), image_columns=(), convert=convert,
                   add_arguments=add_arguments, prepare=prepare)

if __name__ == "__main__":
    main(SPEC, __doc__)
