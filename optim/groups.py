"""Parameter groups: which weights get weight decay, and which are hidden matrices (Muon's)."""

from __future__ import annotations

from typing import Any

from torch import nn


def param_groups(module: nn.Module, decay_norm_and_bias: bool) -> list[dict[str, Any]]:
    """Trainable parameters in groups.

    Unless decay_norm_and_bias, tensors with fewer than two dimensions (biases, norm scales and
    shifts) get weight_decay=0: decaying them towards zero only hurts (the usual practice since
    Goyal et al., 2017; nanoGPT does the same). Hidden weight matrices (2-D, other than
    embeddings and the network's output `head`) form their own group tagged "matrix": True, which
    Muon reads (optim/muon.py) and every other optimizer ignores.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    outer = {id(m.weight) for m in module.modules() if isinstance(m, nn.Embedding)}
    for m in module.modules():
        head = getattr(m, "head", None)
        if isinstance(head, nn.Module):
            outer |= {id(p) for p in head.parameters()}
    small = [p for p in params if p.ndim < 2]
    matrices = [p for p in params if p.ndim == 2 and id(p) not in outer]
    rest = [p for p in params if p.ndim >= 2 and not (p.ndim == 2 and id(p) not in outer)]
    groups = [{"params": matrices, "matrix": True}, {"params": rest}]
    groups.append(
        {"params": small} if decay_norm_and_bias else {"params": small, "weight_decay": 0.0}
    )
    return [g for g in groups if g["params"]]
