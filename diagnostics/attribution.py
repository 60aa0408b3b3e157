"""Which parts of an input drive a classifier's output: gradient-based attributions.

`model` is any callable from an input batch to logits (B, num_classes). Attributions are for one
class per example (`target`, shape (B,)), usually the predicted one. Callers put the model in
eval mode; these functions only compute.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

Model = Callable[..., torch.Tensor]
PATH_BATCH = 256  # inputs in one pass of integrated gradients (8 images x 32 points: one pass)


def _picked(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return logits.gather(1, target.view(-1, 1)).sum()  # sum over the batch: one backward pass


def input_gradients(model: Model, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """d logit[target] / d x, same shape as x (Simonyan et al., 2014, "Deep Inside Convolutional
    Networks"). The usual saliency map is its absolute value, max over channels."""
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(_picked(model(x), target), x)
    return grad


def integrated_gradients(
    model: Model,
    x: torch.Tensor,
    target: torch.Tensor,
    baseline: torch.Tensor | None = None,
    steps: int = 32,
) -> torch.Tensor:
    """(x - baseline) times the mean gradient along the straight path from baseline to x
    (Sundararajan et al., 2017, "Axiomatic Attribution for Deep Networks"), same shape as x.
    Completeness: the attributions of an example sum to logit(x) - logit(baseline), up to the
    error of the midpoint rule over `steps` points. baseline defaults to zeros: for inputs
    normalised with the dataset mean, that is the mean image. The path's points go through the
    model together (PATH_BATCH inputs a pass): examples must not affect each other (eval mode)."""
    if steps < 1:
        raise ValueError(f"integrated gradients needs steps >= 1, got {steps}")
    x = x.detach()
    baseline = torch.zeros_like(x) if baseline is None else baseline.detach().expand_as(x)
    total = torch.zeros_like(x)
    alphas = (torch.arange(steps, device=x.device, dtype=x.dtype) + 0.5) / steps  # midpoint rule
    per_pass = max(1, PATH_BATCH // len(x))  # points of the path in one forward/backward pass
    for chunk in alphas.split(per_pass):
        a = chunk.view(-1, *[1] * x.dim())  # (S, 1, ...): one path point per row
        path = (baseline + a * (x - baseline)).flatten(0, 1)  # (S * B, ...), point-major
        grads = input_gradients(model, path, target.repeat(len(chunk)))
        total += grads.view(len(chunk), *x.shape).sum(0)
    return (x - baseline) * total / steps


def token_attributions(
    model: Model, inputs: Any, target: torch.Tensor, embedding: nn.Embedding
) -> torch.Tensor:
    """Gradient x input on the token embeddings (Denil et al., 2014; Li et al., 2016), summed
    over the embedding dimension: (B, T), one score per token, positive where the token pushes
    towards `target`. `embedding` is the model's token embedding layer; `inputs` what the model
    takes (tokens, or (tokens, lengths))."""
    captured: list[torch.Tensor] = []

    def keep(_module: nn.Module, _args: Any, out: torch.Tensor) -> None:
        captured.append(out)  # (B, T, E)

    handle = embedding.register_forward_hook(keep)
    try:
        logits = model(inputs)
    finally:
        handle.remove()
    if len(captured) != 1:
        raise RuntimeError(f"the embedding layer ran {len(captured)} times in one forward pass")
    (emb,) = captured
    (grad,) = torch.autograd.grad(_picked(logits, target), emb)
    return (grad * emb).sum(-1).detach()  # (B, T)
