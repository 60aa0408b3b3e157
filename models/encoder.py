"""Moving an encoder between networks. Every net in models/ is an encoder (everything but `head`)
and a `head` Linear: pre-training and fine-tuning share the encoder and each brings its own head.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

HEAD = "head."  # state-dict prefix of the head's tensors


def _encoder_items(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if not k.startswith(HEAD)}


def _listed(keys: list[str], most: int = 3) -> str:
    more = f" (+{len(keys) - most} more)" if len(keys) > most else ""
    return ", ".join(keys[:most]) + more


def load_encoder(net: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Copy the encoder tensors of `state` (keys as in net.state_dict()) into `net` by name; its
    head stays as built. ValueError naming the mismatches unless the encoders fit exactly."""
    own, theirs = _encoder_items(net.state_dict()), _encoder_items(state)
    missing = [k for k in own if k not in theirs]
    unexpected = [k for k in theirs if k not in own]
    shapes = [
        f"{k} {tuple(theirs[k].shape)} there, {tuple(v.shape)} here"
        for k, v in own.items()
        if k in theirs and theirs[k].shape != v.shape
    ]
    problems = [
        f"{label}: {_listed(keys)}"
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape", shapes))
        if keys
    ]
    if problems:
        raise ValueError(
            "; ".join(problems)
        )  # e.g. "missing: a, b; shape: c (8,) there, (4,) here"
    net.load_state_dict(theirs, strict=False)  # every key but the head's, checked above


def freeze_encoder(net: nn.Module) -> None:
    """Stop training everything but the head (a linear probe when the head is one Linear). The
    TrainingModule keeps fully frozen submodules in eval mode, so BatchNorm statistics stay put."""
    for name, p in net.named_parameters():
        if not name.startswith(HEAD):
            p.requires_grad_(False)
