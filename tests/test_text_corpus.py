"""data=text_corpus: one's own text files as a language-modelling corpus, a character or a word at
a time; one file is split 90/10 as Tiny Shakespeare; test only when a test file is given; bad
files are one error naming the file (and line)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from datamodules import DatasetError
from datamodules.corpus import EOS
from datamodules.shakespeare import TinyShakespeare
from datamodules.text_corpus import TextCorpus
from tests.fixtures import write_tinyshakespeare
from tests.own_files import write_corpus


def corpus(**kwargs) -> TextCorpus:
    dm = TextCorpus(**{k: str(v) if isinstance(v, Path) else v for k, v in kwargs.items()})
    dm.setup()
    return dm


def test_one_file_splits_as_tiny_shakespeare(tmp_path: Path) -> None:
    write_tinyshakespeare(tmp_path)
    reference = TinyShakespeare(str(tmp_path), 4, block_size=16, download=False, verify=False)
    reference.setup()
    dm = corpus(train=tmp_path / "tinyshakespeare" / "input.txt", batch_size=4, block_size=16)
    assert dm.vocab.tokens == reference.vocab.tokens and "test" not in dm.splits
    assert all(torch.equal(dm.splits[s][0], reference.splits[s][0]) for s in ("train", "val"))
    assert not dm.has_test_split and dm.dims["char_level"]


def test_word_level_with_every_file_given(tmp_path: Path) -> None:
    files = write_corpus(tmp_path)
    dm = corpus(**files, level="word", block_size=8)
    assert dm.has_test_split and not dm.dims["char_level"]
    assert EOS in dm.vocab.tokens and "café." in dm.vocab.tokens
    words = files["val"].read_text().split()
    assert len(dm.splits["val"][0]) == len(words) + 40  # every line ends with <eos>
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == y.shape == (64, 8)


def test_the_token_cache_follows_the_content(tmp_path: Path, monkeypatch) -> None:
    files = write_corpus(tmp_path / "a")
    first = corpus(**files, cache_dir=tmp_path / "cache", block_size=8)
    monkeypatch.setattr(TextCorpus, "read", lambda self: pytest.fail("read the files again"))
    again = corpus(**files, cache_dir=tmp_path / "cache", block_size=8)
    assert again.vocab.tokens == first.vocab.tokens


@pytest.mark.parametrize("case", ["empty", "undecodable", "missing"])
def test_a_bad_file_is_one_error_naming_it(case: str, tmp_path: Path) -> None:
    files = write_corpus(tmp_path)
    if case == "empty":
        files["val"].write_text("")
        message = f"{files['val']}: the file is empty"
    elif case == "undecodable":
        files["train"].write_bytes(b"line one\nline two\nna\xefve\n")
        message = f"{files['train']}:3: byte 0xef is not utf-8 (data.encoding=utf-8)"
    else:
        files["test"] = tmp_path / "nowhere.txt"
        message = f"data.test={tmp_path / 'nowhere.txt'}: no such file"
    with pytest.raises(DatasetError) as error:
        corpus(**files)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"train": None}, "data=text_corpus needs a training file: data.train=PATH"),
        ({"level": "byte"}, "data.level must be one of char, word, got 'byte'"),
        ({"val_fraction": 0}, "data.val_fraction must be a number in"),
    ],
)
def test_bad_settings_are_refused_before_reading(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        TextCorpus(**{"train": "a.txt", **kwargs})
