"""Muon on hidden weight matrices, AdamW on everything else, as one torch Optimizer.

torch.optim.Muon (Jordan et al., 2024) only takes 2-D parameters, and its authors leave
embeddings, the output layer, biases, norms (and here convolution filters, which torch's Muon
does not reshape) to AdamW. With adjust_lr_fn="match_rms_adamw" (Liu et al., 2025, "Muon is
Scalable for LLM Training") Muon's update has AdamW's RMS, so one lr and one weight decay serve
both halves and a learning-rate sweep compares like with like.

Parameter groups tagged {"matrix": True} (see optim/optimizer.param_groups) go to Muon.
Both inner optimizers share this optimizer's `state` and its group dicts, so schedulers,
state_dict and Lightning see one ordinary optimizer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import AdamW, Muon, Optimizer


class MuonAdamW(Optimizer):
    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        weight_decay: float = 0.05,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = "match_rms_adamw",
        betas: tuple[float, float] = (0.9, 0.95),
        eps: float = 1e-8,
    ) -> None:
        groups = list(params)
        if groups and not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        matrices = [g for g in groups if g.get("matrix")]
        others = [g for g in groups if not g.get("matrix")]
        self._n_muon = len(matrices)
        # Muon/AdamW check their own arguments; an empty half is given no optimizer at all.
        muon_kw = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
                       ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn)  # fmt: skip
        adamw_kw = dict(lr=lr, weight_decay=weight_decay, betas=tuple(betas), eps=eps)
        self.muon = Muon(matrices, **muon_kw) if matrices else None
        self.adamw = AdamW(others, **adamw_kw) if others else None
        super().__init__([p for g in groups for p in g["params"]], {**adamw_kw, **muon_kw})
        # Replace the base class's copies by the inner optimizers' own group dicts (complete with
        # each algorithm's defaults), so an lr scheduler's writes reach the inner optimizers.
        self.param_groups = [
            g for inner in (self.muon, self.adamw) if inner for g in inner.param_groups
        ]
        self._share()

    def _share(self) -> None:
        k = self._n_muon
        if self.muon is not None:
            self.muon.param_groups, self.muon.state = self.param_groups[:k], self.state
        if self.adamw is not None:
            self.adamw.param_groups, self.adamw.state = self.param_groups[k:], self.state

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for inner in (self.muon, self.adamw):
            if inner is not None:
                inner.step()
        return loss

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)  # builds new self.param_groups and self.state
        self._share()
