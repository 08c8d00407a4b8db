"""Stage 0.5 of the tiny base: teach the random vision tower to see before the language model looks at it.

LLaVA starts from a CLIP tower that already sees; the tiny base's tower starts random, and the LLaVA stages
alone (language-model loss through a random projector and a random language model) leave it nearly blind.
This stage trains the tower by itself on the pretraining corpus: the mean of its patch features, at the layer
LLaVA reads (`vision_feature_layer`), predicts which tokens the image's description contains (a bag of words,
as a distribution over the vocabulary weighted by inverse document frequency to a power, so the content words
count far more than the template's). It needs no labels beyond the corpus, and a step costs a fraction of a
full-model step because the language model is not run.

Why these choices: with `python bench/probe_tower.py` (linear probes on the mean patch feature, 1,500 images
to fit, 500 held out), the demo's base (5,000 steps) names 59.0% of fresh characters (chance 3.3%) and 97.4% of
easy-VQA test shapes; its random tower before this stage, 3.8% and 52.8%; 3,000 steps (the first 2.2 base)
54.6% / 97.2%, 4,500 57.4% / 96.2%, 6,000 66.2% / 99.0% (BENCHMARKS.md, "minimix 2.2, base recipe 2"). The
development runs that chose the design (an earlier probe, 500 characters and 300 shapes; BENCHMARKS.md,
"minimix 2.2 on its first base"): every patch predicting the words (the 2.1 stage), IDF to the power 1, 1,500
steps: characters 24%, shapes 84%; the mean of the patches, power 1: characters 30%; power 3: 41% / 92%; power 3
and 3,000 steps: 62% / 97%. The character is one of several content words of its description and the rarest;
the power puts most of the target on it. The default --steps is the recipe's (scripts/tiny/cached_minimix.sh).

Usage: pretrain_vision.py --model DIR --data_path pretrain.json --image_folder DIR --output_dir DIR [--steps N]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from PIL import Image
from transformers import AutoProcessor, LlavaForConditionalGeneration


def load_corpus(data_path: Path, image_folder: Path, processor) -> tuple[torch.Tensor, torch.Tensor]:
    """(pixel values [N, 3, H, W], multi-hot description tokens [N, vocab]) of every distinct image."""
    records = json.loads(data_path.read_text())
    by_image: dict[str, set[int]] = {}
    vocab = len(processor.tokenizer)
    for line, r in enumerate(records, 1):
        if "image" not in r or len(r.get("conversations", [])) < 2:
            raise ValueError(f"{data_path}: record {line} ({r.get('id')}) has no image or no answer")
        ids = processor.tokenizer(r["conversations"][1]["value"], add_special_tokens=False)["input_ids"]
        by_image.setdefault(r["image"], set()).update(ids)
    names = sorted(by_image)
    images = []
    for name in names:
        with Image.open(image_folder / name) as im:
            images.append(im.convert("RGB"))
    pixels = processor.image_processor(images, return_tensors="pt")["pixel_values"]
    targets = torch.zeros(len(names), vocab)
    for row, name in enumerate(names):
        targets[row, sorted(by_image[name])] = 1.0
    return pixels, targets


def idf_weights(targets: torch.Tensor, power: float = 1.0) -> torch.Tensor:
    """log(N / document frequency) ** power per token, normalised to mean 1 over the tokens that occur."""
    frequency = targets.sum(dim=0)
    weights = torch.where(frequency > 0, torch.log(len(targets) / frequency.clamp(min=1)), torch.zeros(()))
    weights = weights ** power
    return weights * (frequency > 0).sum() / weights.sum().clamp(min=1e-12)


def precision_at_k(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Share of each description's k tokens found among its k highest logits (k = its own token count)."""
    hits = []
    for row, truth in zip(logits, targets):
        k = int(truth.sum())
        hits.append(float(truth[row.topk(k).indices].sum()) / k)
    return sum(hits) / len(hits)


