"""What the tiny base's vision tower sees: linear probes of its features on fresh minimix images.

    python bench/probe_tower.py MODEL_DIR [MODEL_DIR ...] [--train 1500] [--test 500] [--seed 0]

For each checkpoint (e.g. the random tower of playground/results/pretrain/stage0 and the base
playground/checkpoints/tiny-llava-base), the features are the mean of the patch features at the layer LLaVA reads
(`vision_feature_layer`, CLS dropped), what the vision stage (scripts/tiny/pretrain_vision.py) trains. A
multinomial logistic regression (scikit-learn) is fitted on `--train` images and scored on `--test` others:
  - characters: the ocr task's 30 glyphs, freshly rendered (own random stream, so none is a minimix image);
  - shapes: fitted on easy-VQA's train images, scored on its test images (3 shapes).
Chance is 1/30 and about 1/3. A tower the probes read well is one the language model can learn to read from.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from transformers import AutoProcessor, LlavaForConditionalGeneration

from llava_thanora.data.minimix import ocr, vqa
from llava_thanora.data.minimix.writer import rng_for


def character_images(n: int, seed: int) -> tuple[list, list[str]]:
    rng = rng_for(seed, "probe", "characters")
    fonts = ocr.FontBank(ocr.find_fonts(False))
    labels = [ocr.random_text(rng) for _ in range(n)]
    return [ocr.render_text_image(text, rng, fonts).image for text in labels], labels


def shape_images(n_train: int, n_test: int, seed: int) -> tuple[list, list[str]]:
    """n_train images of easy-VQA's train split, then n_test of its test split (which no minimix base saw)."""
    images, labels = [], []
    for split, n in (("train", n_train), ("test", n_test)):
        data = vqa.load_split(split)
        attributes = vqa.image_attributes(data)
        ids = sorted(attributes)
        if n > len(ids):
            raise SystemExit(f"error: easy-VQA's {split} split has {len(ids)} usable images, asked for {n}")
        for i in np.random.default_rng(seed).permutation(len(ids))[:n]:
            images.append(vqa.load_image(data.image_paths[ids[i]]))
            labels.append(attributes[ids[i]][1])
    return images, labels


@torch.no_grad()
def features(model, processor, images: list, batch: int = 128) -> np.ndarray:
    tower, layer = model.model.vision_tower, model.config.vision_feature_layer
    out = []
    for start in range(0, len(images), batch):
        pixels = processor.image_processor(images[start:start + batch], return_tensors="pt")["pixel_values"]
        hidden = tower(pixels, output_hidden_states=True).hidden_states[layer]
        out.append(hidden[:, 1:].mean(dim=1).numpy())
    return np.concatenate(out)


def probe(x: np.ndarray, y: list[str], n_train: int) -> float:
    x = (x - x[:n_train].mean(0)) / (x[:n_train].std(0) + 1e-6)
    clf = LogisticRegression(max_iter=2000).fit(x[:n_train], y[:n_train])
    return 100.0 * float(clf.score(x[n_train:], y[n_train:]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="checkpoint folders (LLaVA format) to probe")
    parser.add_argument("--train", type=int, default=1500, help="images the probe is fitted on, per probe")
    parser.add_argument("--test", type=int, default=500, help="held-out images it is scored on, per probe")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    sets = {"characters (30)": character_images(args.train + args.test, args.seed),
            "easy-VQA shapes (3)": shape_images(args.train, args.test, args.seed)}
    print("| checkpoint | " + " | ".join(sets) + " |")
    print("|---|" + "---:|" * len(sets))
    for path in args.models:
        model = LlavaForConditionalGeneration.from_pretrained(path).eval()
        processor = AutoProcessor.from_pretrained(path)
        scores = [probe(features(model, processor, images), labels, args.train) for images, labels in sets.values()]
        print(f"| {path} | " + " | ".join(f"{s:.1f}" for s in scores) + " |", flush=True)


if __name__ == "__main__":
    main()
