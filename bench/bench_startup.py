"""Start-up at LLaVA-1.5 scale: seconds from `python train.py` to the end of the first training step on a
synthetic 665k-sample LLaVA JSON (multi-turn, one image reference each), cold (first run on the file) and warm
(its Arrow cache present).

    python bench/bench_startup.py [--samples 665000] [--images 2000] [--workdir /tmp/bench_startup] [--repo DIR]

The data imitates llava_v1_5_mix665k.json: a JSON list of 1-8 question/answer exchanges per sample (4-20 words a
question, 1-60 words an answer), the first question with `<image>`, every sample referring to one of `--images`
real PNG files (mix665k reuses images too). It is written once into the work dir. The model is the tiny LLaVA, so
the measured time is start-up, not compute: imports, loading, parsing and checking the data, building the
sampler, and the first step (whose batch is tokenized and decoded by the DataLoader workers).

The run is LLaVA's recipe shape: --conv_mode llava_v1, --group_by_modality_length True, batch 16, 2 DataLoader
workers, --model_max_length 2048. `--repo` runs another checkout's train.py (e.g. the code before lazy loading, with
`--baseline`, which leaves out the flags it does not know) for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORDS = ("the a of to and in is it that on with as for at by this image shows red blue green man woman dog cat "
         "table car street sign number two three left right what where how many color").split()

# Runs inside the train.py process: times each phase from the moment the bench started the process.
PROBE = textwrap.dedent("""
    import os, sys, time, json
    start = float(os.environ["BENCH_START"])
    marks = {}
    def mark(name):
        marks[name] = round(time.time() - start, 2)
    from transformers import TrainerCallback
    mark("imports")
    from llava_thanora.train import main as m
    load_data = m.load_data
    def timed(*a, **k):
        out = load_data(*a, **k)
        mark("data ready")
        return out
    m.load_data = timed
    from llava_thanora.train import trainer as t
    class Probe(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            marks.setdefault("first step begins", round(time.time() - start, 2))
        def on_step_end(self, args, state, control, **kw):
            mark("first step done")
            control.should_training_stop = True
    train = t.LlavaTrainer.train
    t.LlavaTrainer.train = lambda self, *a, **kw: (self.add_callback(Probe()), train(self, *a, **kw))[1]
    from llava_thanora.cli import main
    main(sys.argv[1:])
    print("BENCH " + json.dumps(marks), flush=True)
""")


def sentence(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))


def write_data(path: Path, samples: int, images: int) -> None:
    rng = random.Random(0)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        f.write("[")
        for i in range(samples):
            turns = []
            for k in range(rng.choice([1, 1, 2, 3, 4, 5, 8])):
                question = sentence(rng, 4, 20) + "?"
                turns += [{"from": "human", "value": ("<image>\n" if k == 0 else "") + question},
                          {"from": "gpt", "value": sentence(rng, 1, 60)}]
            sample = {"id": f"{i:09d}", "image": f"coco/{i % images:06d}.png", "conversations": turns}
            f.write(("," if i else "") + json.dumps(sample))
        f.write("]")
    tmp.rename(path)


def write_images(folder: Path, images: int) -> None:
    from PIL import Image

    (folder / "coco").mkdir(parents=True, exist_ok=True)
    for i in range(images):
        Image.new("RGB", (48 + i % 17, 40 + i % 13), (i % 255, (7 * i) % 255, (13 * i) % 255)).save(
            folder / "coco" / f"{i:06d}.png")


def run(repo: Path, model: Path, data: Path, images: Path, cache: Path, baseline: bool) -> dict:
    flags = ["--model_name_or_path", str(model), "--data_path", str(data), "--image_folder", str(images),
             "--output_dir", str(cache.parent / "out"), "--conv_mode", "llava_v1", "--max_steps", "1",
             "--per_device_train_batch_size", "16", "--dataloader_num_workers", "2", "--model_max_length", "2048",
             "--save_strategy", "no", "--report_to", "none", "--lora_r", "8", "--lora_alpha", "16"]
    if not baseline:
        flags += ["--group_by_modality_length", "True", "--data_cache_dir", str(cache)]
    env = {**os.environ, "BENCH_START": repr(time.time()), "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "2",
           "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", PROBE, *flags], cwd=repo, env=env, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("BENCH ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"train.py failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("BENCH "):])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=665_000)
    ap.add_argument("--images", type=int, default=2000, help="Distinct image files the samples refer to.")
    ap.add_argument("--workdir", default="/tmp/bench_startup")
    ap.add_argument("--repo", default=str(REPO), help="The checkout whose train.py runs.")
    ap.add_argument("--baseline", action="store_true", help="Leave out flags the --repo checkout does not know.")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from llava_thanora.model.tiny import build_tiny_llava

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    data = work / f"mix{args.samples}.json"
    t = time.time()
    if not data.is_file():
        write_data(data, args.samples, args.images)
    if not (work / "images" / "coco" / f"{args.images - 1:06d}.png").is_file():
        write_images(work / "images", args.images)
    model = work / "tiny"
    if not (model / "config.json").is_file():
        build_tiny_llava(model)
    print(f"data {data} ({data.stat().st_size / 1e6:.0f} MB, {args.samples} samples) ready in {time.time() - t:.0f} s")
    cache = work / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    for label in ("cold (no cache)", "warm (cache present)"):
        marks = run(Path(args.repo), model, data, work / "images", cache, args.baseline)
        print(f"{label}: " + ", ".join(f"{k} {v:.1f} s" for k, v in marks.items()))


if __name__ == "__main__":
    main()
