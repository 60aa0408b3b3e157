"""Parameter groups and the Muon+AdamW optimizer, checked against torch's own classes."""

from __future__ import annotations

import copy

import torch
from torch import nn

from models.mlp import MLP
from models.resnet import ResNet
from optim.muon import MuonAdamW
from optim.optimizer import param_groups


def test_weight_decay_skips_biases_and_norms_unless_asked() -> None:
    net = ResNet(3, 10, blocks=[1], width=4)
    groups = param_groups(net, decay_norm_and_bias=False)
    small = [g for g in groups if g.get("weight_decay") == 0.0]
    assert len(small) == 1 and all(p.ndim < 2 for p in small[0]["params"])
    assert all(p.ndim >= 2 for g in groups if g not in small for p in g["params"])
    assert not any("weight_decay" in g for g in param_groups(net, decay_norm_and_bias=True))
    n = sum(p.numel() for p in net.parameters())
    assert sum(p.numel() for g in groups for p in g["params"]) == n  # every parameter, once


def test_matrix_group_holds_hidden_linear_weights_only() -> None:
    net = MLP(1, 8, 10, hidden=[32, 16])
    groups = param_groups(net, decay_norm_and_bias=False)
    matrices = next(g for g in groups if g.get("matrix"))["params"]
    assert [tuple(p.shape) for p in matrices] == [(32, 64), (16, 32)]  # not the head (10, 16)


def loss_of(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(net(x), y)


def test_muon_adamw_equals_torch_muon_plus_adamw() -> None:
    torch.manual_seed(0)
    net = MLP(1, 8, 10, hidden=[32, 16], dropout=0.0)
    ref = copy.deepcopy(net)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    opt = MuonAdamW(param_groups(net, False), lr=0.01, weight_decay=0.1)
    groups = param_groups(ref, False)
    kw = dict(lr=0.01, weight_decay=0.1)
    muon = torch.optim.Muon(
        [g for g in groups if g.get("matrix")], momentum=0.95, adjust_lr_fn="match_rms_adamw", **kw
    )
    adamw = torch.optim.AdamW([g for g in groups if not g.get("matrix")], betas=(0.9, 0.95), **kw)
    for _ in range(5):
        opt.zero_grad(), muon.zero_grad(), adamw.zero_grad()
        loss_of(net, x, y).backward()
        loss_of(ref, x, y).backward()
        opt.step(), muon.step(), adamw.step()
    for a, b in zip(net.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_muon_adamw_resumes_from_its_state_dict_and_follows_a_schedule() -> None:
    torch.manual_seed(1)
    net = MLP(1, 8, 10, hidden=[32], dropout=0.0)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))

    def make(n: nn.Module) -> tuple[MuonAdamW, torch.optim.lr_scheduler.LambdaLR]:
        o = MuonAdamW(param_groups(n, False), lr=0.01)
        return o, torch.optim.lr_scheduler.LambdaLR(o, lambda s: 1.0 / (1 + s))

    def steps(n: nn.Module, o: MuonAdamW, s: torch.optim.lr_scheduler.LambdaLR, k: int) -> None:
        for _ in range(k):
            o.zero_grad()
            loss_of(n, x, y).backward()
            o.step()
            s.step()

    opt, sched = make(net)
    steps(net, opt, sched, 3)
    saved_net, saved_opt, saved_sched = (
        copy.deepcopy(net.state_dict()),
        copy.deepcopy(opt.state_dict()),
        sched.state_dict(),
    )
    assert (
        {g["lr"] for g in opt.muon.param_groups}
        == {g["lr"] for g in opt.adamw.param_groups}
        == {0.01 / 4}
    )
    steps(net, opt, sched, 3)

    other = MLP(1, 8, 10, hidden=[32], dropout=0.0)
    other.load_state_dict(saved_net)
    opt2, sched2 = make(other)
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved_sched)
    steps(other, opt2, sched2, 3)
    for a, b in zip(net.parameters(), other.parameters(), strict=True):
        torch.testing.assert_close(a, b)