def layers_read(num_layers: int, feature_layer: int) -> int:
    """How many encoder layers produce hidden state `feature_layer` (hidden_states[0] is the embeddings)."""
    index = feature_layer % (num_layers + 1)
    if index == 0:
        raise ValueError(f"vision_feature_layer {feature_layer} is the embeddings: there is no layer to train")
    return index


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="tiny LLaVA checkpoint (stage 0)")
    parser.add_argument("--data_path", required=True, help="LLaVA-format corpus (minimix/pretrain.json)")
    parser.add_argument("--image_folder", required=True, help="folder the corpus' image paths are relative to")
    parser.add_argument("--output_dir", required=True, help="where the checkpoint with the trained tower goes")
    parser.add_argument("--steps", type=int, default=5000, help="optimizer steps (one-cycle schedule)")
    parser.add_argument("--batch_size", type=int, default=64, help="images per step")
    parser.add_argument("--learning_rate", type=float, default=3e-3, help="peak learning rate (AdamW)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the head's init and the batch order")
    parser.add_argument("--idf_power", type=float, default=3.0,
                        help="exponent of the IDF weights of the target words (1: plain IDF)")
    args = parser.parse_args(argv)
    if args.steps < 2:  # the one-cycle schedule needs a step to warm up and one to anneal
        raise SystemExit(f"error: --steps must be >= 2, got {args.steps}")
    if args.idf_power <= 0:
        raise SystemExit(f"error: --idf_power must be > 0, got {args.idf_power}")

    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    processor = AutoProcessor.from_pretrained(args.model)
    model = LlavaForConditionalGeneration.from_pretrained(args.model)
    pixels, targets = load_corpus(Path(args.data_path), Path(args.image_folder), processor)
    weights = idf_weights(targets, args.idf_power)
    tower = model.model.vision_tower
    layer = model.config.vision_feature_layer
    head = torch.nn.Linear(model.config.vision_config.hidden_size, targets.shape[1])
    params = list(tower.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=args.learning_rate, weight_decay=0.0)
    # One-cycle: warm up over 5% of the steps (at least 2, which OneCycleLR needs), then anneal.
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.learning_rate, total_steps=args.steps,
                                                   pct_start=max(0.05, 2 / args.steps))
    generator = torch.Generator().manual_seed(args.seed)
    order = torch.randperm(len(pixels), generator=generator)
    cursor = 0
    # LLaVA reads layer `vision_feature_layer` (-2): the layers above it never reach the language model and get
    # no gradient here, so leave them out of the forward pass (a third of it for the tiny 3-layer tower); the
    # trained weights are the same as with the whole tower, and the full list is put back before saving.
    all_layers = tower.encoder.layers
    tower.encoder.layers = all_layers[:layers_read(len(all_layers), layer)]
    tower.train()
    for step in range(1, args.steps + 1):
        if cursor + args.batch_size > len(order):
            order, cursor = torch.randperm(len(pixels), generator=generator), 0
        batch = order[cursor:cursor + args.batch_size]
        cursor += args.batch_size
        hidden = tower(pixels[batch], output_hidden_states=True).hidden_states[-1]
        logits = head(hidden[:, 1:].mean(dim=1))  # patches only: the "default" feature strategy drops CLS
        # Cross-entropy against the description's tokens as a distribution (IDF-weighted): a softmax over the
        # vocabulary gives far stronger gradients than 1024 independent, mostly negative, binary losses.
        truth = targets[batch] * weights
        truth = truth / truth.sum(dim=1, keepdim=True)
        loss = -(truth * logits.log_softmax(dim=-1)).sum(dim=-1).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 100 == 0 or step == args.steps:
            print(f"vision step {step}/{args.steps} loss {loss.item():.4f} "
                  f"precision@k {precision_at_k(logits.detach(), targets[batch]):.3f}", flush=True)
    tower.encoder.layers = all_layers
    model.save_pretrained(args.output_dir)
    processor.save_pretrained(args.output_dir)
    for extra in ("tiny_config.json",):  # the tiny builder's record travels with the checkpoint
        if (Path(args.model) / extra).is_file():
            (Path(args.output_dir) / extra).write_text((Path(args.model) / extra).read_text())


if __name__ == "__main__":
    main()
