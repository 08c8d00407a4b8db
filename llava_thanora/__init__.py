"""llava-thanora: multi-task LoRA fine-tuning of LLaVA with ThanoRA."""
