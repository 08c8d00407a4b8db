"""Data: LLaVA JSON loading, validation, prompts, label masks, images, collation."""
