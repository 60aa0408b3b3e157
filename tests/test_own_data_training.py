"""Every model that fits trains a few steps on each data option made from one's own files
(text_files, text_corpus, image_folder), logs its metrics and tests; bad files stop train.py with
one line and exit status 2."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from harness.run.recipe import train
from tests.conftest import FAST, compose
from tests.own_files import NAMES, write_corpus, write_image_folder, write_labelled_splits
from tests.test_bad_input import assert_clear_failure, run_cli
from tests.test_text_training import SMALL
from tests.test_training import SMALL_RESNET, train_losses


@pytest.fixture(scope="session")
def own_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("own")
    write_labelled_splits(root / "texts", "tsv")
    write_corpus(root / "corpus")
    write_image_folder(root / "images", sizes=(16, 12), mode="RGB")  # two sizes: data.size
    return root


def text_files(root: Path, *extra: str) -> list[str]:
    t = root / "texts"
    return ["data=text_files", f"data.train={t / 'train.tsv'}", f"data.test={t / 'test.tsv'}",
            "data.cache_dir=null", "data.batch_size=4", *extra]  # fmt: skip


def text_corpus(root: Path, *extra: str) -> list[str]:
    c = root / "corpus"
    return ["data=text_corpus", f"data.train={c / 'train.txt'}", f"data.test={c / 'test.txt'}",
            "data.cache_dir=null", "data.batch_size=4", "data.block_size=16", *extra]  # fmt: skip


def run(tmp_path: Path, overrides: list[str]) -> tuple[dict, list[float]]:
    results = train(compose([*FAST, *overrides]), tmp_path)
    return results, train_losses(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["gru", "lstm", "textcnn", "transformer"])
def test_every_text_classifier_trains_on_text_files(
    model: str, own_data: Path, tmp_path: Path
) -> None:
    results, losses = run(tmp_path, [*text_files(own_data), f"model={model}", *SMALL[model]])
    assert results["status"] == "finished"
    assert len(losses) == 4 and all(math.isfinite(x) for x in losses)
    for key in ("val/acc", "val/f1", "test/acc", "test/auroc"):
        assert key in results, key
    # What evaluating the checkpoint later needs: the vocabulary and the class names.
    state = datamodule_state(tmp_path / "checkpoints" / "best.ckpt", "TextFiles")
    assert state["class_names"] == NAMES and state["vocab"][:2] == ["<pad>", "<unk>"]


def datamodule_state(path: Path, name: str) -> dict:
    """What the datamodule saved in a checkpoint (Lightning files it under the class's name)."""
    return torch.load(path, weights_only=True)[name]  # plain values only


CORPUS_RUNS = [("gpt", "lm", "char"), ("gru", "lm", "word"), ("lstm", "lm", "char"),
               ("transformer", "mlm", "word")]  # fmt: skip


@pytest.mark.parametrize(
    ("model", "task", "level"), CORPUS_RUNS, ids=["-".join(r) for r in CORPUS_RUNS]
)
def test_every_language_model_trains_on_text_corpus(
    model: str, task: str, level: str, own_data: Path, tmp_path: Path
) -> None:
    overrides = [*text_corpus(own_data, f"data.level={level}"), f"model={model}", f"task={task}"]
    results, losses = run(tmp_path, [*overrides, *SMALL[model]])
    assert results["status"] == "finished"
    assert len(losses) == 4 and all(math.isfinite(x) for x in losses)
    assert "val/loss" in results and "test/loss" in results
    assert ("val/bpc" in results) == (level == "char" and task == "lm")
    assert datamodule_state(tmp_path / "checkpoints" / "best.ckpt", "TextCorpus")["vocab"]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["cnn", "mlp", "resnet"])
def test_every_image_classifier_trains_on_image_folder(
    model: str, own_data: Path, tmp_path: Path
) -> None:
    extra = SMALL_RESNET if model == "resnet" else []
    results, losses = run(tmp_path, ["data=image_folder", f"data.root={own_data / 'images'}",
                                     "data.size=16", "data.batch_size=8", "data.augment=true",
                                     f"model={model}", *extra])  # fmt: skip
    assert results["status"] == "finished"
    assert len(losses) == 4 and all(math.isfinite(x) for x in losses)
    for key in ("val/acc", "test/acc", "test/auroc"):
        assert key in results, key
    state = datamodule_state(tmp_path / "checkpoints" / "best.ckpt", "ImageFolderData")
    assert state["class_names"] == ["circle", "cross", "square"] and state["size"] == 16
    assert state["channels"] == 3 and len(state["mean"]) == 3


@pytest.mark.slow
@pytest.mark.parametrize(
    "case", ["undecodable text", "unknown test label", "mixed image sizes", "empty corpus"]
)
def test_a_bad_file_stops_train_py_with_one_line(case: str, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    if case in ("undecodable text", "unknown test label"):
        files = write_labelled_splits(tmp_path / "texts", "csv", splits=("train", "test"))
        if case == "undecodable text":
            files["test"].write_bytes(b"id,text,label\n0,fine film,pos\n1,caf\xe9 noir,neg\n")
            expected = [f"{files['test']}:3: byte 0xe9 is not utf-8 (data.encoding=utf-8)"]
        else:
            files["test"].write_text("id,text,label\n0,fine film,pos\n1,buy now,spam\n")
            expected = [f"{files['test']}:3: label 'spam' is not in the training file"]
        args = [
            "data=text_files",
            f"data.train={files['train']}",
            f"data.test={files['test']}",
            "data.cache_dir=null",
            "model=textcnn",
        ]
    elif case == "mixed image sizes":
        root = write_image_folder(tmp_path / "images", sizes=(12, 14))
        args, expected = (
            ["data=image_folder", f"data.root={root}", "model=cnn"],
            ["images differ in size", "set data.size=N"],
        )
    else:
        (tmp_path / "book.txt").write_text("\n\n")
        args, expected = (
            [
                "data=text_corpus",
                f"data.train={tmp_path / 'book.txt'}",
                "data.cache_dir=null",
                "model=gpt",
            ],
            [f"{tmp_path / 'book.txt'}: the file is empty"],
        )
    out = run_cli(*args, "logger.wandb=null", f"hydra.run.dir={run_dir}")
    assert_clear_failure(out, *expected)
    assert not run_dir.exists()  # nothing half-written


@pytest.mark.slow
def test_a_text_corpus_checkpoint_samples_without_its_files(
    own_data: Path, tmp_path: Path, capsys
) -> None:
    import shutil

    import sample

    corpus = tmp_path / "corpus"
    shutil.copytree(own_data / "corpus", corpus)
    overrides = ["data=text_corpus", f"data.train={corpus / 'train.txt'}", "data.cache_dir=null",
                 "data.batch_size=4", "data.block_size=16", "model=gpt", *SMALL["gpt"]]  # fmt: skip
    run(tmp_path / "run", overrides)
    shutil.rmtree(corpus)  # the checkpoint alone
    sample.main(
        [str(tmp_path / "run" / "checkpoints" / "best.ckpt"), "--prompt", "the ", "--tokens", "12"]
    )
    text = capsys.readouterr().out.split("\n---\n")[0]
    assert text.startswith("the ") and len(text) >= 4 + 12
