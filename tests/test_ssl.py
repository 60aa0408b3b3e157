"""Self-supervised pre-training and fine-tuning: the rotation task, loading a pre-trained encoder
by name, freezing it for a linear probe, and training on a class-stratified share of the labels."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest
import torch

from datamodules.digits import DigitsDataModule
from harness.config.checks import check_config
from harness.errors import ConfigError
from harness.run.build import build_net
from harness.run.recipe import train
from lightning_modules.rotation import RotationPrediction, rotate_batch
from tests.conftest import FAST, compose
from tests.test_training import train_losses

ENCODER_KEYS = ("stem.", "stages.")  # the ResNet's encoder; its head is "head."


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of the experiment=ssl_rotation preset after a few steps."""
    run_dir = tmp_path_factory.mktemp("ssl_rotation")
    results = train(compose(["experiment=ssl_rotation", *FAST]), run_dir)
    assert results["status"] == "finished" and 0 <= results["test/rot_acc"] <= 1
    return run_dir / "checkpoints" / "last.ckpt"


def net_state(ckpt: Path) -> dict[str, torch.Tensor]:
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    return {k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")}


def test_rotate_batch_gives_all_four_rotations_labelled_by_quarter_turns() -> None:
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).view(2, 3, 5, 5)  # (B, C, H, W)
    rotated, labels = rotate_batch(x)
    assert rotated.shape == (8, 3, 5, 5)
    assert labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    for k in range(4):
        for i in range(2):
            assert torch.equal(rotated[2 * k + i], torch.rot90(x[i], k, dims=(1, 2)))
    assert torch.equal(rotated[2], x[0].transpose(1, 2).flip(1))  # 90 degrees counter-clockwise
    with pytest.raises(ValueError, match="square"):
        rotate_batch(torch.zeros(1, 1, 4, 6))


def test_rotation_task_ignores_the_data_labels() -> None:
    from models.mlp import MLP

    module = RotationPrediction(MLP(1, 8, 10), torch.optim.SGD).eval()  # no dropout noise
    assert module.net.head.out_features == 4
    x = torch.randn(6, 1, 8, 8)
    with warnings.catch_warnings():  # self.log outside a Trainer warns and does nothing
        warnings.simplefilter("ignore")
        a = module.training_step((x, torch.zeros(6, dtype=torch.long)), 0)
        b = module.training_step((x, torch.randint(0, 10, (6,))), 0)
    assert torch.equal(a, b)


@pytest.mark.slow
def test_a_network_learns_to_predict_rotations(tmp_path: Path) -> None:
    results = train(compose(["task=rotation", "data=digits", "model=mlp", "model.dropout=0",
                             "optim=adam", "optim.lr=3e-3", "scheduler=constant", *FAST,
                             "trainer.max_steps=40", "trainer.overfit_batches=1"]), tmp_path)  # fmt: skip
    losses = train_losses(tmp_path)
    assert all(math.isfinite(v) for v in losses) and losses[-1] < 0.2 * losses[0], losses
    assert results["best"]["val/rot_acc"] > 0.4  # 16 unseen images x 4 rotations; chance: 0.25
    assert results["monitor"] == "val/rot_acc"


def test_encoder_loads_by_name_and_the_head_stays_new(pretrained: Path) -> None:
    cfg = compose(["experiment=ssl_finetune", f"pretrained={pretrained}"])
    net = build_net(cfg, {"in_channels": 1, "image_size": 8, "num_classes": 10})
    saved, own = net_state(pretrained), net.state_dict()
    encoder = [k for k in own if k.startswith(ENCODER_KEYS)]
    assert encoder and all(torch.equal(own[k], saved[k]) for k in encoder)
    assert saved["head.weight"].shape[0] == 4 and own["head.weight"].shape[0] == 10
    assert all(p.requires_grad for p in net.parameters())  # finetune=full trains everything


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["experiment=ssl_finetune", "model.width=8"],
         r"shape: stem\.0\.weight \(16, 1, 3, 3\) there, \(8, 1, 3, 3\) here"),
        (["experiment=ssl_finetune", "model.blocks=[1,1]"], r"unexpected: stages\.2\."),
        (["data=digits", "model=cnn"],
         r"models\.resnet\.ResNet trained by .*RotationPrediction.*missing: encoder\."),
    ],
)  # fmt: skip
def test_an_encoder_that_does_not_fit_is_a_clear_error(
    pretrained: Path, overrides: list[str], message: str
) -> None:
    cfg = compose([*overrides, f"pretrained={pretrained}"])
    with pytest.raises(ConfigError, match=message) as error:
        build_net(cfg, {"in_channels": 1, "image_size": 8, "num_classes": 10})
    assert len(str(error.value)) < 400 and "\n" not in str(error.value)


