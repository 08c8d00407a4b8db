"""What a model family answers for the rest of the code: classes, module roles, images, the blank vision pass.

Everything outside `llava_thanora/model/families/` asks a `Family` instead of naming a module or a class, so a new
family (a new `model_type`) is one file here plus one line in `__init__.py`'s table. The family is chosen from the
checkpoint's `config.json` (`model_type`), never from folder names.

A family's processor is what training and evaluation tokenize and preprocess with: it has `.tokenizer`,
`.chat_template`, `.image_processor` (None for text-only models) and `replace_image_token(image_inputs, i)`, the
text that image i of a processed batch expands into (transformers' own rule, size-dependent for anyres and
Qwen2-VL). No family needs torchvision: where transformers' processor class insists on a video processor, the
family builds an image-only subclass (`processors.py`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn


def default_attn_implementation() -> str:
    """flash_attention_2 only where it can run (CUDA and the package present); sdpa everywhere else."""
    if torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def input_size(image_processor) -> int:
    """The side of the square input the image processor produces (crop size, else shortest edge)."""
    crop = getattr(image_processor, "crop_size", None) or {}
    size = getattr(image_processor, "size", None) or {}
    get = (lambda d, k: d.get(k) if isinstance(d, dict) else getattr(d, k, None))
    return int(get(crop, "height") or get(size, "shortest_edge") or get(size, "height") or 336)


class Family:
    """Base class. Subclasses set the class attributes and override what differs."""

    name: ClassVar[str] = "base"
    model_types: ClassVar[tuple[str, ...]] = ()
    """`config.json` `model_type` values this family loads."""
    model_class: ClassVar[str] = ""
    """The transformers class that loads the checkpoint (a name in `transformers`)."""
    image_token: ClassVar[str | None] = None
    """The placeholder the processor expands per image (None: a text-only family)."""
    vision_prefixes: ClassVar[tuple[str, ...]] = ()
    """Module-name parts of the vision tower (frozen; never adapted by default)."""
    projector_prefixes: ClassVar[tuple[str, ...]] = ()
    """Module-name parts of the vision-language projector (what `--tune_mm_projector` trains); () = none."""
    image_inputs_keys: ClassVar[tuple[str, ...]] = ("pixel_values",)
    """The image processor's outputs that the model's forward takes."""
    default_aspect_ratio: ClassVar[str] = "original"
    """`--image_aspect_ratio` when none is given: what the family was trained with."""

    # ----------------------------------------------------------------------------------------- loading
    def load_model(self, path: str, dtype: torch.dtype, attn_implementation: str | None = None) -> nn.Module:
        import transformers

        cls = getattr(transformers, self.model_class)
        return cls.from_pretrained(path, dtype=dtype,
                                   attn_implementation=attn_implementation or default_attn_implementation())

    def load_processor(self, path: str):
        """The checkpoint's processor, its image processor on the PIL backend (`data.images.load_processor`)."""
        from ...data.images import load_processor

        return load_processor(path)

    def set_pixel_bounds(self, processor, min_pixels: int | None, max_pixels: int | None) -> None:
        """`--image_min_pixels` / `--image_max_pixels`: only dynamic-resolution families have such bounds."""
        if min_pixels is not None or max_pixels is not None:
            raise ValueError(f"--image_min_pixels / --image_max_pixels: {self.name} models resize images to a fixed "
                             f"resolution, so the bounds have no effect; remove them")

    # ----------------------------------------------------------------------------------------- module roles
    def is_vision(self, name: str) -> bool:
        return any(part in name for part in self.vision_prefixes)

    def is_projector(self, name: str) -> bool:
        return any(part in name for part in self.projector_prefixes)

    @property
    def has_projector(self) -> bool:
        return bool(self.projector_prefixes)

    def lora_target_names(self, model: nn.Module) -> list[str]:
        """The default LoRA targets: every nn.Linear of the language model (not vision, projector or lm_head)."""
        return [name for name, module in model.named_modules()
                if isinstance(module, nn.Linear) and not self.is_vision(name) and not self.is_projector(name)
                and not name.endswith("lm_head")]

    def projector_parameters(self, model: nn.Module) -> list[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in model.named_parameters() if self.is_projector(n)]

    # ----------------------------------------------------------------------------------------- images
    def process_images(self, processor, images: list) -> tuple[dict[str, torch.Tensor], list[int]]:
        """(model inputs of these images, image tokens each expands into), the images of ONE sample."""
        if self.image_token is None:
            raise ValueError(f"{self.name} models have no vision tower: samples with images cannot be used")
        out = processor.image_processor(images, return_tensors="pt")
        inputs = {k: out[k] for k in self.image_inputs_keys if k in out}
        counts = [processor.replace_image_token(out, i).count(self.image_token) for i in range(len(images))]
        return inputs, counts

    def token_inputs(self, input_ids: torch.Tensor, image_token_id: int | None) -> dict[str, torch.Tensor]:
        """Extra per-token model inputs derived from the ids (none for most families)."""
        return {}

    def collate_images(self, per_sample: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """The image inputs of a batch: each key concatenated over the samples that have images."""
        keys = {k for inputs in per_sample for k in inputs}
        return {k: torch.cat([inputs[k] for inputs in per_sample if k in inputs]) for k in sorted(keys)}

    def nominal_image_tokens(self, processor) -> int:
        """Image tokens of a typical image (a square at the processor's input size): the length estimate of a
        sample before its images are opened (the real count is used when it is drawn)."""
        from PIL import Image

        if self.image_token is None:
            return 0
        size = input_size(processor.image_processor)
        return self.process_images(processor, [Image.new("RGB", (size, size))])[1][0]

    def blank_image_inputs(self, processor) -> dict[str, torch.Tensor]:
        """The processed inputs of one black image at the image processor's input size (see `blank_vision`)."""
        from PIL import Image

        size = input_size(processor.image_processor)
        return self.process_images(processor, [Image.new("RGB", (size, size))])[0]

    def decoder(self, model: nn.Module) -> nn.Module:
        """The decoder that takes the merged text and image embeddings (where the blank vision pass joins)."""
        return model.model.language_model

    def blank_vision(self, model: nn.Module, blank_inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The vision path (tower and projector) run on `blank_image_inputs`, summed. Under ZeRO-3 every rank must
        gather the same parameters in the same order, so a rank whose batch has no image adds 0 x this where the
        model would run its vision path."""
        dtype = next(p.dtype for p in model.parameters() if p.is_floating_point())
        device = next(model.parameters()).device
        inputs = {k: v.to(device, dtype) if v.is_floating_point() else v.to(device) for k, v in blank_inputs.items()}
        features = model.get_image_features(**inputs, return_dict=True)
        pooled = getattr(features, "pooler_output", features)
        parts = pooled if isinstance(pooled, (list, tuple)) else [pooled]
        return sum(p.float().sum() for p in parts)

    def save_merged(self, model: nn.Module, processor, directory) -> Path:
        """Write a merged model and its processor as an ordinary checkpoint of this family."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(out)
        processor.save_pretrained(str(out))
        return out

    # ----------------------------------------------------------------------------------------- tiny checkpoints
    tiny_special_tokens: ClassVar[tuple[str, ...]] = ()
    """Tokens a tiny checkpoint's tokenizer needs besides `<image>` and `<pad>` (e.g. Qwen's chat and vision
    markers)."""

    def tiny(self, tokenizer, cfg) -> tuple[Any, Any]:
        """(model config, processor) of a tiny random checkpoint of this family (`python -m
        llava_thanora.model.tiny --family NAME`), for `tokenizer` and the sizes of `cfg` (a TinyConfig)."""
        raise NotImplementedError(f"no tiny checkpoint for family {self.name}")

    # ----------------------------------------------------------------------------------------- config checks
    def describe(self, model: nn.Module) -> str:
        """One line for the log: which family and which vision tower the checkpoint holds."""
        vision = getattr(model.config, "vision_config", None)
        tower = getattr(vision, "model_type", None) if vision is not None else None
        return f"family {self.name} ({type(model).__name__}" + (f", vision tower {tower})" if tower else ")")
