"""Check that a checkpoint written here (merged or converted) loads with the last transformers 4.x release and
gives the same logits as with this project's transformers 5.

    python scripts/check_transformers4.py --model-path MERGED [--venv /tmp/llava-thanora-hf4] [--version 4.57.6]

lmms-eval, vLLM and LLaVA-derived tools often sit on transformers 4.x. The script makes (or reuses) a throwaway
virtualenv with `torch==2.13.0` (the CPU wheel) and `transformers==<version>`, never touching this project's own
environment. It builds one input here (a llava_v1 prompt with one image, through the checkpoint's processor), saves
the ids, pixels and transformers 5's logits, then in the 4.x environment loads the checkpoint with
`LlavaForConditionalGeneration.from_pretrained` and `AutoProcessor.from_pretrained` and reports, as one JSON line:
missing / unexpected weights, whether 4.x's processor gives the same ids and pixels, and the largest logit
difference on the same inputs. Exit status 1 when weights are missing or unexpected or the logits differ by more
than --atol.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import torch

FOUR_X = textwrap.dedent("""
    import json, sys, torch, transformers
    from PIL import Image
    from safetensors.torch import load_file
    from transformers import AutoProcessor, LlavaForConditionalGeneration
    path, io = sys.argv[1], sys.argv[2]
    ref = load_file(io + "/reference.safetensors")
    meta = json.load(open(io + "/meta.json"))
    model, info = LlavaForConditionalGeneration.from_pretrained(path, output_loading_info=True)
    out = {"transformers": transformers.__version__, "missing": sorted(info["missing_keys"]),
           "unexpected": sorted(info["unexpected_keys"])}
    try:
        processor = AutoProcessor.from_pretrained(path)
        enc = processor(text=meta["prompt"], images=Image.open(io + "/image.png"), return_tensors="pt")
        out["processor"] = type(processor.tokenizer).__name__ + " + " + type(processor.image_processor).__name__
        out["same_ids"] = enc["input_ids"].tolist() == ref["input_ids"].tolist()
        out["pixel_max_diff"] = float((enc["pixel_values"] - ref["pixel_values"]).abs().max())
    except Exception as e:  # report, do not hide: a processor that does not load is a finding
        out["processor"] = f"FAILED: {type(e).__name__}: {e}"[:300]
    with torch.no_grad():
        logits = model.eval()(input_ids=ref["input_ids"], pixel_values=ref["pixel_values"]).logits
    out["logits_max_diff"] = float((logits - ref["logits"]).abs().max())
    print(json.dumps(out))
""")


def ensure_venv(venv: Path, version: str) -> Path:
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import transformers; print(transformers.__version__)"]
    if python.is_file() and subprocess.run(probe, capture_output=True, text=True).stdout.strip() == version:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # torch pinned: an unpinned one pulls a multi-GB CUDA build; 4.x needs no package of this project
    subprocess.run([str(python), "-m", "pip", "install", "-q", "torch==2.13.0", f"transformers=={version}",
                    "safetensors", "pillow", "numpy"], check=True)
    return python


def reference(model_path: str, io: Path) -> None:
    """Inputs and transformers 5 logits of one llava_v1 question about a fixed synthetic image."""
    from PIL import Image
    from safetensors.torch import save_file
    from transformers import LlavaForConditionalGeneration

    from llava_thanora.data.conversation import PromptFormat
    from llava_thanora.data.images import load_processor

    processor = load_processor(model_path)  # transformers 5's side as training and eval.* load it (PIL pixels)
    prompt = PromptFormat.from_processor(processor, "llava_v1").generation_prompt("What is in the image?", 1)
    gen = torch.Generator().manual_seed(0)
    pixels = (torch.rand(48, 64, 3, generator=gen) * 255).to(torch.uint8).numpy()
    Image.fromarray(pixels).save(io / "image.png")
    enc = processor(text=prompt, images=Image.open(io / "image.png"), return_tensors="pt")
    model = LlavaForConditionalGeneration.from_pretrained(model_path).eval()
    with torch.no_grad():
        logits = model(input_ids=enc["input_ids"], pixel_values=enc["pixel_values"]).logits
    save_file({"input_ids": enc["input_ids"].contiguous(), "pixel_values": enc["pixel_values"].contiguous(),
               "logits": logits.contiguous()}, str(io / "reference.safetensors"))
    (io / "meta.json").write_text(json.dumps({"prompt": prompt}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-path", required=True, help="A llava-hf checkpoint folder (merged or converted).")
    ap.add_argument("--venv", default="/tmp/llava-thanora-hf4", help="The throwaway virtualenv (made if missing).")
    ap.add_argument("--version", default="4.57.6", help="The transformers 4.x release to check with.")
    ap.add_argument("--atol", type=float, default=1e-4, help="Largest accepted logit difference.")
    args = ap.parse_args(argv)
    python = ensure_venv(Path(args.venv), args.version)
    with tempfile.TemporaryDirectory() as tmp:
        reference(args.model_path, Path(tmp))
        script = Path(tmp) / "check.py"
        script.write_text(FOUR_X)
        proc = subprocess.run([str(python), str(script), args.model_path, tmp], capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        return 1
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["model_path"] = args.model_path
    print(json.dumps(result))
    ok = not result["missing"] and not result["unexpected"] and result["logits_max_diff"] <= args.atol
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