def test_a_missing_or_foreign_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pretrained must be null or the path of a checkpoint"):
        check_config(compose(["data=digits", f"pretrained={tmp_path / 'nope.ckpt'}"]))
    with pytest.raises(ConfigError, match="finetune must be full or linear, got 'probe'"):
        check_config(compose(["data=digits", "finetune=probe"]))
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"weights": torch.zeros(1)}, foreign)
    cfg = compose(["experiment=ssl_finetune", f"pretrained={foreign}"])
    with pytest.raises(ConfigError, match="is not a readable checkpoint"):
        build_net(cfg, {"in_channels": 1, "image_size": 8, "num_classes": 10})


@pytest.mark.slow
def test_linear_probe_trains_the_head_only_and_keeps_batchnorm_statistics(
    pretrained: Path, tmp_path: Path
) -> None:
    results = train(compose(["experiment=ssl_finetune", f"pretrained={pretrained}",
                             "finetune=linear", *FAST]), tmp_path)  # fmt: skip
    assert results["status"] == "finished" and results["steps"] == 4
    before, after = net_state(pretrained), net_state(tmp_path / "checkpoints" / "last.ckpt")
    encoder = [k for k in after if k.startswith(ENCODER_KEYS)]
    assert any("running_mean" in k for k in encoder)
    moved = [k for k in encoder if not torch.equal(before[k], after[k])]
    assert not moved, moved  # weights, BatchNorm running statistics and batch counts alike
    assert before["head.weight"].shape != after["head.weight"].shape  # a new, 10-way head
    first = train(compose(["experiment=ssl_finetune", f"pretrained={pretrained}", "finetune=linear",
                           *FAST, "trainer.max_steps=1"]), tmp_path / "one")  # fmt: skip
    assert first["steps"] == 1
    head_0 = net_state(tmp_path / "one" / "checkpoints" / "last.ckpt")["head.weight"]
    assert not torch.equal(head_0, after["head.weight"])  # the head did train


def test_frozen_submodules_stay_in_eval_mode_whatever_train_is_called_with() -> None:
    from models.encoder import freeze_encoder
    from models.resnet import ResNet

    net = ResNet(1, 10, blocks=[1], width=4)
    freeze_encoder(net)
    module = RotationPrediction(net, torch.optim.SGD)
    module.train()
    assert not net.stem.training and not net.stages.training and not net.stem[1].training
    assert net.head.training and module.training
    module.eval()
    assert not net.head.training
    assert [n for n, p in module.named_parameters() if p.requires_grad] == [
        "net.head.weight",
        "net.head.bias",
    ]


def test_full_fine_tuning_moves_the_encoder(pretrained: Path, tmp_path: Path) -> None:
    results = train(
        compose(["experiment=ssl_finetune", f"pretrained={pretrained}", *FAST]), tmp_path
    )
    assert results["status"] == "finished" and 0 <= results["test/acc"] <= 1
    before, after = net_state(pretrained), net_state(tmp_path / "checkpoints" / "last.ckpt")
    assert not torch.equal(before["stem.0.weight"], after["stem.0.weight"])


def test_label_fraction_is_a_seeded_class_stratified_share_of_the_training_split() -> None:
    full = DigitsDataModule()
    full.setup()
    (x, y), n = full.splits["train"], len(full.splits["train"][1])
    a, b, c = (DigitsDataModule(label_fraction=0.1, seed=s) for s in (0, 0, 1))
    for dm in (a, b, c):
        dm.setup()
    xa, ya = a.splits["train"]
    assert len(ya) == round(0.1 * n)
    counts, shares = torch.bincount(y, minlength=10), torch.bincount(ya, minlength=10)
    assert ((shares - 0.1 * counts).abs() < 1).all()  # each class keeps its share, rounded
    # a subset of the training split, each image with its own label
    pairs = {(bytes(img.flatten().tolist()), int(lbl)) for img, lbl in zip(x, y, strict=True)}
    assert all(
        (bytes(i.flatten().tolist()), int(lb)) in pairs for i, lb in zip(xa, ya, strict=True)
    )
    assert torch.equal(xa, b.splits["train"][0])
    assert not torch.equal(xa, c.splits["train"][0])
    for split in ("val", "test"):
        assert torch.equal(a.splits[split][0], full.splits[split][0])


def test_a_label_fraction_too_small_for_the_data_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"label_fraction must be a number in \(0, 1\], got 0"):
        DigitsDataModule(label_fraction=0)
    with pytest.raises(ValueError, match=r"keeps 6 of 1294 .* fewer than the 10 classes"):
        DigitsDataModule(label_fraction=0.005).setup()
    with pytest.raises(ConfigError, match=r"keeps 13 training images, fewer than one batch"):
        train(compose(["data=digits", "model=mlp", "data.label_fraction=0.01", *FAST]), tmp_path)
