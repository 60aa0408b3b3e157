"""Every (text data, model, task) that fits trains a few steps on fixture data and logs its metrics;
a language model and a classifier overfit one batch; generated samples go to W&B; the pairs that
do not fit stop before training with one clear message."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.loggers import CSVLogger, WandbLogger

from harness.config.checks import check_config
from harness.errors import ConfigError
from harness.run.recipe import train
from lightning_modules.language_model import LanguageModel, generate
from models.gpt import GPT
from tests.conftest import FAST, compose, fixture_overrides
from tests.test_training import train_losses

# The same code at a fraction of the size.
SMALL = {
    "gpt": ["model.n_layer=1", "model.n_head=2", "model.n_embd=16"],
    "gru": ["model.embed_dim=16", "model.hidden=16", "model.layers=1"],
    "lstm": ["model.embed_dim=16", "model.hidden=16", "model.layers=1"],
    "textcnn": ["model.embed_dim=16", "model.maps=8"],
    "transformer": ["model.d_model=16", "model.n_head=2", "model.n_layer=1", "model.d_ff=32"],
}
CORPORA, LABELLED = ["shakespeare_char", "ptb", "wikitext2"], ["sst2", "imdb", "ag_news"]
RUNS = (
    [(data, model, "lm") for data in CORPORA for model in ("gpt", "gru", "lstm")]
    + [(data, model, "classify") for data in LABELLED for model in ("gru", "lstm", "textcnn", "transformer")]
    + [("ptb", "gru", "mlm"), ("ptb", "transformer", "mlm")]
)  # fmt: skip
METRICS = {
    "lm": ["val/loss", "val/ppl", "test/loss", "test/ppl"],
    "classify": ["val/acc", "val/f1", "val/auroc", "test/acc", "test/auroc"],
    "mlm": ["val/loss", "val/masked_acc", "test/loss", "test/masked_acc"],
}


def run(
    tmp_path: Path, data: str, data_root: Path, overrides: list[str]
) -> tuple[dict, list[float]]:
    cfg = compose([*FAST, *fixture_overrides(data, data_root), *overrides])
    return train(cfg, tmp_path), train_losses(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize(("data", "model", "task"), RUNS, ids=["-".join(r) for r in RUNS])
def test_every_text_pair_trains(
    data: str, model: str, task: str, data_root: Path, tmp_path: Path
) -> None:
    extra = ["model.bidirectional=true"] if (model, task) == ("gru", "mlm") else []
    results, losses = run(
        tmp_path, data, data_root, [f"model={model}", f"task={task}", *SMALL[model], *extra]
    )
    assert results["status"] == "finished"
    assert len(losses) == 4 and all(math.isfinite(x) for x in losses)
    expected = [k for k in METRICS[task] if data != "shakespeare_char" or not k.startswith("test/")]
    missing = [k for k in expected if k not in results]
    assert not missing, missing
    assert ("val/bpc" in results) == (
        data == "shakespeare_char"
    )  # bits per character: characters only
    if task == "lm":
        assert results["val/ppl"] == pytest.approx(math.exp(results["val/loss"]), rel=1e-4)
    # The checkpoint loads safely and carries the vocabulary the model was trained with.
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    (vocab,) = [v["vocab"] for k, v in ckpt.items() if isinstance(v, dict) and "vocab" in v]
    assert (
        len(vocab)
        == ckpt["state_dict"][
            next(k for k in ckpt["state_dict"] if "embed" in k or "wte" in k)
        ].shape[0]
    )


@pytest.mark.slow
def test_gpt_overfits_one_batch(data_root: Path, tmp_path: Path) -> None:
    _, losses = run(tmp_path, "shakespeare_char", data_root, [
        "model=gpt", "model.n_layer=2", "model.n_head=2", "model.n_embd=32", "model.dropout=0",
        "optim=adamw", "optim.lr=1e-2", "scheduler=constant", "trainer.max_steps=60", "trainer.overfit_batches=1",
    ])  # fmt: skip
    assert losses[-1] < 0.1 * losses[0], losses[::10]


@pytest.mark.slow
def test_textcnn_overfits_one_batch(data_root: Path, tmp_path: Path) -> None:
    _, losses = run(tmp_path, "sst2", data_root, [
        "model=textcnn", "model.dropout=0", *SMALL["textcnn"], "optim=adam", "optim.lr=1e-2",
        "scheduler=constant", "trainer.max_steps=30", "trainer.overfit_batches=1",
    ])  # fmt: skip
    assert losses[-1] < 0.05, losses[::5]


class RecordingWandbLogger(WandbLogger):
    """A WandbLogger that keeps what it is given instead of starting W&B."""

    def __init__(self) -> None:
        self.texts: list[tuple] = []

    def log_text(self, key, columns=None, data=None, dataframe=None, step=None) -> None:
        self.texts.append((key, columns, data, step))


def test_samples_go_to_wandb_only(monkeypatch) -> None:
    vocab = ["<unk>", "<mask>", *"abcdefgh"]
    torch.manual_seed(0)
    net = GPT(vocab_size=len(vocab), block_size=8, n_layer=1, n_head=1, n_embd=8, dropout=0.0)
    module = LanguageModel(net, torch.optim.SGD, vocab=vocab, block_size=8, char_level=True,
                           samples=3, sample_length=12)  # fmt: skip
    wandb, csv = RecordingWandbLogger(), CSVLogger("unused")
    trainer = SimpleNamespace(loggers=[csv, wandb], is_global_zero=True, global_step=7)
    monkeypatch.setattr(module, "_trainer", trainer)
    state = torch.get_rng_state()
    module._log_samples()
    assert torch.equal(torch.get_rng_state(), state)  # training's random state untouched
    ((key, columns, rows, step),) = wandb.texts
    assert key == "val/samples" and columns == ["step", "text"] and step == 7
    assert len(rows) == 3 and all(r[0] == 7 and len(r[1]) >= 13 for r in rows)
    trainer.loggers = [csv]  # no W&B: nothing is generated
    module._log_samples()
    assert len(wandb.texts) == 1


def test_generate_extends_by_the_number_of_steps() -> None:
    torch.manual_seed(0)
    net = GPT(vocab_size=11, block_size=4, n_layer=1, n_head=1, n_embd=8, dropout=0.0)
    start = torch.zeros(3, 2, dtype=torch.long)
    out = generate(net, start, steps=6, block_size=4, generator=torch.Generator().manual_seed(1))
    assert out.shape == (3, 8) and torch.equal(out[:, :2], start) and int(out.max()) < 11
    again = generate(net, start, steps=6, block_size=4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(out, again)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data=sst2", "model=resnet"], "model=resnet takes images but data=sst2 gives tokens. "
         "Models for task=classify on data=sst2: gru, lstm, textcnn, transformer."),
        (["data=digits", "model=textcnn"], "model=textcnn takes tokens but data=digits gives images."),
        (["data=ptb", "model=textcnn"], "model=textcnn cannot predict the tokens of a text corpus, "
         "which task=lm needs. Models for task=lm on data=ptb: gpt, gru, lstm."),
        (["data=ptb", "task=classify", "model=gru"], "task=classify predicts a class per example but "
         "data=ptb holds a text corpus without labels. Tasks for data=ptb: lm, mlm."),
        (["data=sst2", "task=lm", "model=gru"], "task=lm predicts the tokens of a text corpus but "
         "data=sst2 holds labelled examples. Tasks for data=sst2: classify."),
        (["data=sst2", "task=rotation", "model=textcnn"], "task=rotation needs images but data=sst2 "
         "gives tokens. Tasks for data=sst2: classify."),
        (["data=ptb", "model=gru", "model.bidirectional=true"], "model=gru with model.bidirectional=true "
         "sees the tokens after each position"),
        (["data=shakespeare_char", "model=transformer"], "model=transformer sees the tokens after each "
         "position, and task=lm predicts each token from the ones before it (task=mlm takes such models)."),
    ],
)  # fmt: skip
def test_a_model_or_task_that_cannot_take_the_data_is_refused(
    overrides: list[str], message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        check_config(compose(overrides))
    assert message in str(error.value)


def test_data_picks_its_task_and_the_command_line_wins() -> None:
    assert compose(["data=ptb"]).task.monitor == "val/loss"
    assert compose(["data=ptb", "task=mlm"]).task.module._target_.endswith("MaskedLM")
    assert compose(["data=sst2"]).task.module._target_.endswith("Classifier")
    check_config(compose(["data=ptb", "task=mlm", "model=transformer"]))


def test_a_checkpoint_alone_is_enough_to_sample(
    data_root: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    import sample
    from datamodules.text import TextDataModule

    run(tmp_path, "shakespeare_char", data_root, ["model=gpt", *SMALL["gpt"]])
    monkeypatch.setattr(TextDataModule, "setup", lambda *a: pytest.fail("sampling read the data"))
    sample.main(
        [
            str(tmp_path / "checkpoints" / "best.ckpt"),
            "--prompt",
            "ROMEO:",
            "--tokens",
            "25",
            "--num",
            "2",
        ]
    )
    texts = capsys.readouterr().out.split("\n---\n")[:2]
    assert len(texts) == 2 and all(t.startswith("ROMEO:") and len(t) >= 6 + 25 for t in texts), (
        texts
    )
