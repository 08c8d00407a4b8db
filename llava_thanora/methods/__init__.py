"""Baselines compared with ThanoRA (DoRA, PiSSA, CorDA, MoE-LoRA, individual LoRAs, merging) and the method registry."""
