"""data=text_files reads labelled texts in every format (Kim lines, CSV, TSV, JSONL) into the same
tensors; classes are the training labels sorted; without a validation file a seeded, stratified
share is held out; the token cache follows the files' content; the vocabulary and class names
travel in the datamodule's state; every bad file is one error naming the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from datamodules import DatasetError
from datamodules.text_files import TextFiles
from tests.own_files import NAMES, labelled_examples, write_labelled, write_labelled_splits

FORMATS = ["lines", "csv", "tsv", "jsonl"]


def setup(**kwargs) -> TextFiles:
    dm = TextFiles(**{k: str(v) if isinstance(v, Path) else v for k, v in kwargs.items()})
    dm.setup()
    return dm


@pytest.mark.parametrize("format", FORMATS)
def test_every_format_gives_the_same_tensors(format: str, tmp_path: Path) -> None:
    reference = setup(**write_labelled_splits(tmp_path / "lines", "lines"), batch_size=4)
    dm = setup(**write_labelled_splits(tmp_path / format, format), batch_size=4)
    assert dm.class_names == tuple(NAMES)  # sorted, not in order of first sight (sport first)
    assert dm.vocab.tokens == reference.vocab.tokens
    for split, tensors in reference.splits.items():
        assert all(torch.equal(a, b) for a, b in zip(tensors, dm.splits[split], strict=True))
    labels = [NAMES.index(y) for y, _ in labelled_examples("test")]
    assert dm.splits["test"][2].tolist() == labels
    assert dm.dims["num_classes"] == 3 and dm.dims["class_names"] == NAMES
    (tokens, lengths), y = next(iter(dm.train_dataloader()))
    assert tokens.shape == (4, int(lengths.max())) and y.shape == (4,)


def test_data_format_overrides_the_extension(tmp_path: Path) -> None:
    files = {s: write_labelled(tmp_path / f"{s}.data", labelled_examples(s), "tsv")
             for s in ("train", "test")}  # fmt: skip
    dm = setup(**files, format="tsv", val_size=6)
    assert dm.class_names == tuple(NAMES) and len(dm.splits["test"][2]) == 15


def test_integer_labels_sort_as_numbers(tmp_path: Path) -> None:
    train = tmp_path / "train.txt"
    train.write_text("10 ten\n2 two\n1\tone\n2 two again\n10 ten again\n1 one again\n")
    test = tmp_path / "test.txt"
    test.write_text("01 one\n10 ten\n")
    dm = setup(train=train, test=test, val_size=3)
    assert dm.class_names == ("1", "2", "10")
    assert dm.splits["test"][2].tolist() == [0, 2]  # "01" is the class 1


def test_without_a_validation_file_a_stratified_seeded_share_is_held_out(tmp_path: Path) -> None:
    files = write_labelled_splits(tmp_path, "csv", splits=("train", "test"))
    dm = setup(**files, val_size=0.25)
    train, val = dm.splits["train"][2], dm.splits["val"][2]
    assert len(val) == 15 and len(train) == 45
    whole = torch.tensor([NAMES.index(y) for y, _ in labelled_examples("train")])
    for c in range(3):  # each class gives its share, within rounding
        assert abs(int((val == c).sum()) - 0.25 * int((whole == c).sum())) < 1
    again = setup(**files, val_size=15)  # a count: the same examples
    assert torch.equal(again.splits["val"][0], dm.splits["val"][0])
    other = setup(**files, val_size=15, split_seed=1)
    assert not torch.equal(other.splits["val"][0], dm.splits["val"][0])


def test_words_tokenizer_lowercases_and_splits_punctuation(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text(
        '{"label": "a", "text": "GREAT film!"}\n{"label": "b", "text": "Dull."}\n' * 3
    )
    dm = setup(train=tmp_path / "train.jsonl", test=tmp_path / "train.jsonl", val_size=2,
               tokenizer="words")  # fmt: skip
    assert set(dm.vocab.tokens) >= {"great", "film", "!", "dull", "."}


def test_the_token_cache_follows_the_content_not_the_name(tmp_path: Path, monkeypatch) -> None:
    files = write_labelled_splits(tmp_path / "a", "tsv")
    first = setup(**files, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("TextFiles-*.pt"))) == 1
    moved = {s: tmp_path / "b" / p.name for s, p in files.items()}
    (tmp_path / "b").mkdir()
    for s, p in files.items():
        moved[s].write_bytes(p.read_bytes())
    monkeypatch.setattr(TextFiles, "read", lambda self: pytest.fail("read the files again"))
    cached = setup(**moved, cache_dir=tmp_path / "cache")  # same content elsewhere: the cache
    assert cached.vocab.tokens == first.vocab.tokens and cached.class_names == first.class_names
    monkeypatch.undo()
    moved["test"].write_text(moved["test"].read_text().replace("\tneg", "\tpos"))
    changed = setup(**moved, cache_dir=tmp_path / "cache")  # changed content: read afresh
    assert not torch.equal(changed.splits["test"][2], first.splits["test"][2])
    assert len(list((tmp_path / "cache").glob("TextFiles-*.pt"))) == 2


def test_the_state_carries_the_vocabulary_and_the_class_names(tmp_path: Path) -> None:
    files = write_labelled_splits(tmp_path, "jsonl")
    dm = setup(**files)
    state = dm.state_dict()
    assert state == {"vocab": dm.vocab.tokens, "class_names": NAMES}
    fresh = TextFiles(**{k: str(v) for k, v in files.items()})
    fresh.load_state_dict(state)  # as Lightning does from a checkpoint
    assert fresh.class_names == tuple(NAMES) and fresh.vocab.tokens == dm.vocab.tokens
    fresh.setup()  # the same files: agrees
    stale = TextFiles(**{k: str(v) for k, v in files.items()})
    stale.load_state_dict({**state, "class_names": ["neg", "pos", "spam"]})
    with pytest.raises(DatasetError, match="the checkpoint's classes"):
        stale.setup()


def test_a_checkpoints_state_encodes_other_files_without_the_training_file(tmp_path: Path) -> None:
    files = write_labelled_splits(tmp_path, "csv")
    trained = setup(**files)
    other = write_labelled(tmp_path / "other.tsv", labelled_examples("test", seed=5)[:7], "tsv")
    dm = TextFiles(train=str(tmp_path / "gone.csv"), test=str(other))  # the training file is gone
    dm.load_state_dict(trained.state_dict())
    dm.setup("test")
    labels = dm.splits["test"][2]
    assert labels.tolist() == [NAMES.index(y) for y, _ in labelled_examples("test", seed=5)[:7]]
    assert dm.dims == trained.dims  # the checkpoint's vocabulary and classes
    again = TextFiles(train=str(tmp_path / "gone.csv"), test=str(files["test"]))
    again.load_state_dict(trained.state_dict())
    again.setup("test")  # the run's own test file: the very tensors it was tested on
    assert all(
        torch.equal(a, b) for a, b in zip(again.splits["test"], trained.splits["test"], strict=True)
    )
    other.write_text("id\ttext\tlabel\n0\tbuy now\tspam\n")
    stale = TextFiles(train=str(tmp_path / "gone.csv"), test=str(other))
    stale.load_state_dict(trained.state_dict())
    with pytest.raises(
        DatasetError,
        match=r"other.tsv:2: label 'spam' is not in the checkpoint's classes \(its labels: neg, pos, sport\)",
    ):
        stale.setup("test")


# --- bad files: one error each, naming the file and the line ---------------------------------


def bad_case(tmp_path: Path, case: str) -> tuple[dict, str]:
    """(TextFiles arguments, the message expected) for one kind of bad file."""
    files = write_labelled_splits(tmp_path, "lines")
    test = files["test"]
    if case == "empty":
        test.write_text("\n \n")
        return files, f"{test}: the file is empty"
    if case == "no label":
        test.write_text("pos fine film\n  a line without a label\n")
        return (
            files,
            f"{test}:2: expected LABEL<space or tab>TEXT, got '  a line without a label' (no label)",
        )
    if case == "no text":
        test.write_text("pos fine film\n\nsport\n")
        return (
            files,
            f"{test}:3: expected LABEL<space or tab>TEXT, got 'sport' (a label and no text)",
        )
    if case == "unknown label":
        test.write_text("pos fine film\nspam buy now\n")
        return (
            files,
            f"{test}:2: label 'spam' is not in the training file {files['train']} (its labels: neg, pos, sport)",
        )
    if case == "undecodable":
        test.write_bytes(b"pos fine film\npos caf\xe9 noir\n")  # latin-1, not utf-8
        return files, f"{test}:2: byte 0xe9 is not utf-8 (data.encoding=utf-8); set data.encoding"
    if case == "csv columns":
        csv_files = write_labelled_splits(tmp_path / "csv", "csv")
        return {**csv_files, "text_column": "sentence"}, (
            f"{csv_files['train']}:1: the header has no column 'sentence' (it has 'id', 'text', "
            "'label'); name the columns with data.label_column and data.text_column"
        )
    if case == "csv empty label":
        csv_files = write_labelled_splits(tmp_path / "csv", "csv")
        csv_files["val"].write_text("id,text,label\n0,fine film,pos\n1,no label here,\n")
        return csv_files, f"{csv_files['val']}:3: no label (column 'label' is empty)"
    if case == "jsonl":
        j = write_labelled_splits(tmp_path / "j", "jsonl")
        j["train"].write_text('{"label": "a", "text": "x"}\n{"text": "no label"}\n')
        return j, f"{j['train']}:2: no label (no key 'label')"
    if case == "one class":
        files["train"].write_text("pos fine\npos good\npos great\n")
        return files, f"{files['train']}: every example has the label 'pos'"
    if case == "missing":
        return {
            **files,
            "val": tmp_path / "nowhere.txt",
        }, f"data.val={tmp_path / 'nowhere.txt'}: no such file"
    raise AssertionError(case)


BAD = ["empty", "no label", "no text", "unknown label", "undecodable", "csv columns",
       "csv empty label", "jsonl", "one class", "missing"]  # fmt: skip


@pytest.mark.parametrize("case", BAD)
def test_a_bad_file_is_one_error_naming_file_and_line(case: str, tmp_path: Path) -> None:
    kwargs, message = bad_case(tmp_path, case)
    with pytest.raises(DatasetError) as error:
        setup(**kwargs)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_encoding_named_reads_the_file(tmp_path: Path) -> None:
    kwargs, _ = bad_case(tmp_path, "undecodable")
    kwargs["train"].write_bytes(kwargs["train"].read_bytes() + b"neg caf\xe9 triste\n")
    dm = setup(**kwargs, encoding="latin-1")
    assert "café" in dm.vocab.tokens and len(dm.splits["test"][2]) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"train": None}, "data=text_files needs a training and a test file: data.train=PATH"),
        ({"format": "xml"}, "data.format must be null (by extension) or one of lines, csv, tsv, jsonl"),
        ({"tokenizer": "bpe"}, "data.tokenizer must be one of whitespace, words, got 'bpe'"),
        ({"encoding": "utf-9"}, "data.encoding must be a text encoding Python knows"),
        ({"val_size": 0}, "data.val_size must be a number of examples (an integer >= 1) or a fraction"),
        ({"val_size": 1.5}, "data.val_size must be a number of examples"),
    ],
)  # fmt: skip
def test_bad_settings_are_refused_before_reading(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TextFiles(**{"train": "a.txt", "test": "b.txt", **kwargs})
