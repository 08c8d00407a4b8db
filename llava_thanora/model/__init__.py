"""Model: the tiny offline LLaVA and loading of base models for training and inference."""
