"""The HF Trainer, specialised for LLaVA adapters.

What it adds to `transformers.Trainer`:
- LLaVA's parameter groups: the multimodal projector can have its own learning rate;
- length-grouped sampling (`group_by_length`, LLaVA's `--group_by_modality_length`) from the lengths the dataset
  estimates without tokenizing (`sampler.py`);
- the method's extra loss terms (ThanoRA's penalty, MoE-LoRA's balance loss), each logged on its own next to the
  language-model loss;
- a non-finite loss stops the run at once, on every rank, with a message saying where;
- EVERY checkpoint (not only the last) holds the adapter, `non_lora_trainables.safetensors` and the method's
  files, gathered from ZeRO-3 partitions; resuming reads the same files back.
"""

from __future__ import annotations

import os
from collections import defaultdict

import torch
from transformers import Trainer
from transformers.trainer import TRAINING_ARGS_NAME

from ..data.conversation import write_prompt_format
from ..distributed import all_reduce_max_, all_reduce_sum_, gathered, is_zero3, world_size
from ..methods.base import Method
from ..model.families import family_of
from .sampler import LengthGroupedSampler


class NonFiniteLossError(FloatingPointError):
    pass


def gather_trainable(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every trainable tensor, full-size and on CPU. Under ZeRO-3 each rank holds a slice (shape [0] outside
    forward), so the slices are gathered first; all ranks must call this together."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    with gathered([p for _, p in named]):
        return {n: p.detach().to("cpu", copy=True) for n, p in named}


class LlavaTrainer(Trainer):
    def __init__(self, *args, method: Method, mm_projector_lr: float | None = None, prompt_format=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.method = method
        self.prompt_format = prompt_format  # recorded in every checkpoint, so evaluation asks the same way
        self.mm_projector_lr = mm_projector_lr
        # Detached tensors, converted to floats only when logged: an .item() per step would sync the GPU each time.
        self._pending_logs: dict[str, list[torch.Tensor]] = defaultdict(list)
        self._zero3 = is_zero3(self.model)
        self.family = family_of(self.model)
        if self._zero3 and self.family.image_token is not None:
            # the blank image's inputs, made once by the family's own image processing
            self._blank_inputs = self.family.blank_image_inputs(self.processing_class)
            root = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
            self.family.decoder(root).register_forward_pre_hook(self._run_vision_on_blank, with_kwargs=True)

    # ----------------------------------------------------------------------------------------------- sampler
    def _get_train_sampler(self, train_dataset=None):
        dataset = self.train_dataset if train_dataset is None else train_dataset
        strategy, by_modality = self.args.train_sampling_strategy, self.args.group_by_modality_length
        if strategy == "batch_rebalance":
            raise ValueError("--train_sampling_strategy batch_rebalance would tokenize every sample to measure it; "
                             "use group_by_length or --group_by_modality_length (lengths known without tokenizing)")
        if strategy != "group_by_length" and not by_modality:
            return super()._get_train_sampler(train_dataset)
        if not hasattr(dataset, "lengths"):
            raise ValueError(f"length grouping needs a dataset with lengths(); {type(dataset).__name__} has none")
        args = self.args
        step = args.train_batch_size * args.gradient_accumulation_steps * max(1, args.world_size)
        groups = [int(x) for x in dataset.has_image()] if by_modality else None
        return LengthGroupedSampler(dataset.lengths(), step, groups,
                                    seed=args.data_seed if args.data_seed is not None else args.seed)

    # ----------------------------------------------------------------------------------------------- optimizer
    def create_optimizer(self, model=None):
        opt_model = self.model if model is None else model
        if self.optimizer is not None or self.mm_projector_lr is None:
            return super().create_optimizer(model)
        decay = set(self.get_decay_parameter_names(opt_model))
        groups: dict[tuple[bool, bool], list] = defaultdict(list)
        for name, p in opt_model.named_parameters():
            if p.requires_grad:
                groups[(name in decay, self.family.is_projector(name))].append(p)
        param_groups = []
        # Projector groups last, so the logged learning rate (the first group's) is the main one.
        for (has_decay, is_projector), params in sorted(groups.items(), key=lambda kv: kv[0][1]):
            group = {"params": params, "weight_decay": self.args.weight_decay if has_decay else 0.0}
            if is_projector:
                group["lr"] = self.mm_projector_lr
            param_groups.append(group)
        cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
        self.optimizer = cls(param_groups, **kwargs)
        return self.optimizer

    # ----------------------------------------------------------------------------------------------- loss
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        training = model.training
        if training:
            self.method.start_step(self.model)
        self._blank_image_needed = self._zero3 and "pixel_values" not in inputs
        lm_loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        loss = lm_loss
        if training:
            # When the LM loss is already normalised over the whole accumulated batch, the Trainer will not divide
            # it by the accumulation steps; the per-micro-batch extra terms must then be divided here.
            scaled = self.model_accepts_loss_kwargs and num_items_in_batch is not None
            per_step = self.current_gradient_accumulation_steps if scaled else 1
            self._pending_logs["lm_loss"].append(lm_loss.detach().float() * per_step)
            for name, (weight, value) in self.method.extra_losses(self.model).items():
                self._pending_logs[name].append(value.detach().float())
                if weight:
                    loss = loss + weight * value / per_step
            self._check_finite(loss)
        return (loss, outputs) if return_outputs else loss

    def _run_vision_on_blank(self, module, args, kwargs):
        """Forward pre-hook on the language model: for a text-only batch under ZeRO-3, run the vision tower and
        projector on a blank image right here (between the token embedding and the decoder, where Llava runs them
        for image batches) and add 0 x the result to the decoder's input embeddings.

        Under ZeRO-3 parameters are gathered collectively as modules run, forward and backward, so every rank must
        run the same modules in the same order; a rank whose batch has no image would otherwise skip the vision
        path and the ranks would hang. LLaVA feeds text-only samples a dummy image for the same reason. Two details
        keep the ranks identical: the call is the image path's own (transformers runs the tower only up to the
        selected layer), and the zero term joins the decoder's input, not the output of the frozen embedding (a
        trained projector would make that output require grad, and that rank alone would gather the embedding
        again in backward).
        """
        if not getattr(self, "_blank_image_needed", False) or kwargs.get("inputs_embeds") is None:
            return None
        root = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        embeds = kwargs["inputs_embeds"]
        features = self.family.blank_vision(root, self._blank_inputs)
        return args, {**kwargs, "inputs_embeds": embeds + 0.0 * features.to(embeds.dtype)}

    def _check_finite(self, loss: torch.Tensor) -> None:
        bad = torch.tensor(0.0 if torch.isfinite(loss.detach()).all() else 1.0, device=loss.device)
        if all_reduce_max_(bad).item():  # stop every rank, not just one
            raise NonFiniteLossError(
                f"non-finite loss ({loss.item()}) at step {self.state.global_step} (epoch {self.state.epoch}); "
                "stopping instead of training on. Try a lower --learning_rate, bf16 instead of fp16, or check the "
                "data of this step. The last checkpoint is unaffected.")

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._pending_logs:
            # Every rank logs (the Trainer gathers `loss` across ranks first), so the terms are averaged over ranks
            # too, like `loss`; one all-reduce for all of them.
            names = sorted(self._pending_logs)
            means = torch.stack([torch.stack(self._pending_logs[name]).mean() for name in names])
            means = all_reduce_sum_(means.to(self.args.device)) / world_size()
            for name, value in zip(names, means.tolist()):
                logs[name] = round(value, 6)
            self._pending_logs.clear()
        super().log(logs, start_time)

    # ----------------------------------------------------------------------------------------------- saving
    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        output_dir = output_dir or self.args.output_dir
        trainable = gather_trainable(self.model)  # collective under ZeRO-3: every rank takes part
        if not self.args.should_save:
            return
        os.makedirs(output_dir, exist_ok=True)
        self.method.save(self.model, output_dir, trainable)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(output_dir)
        if self.prompt_format is not None:
            write_prompt_format(output_dir, self.prompt_format)
        torch.save(self.args, os.path.join(output_dir, TRAINING_ARGS_NAME))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        # Called for non-DeepSpeed runs; under DeepSpeed the engine restores trainable weights from its own files.
        self.method.load_trainable(self.model, resume_from_checkpoint)
