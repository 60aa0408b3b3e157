"""LightningModules: what a training step computes and logs. They take a network, an optimizer
factory and a scheduler factory as plain Python callables, and plain values; nothing of Hydra."""
