"""Training: arguments, Trainer subclass, saving/resuming, DeepSpeed-on-CPU fixes."""
