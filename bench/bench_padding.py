"""Padded-token fraction per batch: random sampling vs length grouping, on the minimix mixture.

    python bench/bench_padding.py [--minimix DIR] [--batch-sizes 8,16,32] [--world-sizes 1,8] [--seeds 0,1,2]

A batch costs its longest sample times its size; the rest is padding. The data is the demo's 4-task mixture
(minimix train: vqa, ocr, caption, mcq) through the demo's tokenizer (a tiny LLaVA whose tokenizer is trained on the
minimix text, 16 image tokens per image, as scripts/tiny/pretrain_base.sh builds it) with --conv_mode template.
Samplers, each over one epoch:
- random: what transformers' default RandomSampler draws (a permutation);
- group_by_length: `train/sampler.py` on the lengths the dataset estimates without tokenizing (what training
  uses), and, for reference, on the exact token counts;
- group_by_modality_length: the same with image / text-only groups (minimix has images only, so it equals
  group_by_length; a mixed-data row adds minimix's text with the images removed, as text-only samples).
Padding is always measured with the exact token counts. Batches are per device; one optimizer step takes
batch x world size samples, as in a distributed run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def padded_fraction(order: list[int], lengths: list[int], batch: int) -> float:
    """Padding tokens / all tokens of the batches of `order` (consecutive slices of `batch`)."""
    pad = total = 0
    for start in range(0, len(order), batch):
        sizes = [lengths[i] for i in order[start: start + batch]]
        pad += max(sizes) * len(sizes) - sum(sizes)
        total += max(sizes) * len(sizes)
    return pad / total


def text_only_copy(path: Path, out: Path) -> Path:
    """The samples of `path` without their image (tags and image field removed): text-only samples."""
    samples = json.loads(path.read_text())
    for s in samples:
        s.pop("image", None)
        s["id"] = f"text-{s['id']}"
        for turn in s["conversations"]:
            turn["value"] = turn["value"].replace("<image>\n", "").replace("<image>", "")
    out.write_text(json.dumps(samples))
    return out


def main(argv: list[str] | None = None) -> None:
    from transformers import AutoProcessor

    from llava_thanora.data.conversation import PromptFormat
    from llava_thanora.data.dataset import DataConfig, SupervisedDataset
    from llava_thanora.data.minimix.build import build_minimix
    from llava_thanora.data.minimix.writer import MinimixConfig
    from llava_thanora.model.tiny import TinyConfig, build_tiny_llava
    from llava_thanora.train.sampler import grouped_order

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minimix", default=None, help="A built minimix folder (default: build one in a temp dir).")
    ap.add_argument("--batch-sizes", default="8,16,32")
    ap.add_argument("--world-sizes", default="1,8")
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench_padding_"))
    data = Path(args.minimix) if args.minimix else tmp / "minimix"
    if not args.minimix:
        build_minimix(MinimixConfig(output_dir=data))
    train = [data / "train" / f"{t}.json" for t in ("vqa", "ocr", "caption", "mcq")]
    corpus = ",".join(str(p) for p in [data / "pretrain.json", *train])
    model = build_tiny_llava(tmp / "tiny", TinyConfig(hidden_size=128, intermediate_size=384, num_hidden_layers=4,
                                                      vision_hidden_size=96, vision_layers=3, image_size=64,
                                                      patch_size=16, vocab_size=1024, tokenizer_corpus=corpus))
    processor = AutoProcessor.from_pretrained(model)
    fmt = PromptFormat.from_processor(processor, "template")
    mixtures = {"minimix (4 tasks, all with images)": train,
                "minimix + the same text without images (mixed)": [*train, text_only_copy(train[3], tmp / "mcq_text.json"),
                                                                   text_only_copy(train[1], tmp / "ocr_text.json")]}
    print(f"| data | samples | batch | world | random | group_by_length (estimated) | group_by_length (exact) | "
          f"group_by_modality_length |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, files in mixtures.items():
        t = time.time()
        ds = SupervisedDataset(DataConfig([str(p) for p in files], str(data / "images"), model_max_length=512,
                                          cache_dir=str(tmp / "cache")), fmt, processor.image_processor)
        setup = time.time() - t
        exact = [len(ds.tokenized(i).input_ids) for i in range(len(ds))]
        estimate, groups = ds.lengths(), [int(x) for x in ds.has_image()]
        error = statistics.mean(abs(a - b) / b for a, b in zip(estimate, exact))
        for world in [int(w) for w in args.world_sizes.split(",")]:
            for batch in [int(b) for b in args.batch_sizes.split(",")]:
                step = batch * world
                rows = {"random": [], "estimated": [], "exact": [], "modality": []}
                for seed in [int(s) for s in args.seeds.split(",")]:
                    gen = lambda: torch.Generator().manual_seed(seed)  # noqa: E731 - one fresh generator per sampler
                    rows["random"].append(padded_fraction(torch.randperm(len(ds), generator=gen()).tolist(), exact, batch))
                    rows["estimated"].append(padded_fraction(grouped_order(estimate, step, gen()), exact, batch))
                    rows["exact"].append(padded_fraction(grouped_order(exact, step, gen()), exact, batch))
                    rows["modality"].append(padded_fraction(grouped_order(estimate, step, gen(), groups), exact, batch))
                cells = " | ".join(f"{100 * statistics.mean(v):.1f}%" for v in rows.values())
                print(f"| {name} | {len(ds)} | {batch} | {world} | {cells} |")
        print(f"<!-- {name}: dataset ready in {setup:.2f} s; mean |estimate - exact| / exact = {100 * error:.1f}% -->")


if __name__ == "__main__":
    main()
