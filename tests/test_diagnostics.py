"""Pictures, optimizer diagnostics and throughput: the attribution methods against what they must
equal, the figures' labels, and one real run that writes every picture as a PNG, to an offline
W&B run and into the HTML report."""

from __future__ import annotations

import contextlib
import csv
import json
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, default_collate

from diagnostics import figures
from diagnostics.attribution import input_gradients, integrated_gradients, token_attributions
from diagnostics.optimizer import layer_groups, state_bytes, update_ratio
from diagnostics.pictures import Predictions, saliency_maps
from harness.report.run_page import main as report_main
from harness.run import recipe
from harness.tracking.wandb import labelled, run_labels
from harness.tracking.wandb_records import records
from tests.conftest import compose

DIGITS = [str(d) for d in range(10)]


def test_integrated_gradients_of_a_linear_model_are_input_times_weight() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    x, target = torch.randn(5, 2, 4, 4), torch.tensor([0, 1, 2, 1, 0])
    w = net[1].weight[target].view(5, 2, 4, 4)  # the gradient of a linear logit is its weights
    torch.testing.assert_close(input_gradients(net, x, target), w.detach())
    torch.testing.assert_close(integrated_gradients(net, x, target, steps=3), (x * w).detach())


def test_integrated_gradients_add_up_to_the_logit_difference() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    x, target = torch.randn(2, 1, 8, 8), torch.tensor([2, 0])
    ig = integrated_gradients(net, x, target, steps=64)
    with torch.no_grad():
        gap = net(x)[[0, 1], target] - net(torch.zeros_like(x))[[0, 1], target]
    torch.testing.assert_close(ig.sum((1, 2, 3)), gap, atol=1e-3, rtol=1e-3)  # completeness


def test_integrated_gradients_are_the_same_in_any_number_of_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from diagnostics import attribution

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    x, target = torch.randn(3, 1, 8, 8), torch.tensor([2, 0, 1])
    together = integrated_gradients(net, x, target, steps=7)  # one pass of 21 inputs
    monkeypatch.setattr(attribution, "PATH_BATCH", 6)  # 2 points a pass: 4 passes, the last short
    torch.testing.assert_close(integrated_gradients(net, x, target, steps=7), together)


def test_saliency_maps_have_the_images_shape() -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 5 * 7, 4))
    maps = saliency_maps(net, torch.randn(6, 3, 5, 7), torch.zeros(6, dtype=torch.long), 4)
    assert set(maps) == {"input gradient", "integrated gradients"}
    assert all(m.shape == (6, 5, 7) for m in maps.values())
    assert (maps["input gradient"] >= 0).all()


class BagOfEmbeddings(nn.Module):
    """(tokens (B, T), lengths (B,)) -> logits: the mean of the non-padding token embeddings."""

    def __init__(self, vocab_size: int = 10) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, 4, padding_idx=0)
        self.head = nn.Linear(4, 2)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        e = self.embedding(tokens)  # (B, T, E)
        return self.head(e.sum(1) / lengths.view(-1, 1))


def test_token_attributions_are_gradient_times_embedding() -> None:
    torch.manual_seed(0)
    net = BagOfEmbeddings()
    tokens, lengths = torch.tensor([[3, 4, 5], [6, 7, 0]]), torch.tensor([3, 2])
    target = torch.tensor([1, 0])
    scores = token_attributions(lambda x: net(*x), (tokens, lengths), target, net.embedding)
    w = net.head.weight[target]  # (B, E)
    expected = (net.embedding(tokens) * w.unsqueeze(1)).sum(-1) / lengths.view(-1, 1)
    torch.testing.assert_close(scores, expected.detach())
    assert scores[1, 2] == 0  # padding has a zero embedding: no attribution


def test_confusion_counts() -> None:
    from diagnostics.pictures import confusion_counts

    true, pred = torch.tensor([0, 0, 1, 2, 2, 2]), torch.tensor([0, 1, 1, 2, 0, 2])
    expected = torch.tensor([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    assert torch.equal(confusion_counts(true, pred, 3), expected)


def test_confusion_matrix_figure_labels_axes_with_class_names() -> None:
    counts = np.diag([3, 4, 5]) + np.array([[0, 1, 0], [0, 0, 0], [2, 0, 0]])
    fig = figures.confusion_matrix(counts, ["cat", "dog", "ship"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog", "ship"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cat", "dog", "ship"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted", "true")
    assert "15 examples" in ax.get_title()
    assert sorted(int(t.get_text()) for t in ax.texts) == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="expected"):
        figures.confusion_matrix(counts, ["cat", "dog"])


def test_prediction_grid_marks_the_mistakes() -> None:
    fig = figures.prediction_grid(np.zeros((5, 8, 8, 1)), [1, 2, 3, 4, 5], [1, 2, 0, 4, 0], DIGITS)
    (ax,) = fig.axes  # one composed image: the labels and frames are its texts and patches
    titles = [t.get_text() for t in ax.texts]
    assert titles == ["1", "2", "0 (true 3)", "4", "0 (true 5)"]
    framed = [frame.get_linewidth() for frame in ax.patches]
    assert framed == [1, 1, 3, 1, 3]
    fig = figures.prediction_grid(np.zeros((1, 8, 8, 3)), [1], [2], DIGITS, confidence=[0.875])
    assert [t.get_text() for ax in fig.axes for t in ax.texts] == ["2 (true 1) 88%"]


def test_layer_groups_and_update_ratio_of_an_sgd_step() -> None:
    from models.cnn import SmallCNN

    net = SmallCNN(1, 8, 10)
    groups = layer_groups(("net." + n, p) for n, p in net.named_parameters())
    assert set(groups) == {"encoder.0", "encoder.2", "encoder.7", "head"}
    head = groups["head"]
    before = [p.detach().clone() for p in head]
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    net(torch.randn(4, 1, 8, 8)).logsumexp(1).sum().backward()
    step = 0.1 * torch.cat([p.grad.flatten() for p in head]).norm()
    optimizer.step()
    expected = step / torch.cat([b.flatten() for b in before]).norm()
    torch.testing.assert_close(update_ratio(before, [p.detach() for p in head]), expected)


@pytest.mark.parametrize(("name", "per_param"), [("sgd", 0), ("momentum", 1), ("adamw", 2)])
def test_optimizer_state_size(name: str, per_param: int) -> None:
    from optim.optimizer import build_optimizer_factory

    net = nn.Linear(20, 10)
    optimizer = build_optimizer_factory(compose([f"optim={name}"]))(net.parameters())
    net(torch.randn(3, 20)).sum().backward()
    optimizer.step()
    param_bytes = sum(p.numel() * p.element_size() for p in net.parameters())
    step_counters = 2 * 4 if name == "adamw" else 0  # Adam keeps a float32 step per tensor
    assert state_bytes(optimizer) == per_param * param_bytes + step_counters


def test_default_wandb_group_is_the_recipe_up_to_the_seed() -> None:
    choices = {"task": "classify", "data": "digits", "model": "cnn", "optim": "adamw",
               "scheduler": "cosine", "logger": "default"}  # fmt: skip
    a = run_labels(choices, ["data=digits", "optim.lr=0.01", "seed=1", "hydra.run.dir=x"])
    b = run_labels(choices, ["seed=2", "optim.lr=0.01", "callbacks=sweep", "trainer.enable_progress_bar=false"])  # fmt: skip
    c = run_labels(choices, ["optim.lr=0.02"])
    assert a["group"] == b["group"] == "classify/digits/cnn/adamw/cosine optim.lr=0.01"
    assert c["group"] != a["group"]
    assert a["tags"] == ["task:classify", "data:digits", "model:cnn", "optim:adamw", "scheduler:cosine"]  # fmt: skip
    mine = labelled({"group": "mine", "tags": ["x", "optim:adamw"], "job_type": "sweep"}, a)
    assert mine["group"] == "mine" and mine["job_type"] == "sweep"
    assert mine["tags"] == ["x", "optim:adamw", "task:classify", "data:digits", "model:cnn", "scheduler:cosine"]  # fmt: skip


def test_sweep_callbacks_have_no_pictures() -> None:
    assert set(compose([]).callbacks) == {
        "optimizer_stats",
        "throughput",
        "predictions",
        "saliency",
    }
    assert set(compose(["callbacks=sweep"]).callbacks) == {"optimizer_stats", "throughput"}
    assert not compose(["callbacks=[]"]).callbacks


@pytest.mark.slow
def test_a_run_draws_every_picture_to_png_wandb_and_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list = []
    build = recipe.build_callbacks
    monkeypatch.setattr(recipe, "build_callbacks", lambda cfg: built.extend(build(cfg)) or built)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    cfg = compose(["data=digits", "model=cnn", "trainer.max_epochs=2", "trainer.limit_train_batches=3",
                   "trainer.limit_test_batches=2", "trainer.log_every_n_steps=1", "trainer.enable_progress_bar=false",
                   "logger.wandb.mode=offline", "callbacks.predictions.every_n_epochs=1",
                   "callbacks.saliency.every_n_epochs=1", "callbacks.saliency.ig_steps=4"])  # fmt: skip
    results = recipe.train(cfg, tmp_path)
    assert results["status"] == "finished"

    pictures = {p.name for p in (tmp_path / "pictures").iterdir()}
    kinds = ("predictions", "mistakes", "confusion", "saliency")
    tests = {"test_confusion.png", "test_mistakes.png"}
    assert {f"epoch_{e:03d}_{k}.png" for e in (0, 1) for k in kinds} | tests == pictures

    (predictions,) = [c for c in built if isinstance(c, Predictions)]
    assert predictions.confusion.sum() == 144  # every validation image of digits, counted once
    assert predictions.confusion.shape == (10, 10)
    x, y, pred, p = predictions.mistakes  # the most confident mistakes first
    wrong = int(predictions.confusion.sum() - predictions.confusion.trace())
    assert x.shape == (32, 1, 8, 8) and (pred != y).sum() == min(wrong, 32)
    assert (p[pred != y].diff() <= 0).all()

    with open(tmp_path / "metrics.csv") as f:
        columns = set(next(csv.reader(f)))
    assert {"optim/update_ratio/head", "optim/update_ratio/encoder.0", "optim/state_bytes",
            "optim/state_per_param", "perf/samples_per_s", "perf/peak_rss_mb"} <= columns  # fmt: skip
    assert results["optim/state_per_param"] == pytest.approx(2.0, abs=0.01)  # AdamW
    assert results["perf/samples_per_s"] > 0
    assert results["choices"]["optim"] == "adamw"

    (wandb_run,) = (tmp_path / "wandb").glob("offline-run-*")
    media = {p.name.split("_")[0] for p in (wandb_run / "files/media/images/pictures").iterdir()}
    assert media == set(kinds)
    path = next(wandb_run.glob("*.wandb"))
    records(path)  # waits for W&B's service to finish writing the run file (its exit record)
    record = path.read_bytes()
    for label in ("classify/digits/cnn/adamw/warmup_cosine", "data:digits", "optim:adamw"):
        assert label.encode() in record, label

    assert report_main([str(tmp_path)]) == 0
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 5 + 5  # the pictures and the curves
    for text in ('alt="loss"', 'alt="optim/update_ratio"', 'alt="saliency"', 'alt="test_confusion"', "test/acc"):  # fmt: skip
        assert text in page, text


class Words:
    """A stand-in for a text datamodule's vocabulary: index <-> word."""

    def __init__(self, words: list[str]) -> None:
        self.tokens = words

    def __len__(self) -> int:
        return len(self.tokens)

    def decode(self, indices: list[int]) -> list[str]:
        return [self.tokens[i] for i in indices]


class SentimentWords(L.LightningDataModule):
    """A stand-in text classification datamodule with the interface of datamodules/text*.py:
    input_kind "tokens", a vocabulary, batches ((tokens (B, T), lengths (B,)), labels (B,)).
    The label is whether "good" outnumbers "bad"."""

    input_kind = "tokens"

    def __init__(self) -> None:
        super().__init__()
        self.vocab = Words(["<pad>", "good", "bad", "film", "the", "plot"])
        g = torch.Generator().manual_seed(0)
        self.tokens = torch.randint(1, 6, (64, 7), generator=g)
        self.lengths = torch.randint(3, 8, (64,), generator=g)
        self.tokens[torch.arange(7) >= self.lengths[:, None]] = 0
        self.labels = ((self.tokens == 1).sum(1) > (self.tokens == 2).sum(1)).long()

    def _batches(self) -> DataLoader:
        def collate(rows: list) -> tuple:
            tokens, lengths, labels = default_collate(rows)
            return (tokens, lengths), labels

        data = TensorDataset(self.tokens, self.lengths, self.labels)
        return DataLoader(data, batch_size=16, collate_fn=collate)

    train_dataloader = val_dataloader = test_dataloader = _batches


@pytest.mark.slow
def test_text_classifier_token_saliency_and_confusion(tmp_path: Path) -> None:
    from functools import partial

    from lightning.pytorch.loggers import WandbLogger

    from diagnostics.pictures import Saliency
    from lightning_modules.classifier import Classifier

    module = Classifier(BagOfEmbeddings(vocab_size=6), partial(torch.optim.Adam, lr=0.05), num_classes=2,
                        class_names=["negative", "positive"])  # fmt: skip
    saliency, predictions = (
        Saliency(every_n_epochs=0, num_examples=5),
        Predictions(every_n_epochs=0),
    )
    logger = WandbLogger(save_dir=str(tmp_path), mode="offline")
    trainer = L.Trainer(max_epochs=3, default_root_dir=str(tmp_path), logger=logger, callbacks=[saliency, predictions],
                        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)  # fmt: skip
    try:
        trainer.fit(module, datamodule=SentimentWords())
    finally:
        import wandb

        wandb.finish()
    assert {p.name for p in (tmp_path / "pictures").iterdir()} == {"epoch_002_saliency.png", "epoch_002_confusion.png"}  # fmt: skip
    assert predictions.confusion.sum() == 64
    (run,) = (tmp_path / "wandb").glob("offline-run-*")
    (table,) = (run / "files/media/table/pictures").glob("saliency_text_*.table.json")
    data = json.loads(table.read_text())
    assert data["columns"] == ["true", "predicted", "tokens"] and len(data["data"]) == 5


HOST_READS = ("item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__")


@contextlib.contextmanager
def no_host_reads() -> Iterator[None]:
    """Reading a tensor's value on the host (what waits for a GPU) raises inside this block."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a per-step hook read a tensor's value on the host")

    saved = {name: getattr(torch.Tensor, name) for name in HOST_READS}
    try:
        for name in HOST_READS:
            setattr(torch.Tensor, name, refuse)
        yield
    finally:
        for name, method in saved.items():
            setattr(torch.Tensor, name, method)


@pytest.mark.slow
def test_per_step_hooks_never_read_tensors_on_the_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CPU stand-in for "no device synchronisation per step": outside the steps Lightning logs,
    the diagnostics' per-batch hooks never turn a tensor into a Python value."""
    from lightning_modules.base import is_logging_step

    checked: list[str] = []

    def strict(hook, always: bool):  # type: ignore[no-untyped-def]
        def run(trainer, *args, **kwargs):  # type: ignore[no-untyped-def]
            if not always and is_logging_step(trainer):
                return hook(trainer, *args, **kwargs)
            checked.append(hook.__name__)
            with no_host_reads():
                return hook(trainer, *args, **kwargs)

        return run

    build = recipe.build_callbacks

    def build_strict(cfg):  # type: ignore[no-untyped-def]
        callbacks = build(cfg)
        for c in callbacks:
            for name in ("on_train_batch_start", "on_train_batch_end", "on_before_optimizer_step"):
                setattr(c, name, strict(getattr(c, name), always=False))
            c.on_validation_batch_end = strict(c.on_validation_batch_end, always=True)
        return callbacks

    monkeypatch.setattr(recipe, "build_callbacks", build_strict)
    cfg = compose(["data=digits", "model=cnn", "logger.wandb=null", "trainer.max_epochs=2", "trainer.limit_train_batches=3",
                   "trainer.limit_val_batches=2", "trainer.log_every_n_steps=4", "trainer.enable_progress_bar=false",
                   "test=false", "callbacks.predictions.every_n_epochs=0", "callbacks.saliency.every_n_epochs=0"])  # fmt: skip
    assert recipe.train(cfg, tmp_path)["status"] == "finished"
    assert {"on_train_batch_end", "on_before_optimizer_step", "on_validation_batch_end"} <= set(
        checked
    )


def test_report_shows_the_latest_picture_of_each_kind(tmp_path: Path) -> None:
    from harness.report.run_page import latest_pictures

    for name in ("epoch_000_a.png", "epoch_002_a.png", "epoch_010_b.png", "epoch_009_b.png",
                 "test_confusion.png", "epoch_011_a.tmp.png"):  # fmt: skip
        (tmp_path / name).write_bytes(b"")
    found = {kind: path.name for kind, path in latest_pictures(tmp_path).items()}
    assert found == {"a": "epoch_002_a.png", "b": "epoch_010_b.png", "test_confusion": "test_confusion.png"}  # fmt: skip


def test_picture_callbacks_stand_aside_for_a_module_that_is_not_a_classifier(
    tmp_path: Path,
) -> None:
    from lightning.pytorch.demos.boring_classes import BoringModel

    from diagnostics.pictures import Saliency

    callbacks = [Predictions(every_n_epochs=1), Saliency(every_n_epochs=1)]
    trainer = L.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=2, logger=False,
                        default_root_dir=str(tmp_path), callbacks=callbacks, enable_progress_bar=False,
                        enable_checkpointing=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(BoringModel())
    assert not any(c.active for c in callbacks)
    assert not (tmp_path / "pictures").exists()


@pytest.mark.slow
def test_sst2_text_classifier_draws_token_saliency_and_confusion(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from diagnostics.pictures import Saliency
    from tests.conftest import fixture_overrides

    built: list = []
    build = recipe.build_callbacks
    monkeypatch.setattr(recipe, "build_callbacks", lambda cfg: built.extend(build(cfg)) or built)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    cfg = compose([*fixture_overrides("sst2", data_root), "model=textcnn", "model.embed_dim=16", "model.maps=8",
                   "logger.wandb.mode=offline", "trainer.max_epochs=2", "trainer.enable_progress_bar=false",
                   "callbacks.saliency.num_examples=5"])  # fmt: skip
    assert recipe.train(cfg, tmp_path)["status"] == "finished"

    pictures = {p.name for p in (tmp_path / "pictures").iterdir()}
    assert pictures == {"epoch_001_saliency.png", "epoch_001_confusion.png", "test_confusion.png"}
    (predictions,) = [c for c in built if isinstance(c, Predictions)]
    assert predictions.confusion.sum() == 16  # the fixture's dev split
    (saliency,) = [c for c in built if isinstance(c, Saliency)]
    (tokens, lengths), _ = saliency.examples  # from two batches of 4, padded alike
    assert len(tokens) == len(lengths) == 5
    assert (tokens[torch.arange(tokens.shape[1]) >= lengths[:, None]] == 0).all()  # <pad>
    (run,) = (tmp_path / "wandb").glob("offline-run-*")
    (table,) = (run / "files/media/table/pictures").glob("saliency_text_*.table.json")
    rows = json.loads(table.read_text())["data"]
    assert len(rows) == 5 and all(r[0] in ("negative", "positive") for r in rows)


def test_diagnostics_log_straight_to_the_loggers_one_row_a_logging_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Lightning's self.log costs ~0.4 ms a call and every key it holds is walked again each step.
    names: list[str] = []
    log = L.LightningModule.log
    monkeypatch.setattr(L.LightningModule, "log", lambda self, name, *a, **k: names.append(name) or log(self, name, *a, **k))  # fmt: skip
    cfg = compose(["data=digits", "model=mlp", "logger.wandb=null", "callbacks=sweep", "trainer.max_epochs=-1",
                   "trainer.max_steps=4", "trainer.log_every_n_steps=2", "trainer.enable_progress_bar=false",
                   "trainer.limit_val_batches=2", "test=false"])  # fmt: skip
    results = recipe.train(cfg, tmp_path)
    assert not [n for n in names if n.startswith(("optim/", "perf/"))]
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    steps = {k: [int(r["step"]) for r in rows if r.get(k)] for k in ("train/loss", "optim/update_ratio/head", "perf/peak_rss_mb")}  # fmt: skip
    assert steps == {k: [1, 3] for k in steps}  # at the steps Lightning writes its own row
    assert results["optim/state_per_param"] == pytest.approx(2.0, abs=0.01)  # AdamW's two


def test_a_count_draws_where_and_as_matplotlib_draws_the_same_text() -> None:
    # figures.Count draws numbers from cached digit images (a Text is laid out anew every draw).
    from matplotlib.text import Text

    def ink(make) -> np.ndarray:  # type: ignore[no-untyped-def]
        fig = figures._figure(1, 0.5, layout=None)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        ax.add_artist(make(0.5, 0.5, "1207", fontsize=7, ha="center", va="center"))
        fig.canvas.draw()
        return 255 - np.asarray(fig.canvas.buffer_rgba())[..., 0].astype(float)  # (H, W)

    ours, theirs = ink(figures.Count), ink(Text)

    def centre(a: np.ndarray) -> np.ndarray:  # (row, column) of the ink's centre of mass
        rows, columns = np.indices(a.shape)
        return np.array([(a * rows).sum(), (a * columns).sum()]) / a.sum()

    assert np.abs(centre(ours) - centre(theirs)).max() < 1.5  # pixels
    assert ours.sum() == pytest.approx(theirs.sum(), rel=0.1)


@pytest.mark.slow
def test_no_picture_is_drawn_twice_for_the_same_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The last epoch's drawing is also the end of training's: drawn once, as is the test's.
    from collections import Counter

    from diagnostics import publish

    drawn: Counter = Counter()
    keep = publish.publish_figure
    monkeypatch.setattr(publish, "publish_figure", lambda t, name, kind, fig: drawn.update([(name, kind)]) or keep(t, name, kind, fig))  # fmt: skip
    cfg = compose(["data=digits", "model=cnn", "logger.wandb=null", "trainer.max_epochs=2", "trainer.limit_train_batches=2",
                   "trainer.limit_test_batches=1", "trainer.enable_progress_bar=false", "callbacks.predictions.every_n_epochs=1",
                   "callbacks.saliency.every_n_epochs=1", "callbacks.saliency.ig_steps=2"])  # fmt: skip
    assert recipe.train(cfg, tmp_path)["status"] == "finished"
    assert set(drawn.values()) == {1} and len(drawn) == 2 * 4 + 2, drawn
