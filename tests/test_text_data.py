"""The text datamodules read the published formats; the tokenisers and vocabulary round-trip;
language-model batches are shifted blocks; the token cache is reused until a source file changes;
checksums catch corrupt files; the vocabulary travels with the datamodule's state."""

from __future__ import annotations

import http.server
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import ClassVar

import pytest
import torch

from datamodules import DatasetError
from datamodules.ag_news import AGNews
from datamodules.corpus import EOS
from datamodules.imdb import IMDB
from datamodules.ptb import PennTreebank
from datamodules.shakespeare import TinyShakespeare
from datamodules.sst2 import SST2
from datamodules.vocab import MASK, PAD, UNK, Vocabulary, basic_english, characters, whitespace
from datamodules.wikitext2 import WikiText2
from tests.conftest import ROOT

OFF = {"download": False, "verify": False}  # fixture files: no network, not the published md5s


def test_character_vocabulary_round_trips_text() -> None:
    text = "First Citizen:\nBefore we proceed, hear me speak.\n"
    vocab = Vocabulary.build([characters(text)], specials=(UNK, MASK))
    assert vocab.tokens[:2] == [UNK, MASK] and len(vocab) == 2 + len(set(text))
    assert "".join(vocab.decode(vocab.encode(characters(text)))) == text
    assert vocab.decode(vocab.encode(list("Z"))) == [UNK]  # never seen: unknown


def test_word_vocabulary_counts_min_freq_and_unknowns() -> None:
    sentences = [whitespace("the cat sat on the mat"), whitespace("the dog sat")]
    vocab = Vocabulary.build(sentences, specials=(PAD, UNK), min_freq=2)
    assert vocab.tokens == [PAD, UNK, "the", "sat"]  # most frequent first; rare words left out
    assert vocab.encode(["the", "cat", "sat"]).tolist() == [2, 1, 3]
    assert vocab.decode(vocab.encode(sentences[0])) == ["the", UNK, "sat", UNK, "the", UNK]
    full = Vocabulary.build(sentences, specials=(PAD, UNK))
    assert full.decode(full.encode(sentences[1])) == sentences[1]


def test_basic_english_lowercases_and_splits_punctuation() -> None:
    assert basic_english("It's GREAT!<br />A 10/10 film.") == [
        "it's", "great", "!", "a", "10", "/", "10", "film", ".",
    ]  # fmt: skip


def test_tiny_shakespeare_splits_as_nanogpt(data_root: Path) -> None:
    dm = TinyShakespeare(str(data_root), 4, block_size=16, **OFF)
    dm.setup()
    text = (data_root / "tinyshakespeare" / "input.txt").read_text()
    cut = int(len(text) * 0.9)
    train, val = dm.splits["train"][0], dm.splits["val"][0]
    assert len(train) == cut and len(val) == len(text) - cut and "test" not in dm.splits
    assert "".join(dm.vocab.decode(train)) == text[:cut]
    dims = dm.dims
    assert dims["vocab_size"] == len(dm.vocab) == len(set(text[:cut])) + 2  # + <unk>, <mask>
    assert dims["block_size"] == 16 and dims["char_level"] and dims["mask_index"] == 1


def test_corpus_batches_are_blocks_and_their_next_tokens(data_root: Path) -> None:
    dm = TinyShakespeare(str(data_root), 4, block_size=16, seed=3, **OFF)
    dm.setup()
    corpus = dm.splits["train"][0]
    loader = dm.train_dataloader()
    batches = list(loader)
    assert len(batches) == len(loader) == ((len(corpus) - 16) // 16) // 4
    for x, y in batches[:5]:
        assert x.shape == y.shape == (4, 16)
        assert torch.equal(x[:, 1:], y[:, :-1])  # y is x moved on by one token
        for row, target in zip(x, y, strict=True):  # each block is a stretch of the corpus
            start = next(s for s in range(len(corpus) - 16) if torch.equal(corpus[s : s + 16], row))
            assert torch.equal(corpus[start + 1 : start + 17], target)
    starts = [int(b[0][0, 0]) for b in batches]
    assert len(set(starts)) > 1
    again = dm.train_dataloader()
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again, strict=True))  # seeded
    # Validation: consecutive blocks from the start of the split, the same every time.
    (vx, vy), *_ = list(dm.val_dataloader())
    val = dm.splits["val"][0]
    assert torch.equal(vx[1], val[16:32]) and torch.equal(vy[1], val[17:33])


def test_block_longer_than_a_split_is_refused(data_root: Path) -> None:
    dm = TinyShakespeare(str(data_root), 4, block_size=100_000, **OFF)
    dm.setup()
    with pytest.raises(ValueError, match=r"data.block_size=100000 leaves no block in the train"):
        dm.dims  # noqa: B018 (train() reads dims first, turning this into a one-line config error)
    with pytest.raises(ValueError, match=r"data.block_size=100000 leaves no block in the val"):
        dm.val_dataloader()


@pytest.mark.parametrize("cls", [PennTreebank, WikiText2])
def test_word_corpora_end_every_line_with_eos(cls, data_root: Path) -> None:
    dm = cls(str(data_root), 4, block_size=8, **OFF)
    dm.setup()
    assert set(dm.splits) == {"train", "val", "test"}
    words = dm.vocab.decode(dm.splits["train"][0])
    assert EOS in words and not dm.dims["char_level"]
    if cls is PennTreebank:
        lines = (data_root / "ptb" / "ptb.train.txt").read_text().splitlines()
        assert words[: len(lines[0].split()) + 1] == [*lines[0].split(), EOS]


def test_sst2_reads_label_and_sentence(data_root: Path) -> None:
    dm = SST2(str(data_root), 4, **OFF)
    dm.setup()
    first = (data_root / "sst2" / "stsa.binary.train").read_text().splitlines()[0]
    tokens, lengths, labels = dm.splits["train"]
    assert labels[0].item() == int(first[0]) and lengths[0].item() == len(first[2:].split())
    assert dm.vocab.decode(tokens[0, : lengths[0]]) == first[2:].split()
    assert dm.vocab.tokens[:2] == [PAD, UNK]
    assert {k: len(v[2]) for k, v in dm.splits.items()} == {"train": 64, "val": 16, "test": 16}
    assert dm.dims == {"vocab_size": len(dm.vocab), "pad_index": 0, "num_classes": 2,
                       "class_names": ["negative", "positive"]}  # fmt: skip


def test_classification_batches_are_padded_to_their_longest(data_root: Path) -> None:
    dm = SST2(str(data_root), 4, max_length=5, **OFF)
    dm.setup()
    assert int(dm.splits["train"][1].max()) == 5  # truncated to max_length
    (tokens, lengths), labels = next(iter(dm.val_dataloader()))
    assert tokens.shape == (4, int(lengths.max())) and labels.shape == (4,)
    for row, n in zip(tokens, lengths, strict=True):
        assert (row[n:] == 0).all() and (row[:n] != 0).all()  # <pad> exactly after the end


def test_imdb_reads_labelled_reviews_from_the_archive(data_root: Path) -> None:
    dm = IMDB(str(data_root), 4, val_size=6, **OFF)
    dm.setup()
    sizes = {k: len(v[2]) for k, v in dm.splits.items()}
    assert sizes == {"train": 18, "val": 6, "test": 24}  # unsup/ and imdb.vocab left out
    assert dm.splits["test"][2].tolist() == [0] * 12 + [1] * 12
    assert "<br" not in dm.vocab.index and "!" in dm.vocab.index


def test_ag_news_csv_classes_start_at_zero(data_root: Path) -> None:
    dm = AGNews(str(data_root), 4, val_size=8, **OFF)
    dm.setup()
    rows = (data_root / "ag_news" / "test.csv").read_text().splitlines()
    assert dm.splits["test"][2][0].item() == int(rows[0][1]) - 1
    assert "\\" not in dm.vocab.index and dm.dims["num_classes"] == 4


def test_held_out_validation_is_seeded_and_needs_a_size(data_root: Path) -> None:
    a, b = (AGNews(str(data_root), 4, val_size=8, split_seed=1, **OFF) for _ in range(2))
    a.setup(), b.setup()
    assert torch.equal(a.splits["val"][0], b.splits["val"][0])
    with pytest.raises(ValueError, match=r"data.val_size must be an integer in \[1, 63\]"):
        AGNews(str(data_root), 4, val_size=None, **OFF).setup()


def test_token_cache_is_reused_until_a_source_changes(data_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    shutil.copytree(data_root / "sst2", root / "sst2")
    builds = []

    class Counting(SST2):
        def build(self):
            builds.append(1)
            return super().build()

    def load() -> Counting:
        dm = Counting(str(root), 4, cache_dir=str(tmp_path / "cache"), **OFF)
        dm.setup()
        return dm

    first = load()
    second = load()
    assert len(builds) == 1  # the second run read the cache
    assert all(
        torch.equal(a, b) for a, b in zip(first.splits["test"], second.splits["test"], strict=True)
    )
    assert first.vocab == second.vocab
    with open(root / "sst2" / "stsa.binary.train", "a") as f:
        f.write("1 a brand new word\n")
    third = load()
    assert len(builds) == 2 and "brand" in third.vocab.index  # rebuilt from the changed file
    Counting(str(root), 4, min_freq=2, cache_dir=str(tmp_path / "cache"), **OFF).setup()
    assert len(builds) == 3  # other settings, other tensors


def test_a_failed_token_cache_write_never_fails_a_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from datamodules import token_cache

    source = tmp_path / "source.txt"
    source.write_text("some text\n")
    path = tmp_path / "cache" / "x.pt"
    real_save = torch.save
    # A full disk: torch.save raises RuntimeError ("file write failed"), not OSError.
    monkeypatch.setattr(torch, "save", lambda obj, f: real_save(obj, "/dev/full"))
    with caplog.at_level("WARNING", logger="datamodules.token_cache"):
        assert token_cache.cached(path, [source], lambda: {"a": 1}) == {"a": 1}
    assert "could not write the token cache" in caplog.text
    assert list(path.parent.iterdir()) == []  # no half-written temporary file left to fill the disk
    monkeypatch.setattr(torch, "save", real_save)
    assert token_cache.cached(path, [source], lambda: {"a": 1}) == {"a": 1}
    assert path.is_file()


@pytest.mark.parametrize("damage", ["torn", "foreign"])
def test_a_damaged_token_cache_file_is_rebuilt(tmp_path: Path, damage: str) -> None:
    from datamodules import token_cache

    source = tmp_path / "source.txt"
    source.write_text("some text\n")
    path = tmp_path / "x.pt"
    token_cache.cached(path, [source], lambda: {"a": torch.arange(1000)})
    if damage == "torn":  # a copy cut short, a disk error
        path.write_bytes(path.read_bytes()[:300])
    else:  # a readable file of another shape: another program's, an older format's
        torch.save([1, 2, 3], path)
    builds = []
    data = token_cache.cached(path, [source], lambda: builds.append(1) or {"a": torch.arange(3)})
    assert builds == [1] and torch.equal(data["a"], torch.arange(3))
    assert torch.equal(torch.load(path, weights_only=True)["data"]["a"], torch.arange(3))


def test_checksums_catch_a_corrupt_file(data_root: Path) -> None:
    with pytest.raises(DatasetError, match=r"stsa.binary.train is corrupt"):
        SST2(str(data_root), 4, download=False, verify=True).setup()


def test_missing_files_say_where_and_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"Tiny Shakespeare not found.*input.txt.*data.root"):
        TinyShakespeare(str(tmp_path), download=False).setup()


def test_vocabulary_travels_in_the_state_and_must_match(data_root: Path) -> None:
    dm = SST2(str(data_root), 4, **OFF)
    dm.setup()
    state = dm.state_dict()
    assert state == {"vocab": dm.vocab.tokens} and all(isinstance(t, str) for t in state["vocab"])
    fresh = SST2(str(data_root), 4, **OFF)
    fresh.load_state_dict(state)  # before setup: evaluation and sampling need no data files
    assert fresh.vocab == dm.vocab
    fresh.setup()  # the same files give the same vocabulary
    other = SST2(str(data_root), 4, min_freq=40, **OFF)  # fewer words
    other.setup()
    with pytest.raises(DatasetError, match="vocabulary"):
        other.load_state_dict(state)


@pytest.fixture
def http_server(data_root: Path):
    """The fixture files served over HTTP on localhost: the download path end to end, no network."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(data_root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_fetches_the_published_files_and_checks_them(
    data_root: Path, tmp_path: Path, http_server: str
) -> None:
    from torchvision.datasets.utils import calculate_md5

    from datamodules.downloads import RemoteFile

    source = data_root / "sst2"
    published = tuple(
        RemoteFile(f.name, f"{http_server}/sst2/{f.name}", calculate_md5(source / f.name))
        for f in SST2.files
    )

    class Served(SST2):
        files = published

    dm = Served(str(tmp_path / "root"), 4, download=True, verify=True)
    dm.prepare_data()
    dm.setup()
    got = (tmp_path / "root" / "sst2" / "stsa.binary.dev").read_bytes()
    assert got == (source / "stsa.binary.dev").read_bytes()
    assert len(dm.splits["val"][2]) == 16

    class Tampered(SST2):  # the server's file no longer matches the published checksum
        files = (RemoteFile("stsa.binary.train", published[0].url, "0" * 32),)

    with pytest.raises(DatasetError, match=r"could not download SST-2 from http://127"):
        Tampered(str(tmp_path / "other"), 4).prepare_data()
    assert not (tmp_path / "other").exists()  # no file, no empty folder, no lock file left behind
    assert sorted(p.name for p in (tmp_path / "root").iterdir()) == ["sst2"]  # no lock file


class Stalling(http.server.BaseHTTPRequestHandler):
    """Serves `payload` at any path, counting requests; while `stall` is set it sends the
    headers and half the bytes, then waits until `release` is set (a connection that hangs)."""

    payload = b""
    stall = threading.Event()
    release = threading.Event()
    half_sent = threading.Event()
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.requests.append(self.path)
        try:
            self.send_response(200)
            self.send_header("Content-Length", str(len(self.payload)))
            self.end_headers()
            half = len(self.payload) // 2
            self.wfile.write(self.payload[:half])
            self.wfile.flush()
            if self.stall.is_set():
                self.half_sent.set()
                self.release.wait(60)
                return
            time.sleep(0.05)  # slow enough that downloads not kept apart would overlap
            self.wfile.write(self.payload[half:])
        except OSError:
            pass  # the client was killed

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def stalling_server():
    Stalling.payload = torch.randint(0, 256, (300_000,), generator=torch.Generator().manual_seed(0))
    Stalling.payload = bytes(Stalling.payload.to(torch.uint8).tolist())
    Stalling.requests.clear()
    for event in (Stalling.stall, Stalling.release, Stalling.half_sent):
        event.clear()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stalling)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    Stalling.release.set()
    server.shutdown()


def _remote(url: str):
    import hashlib

    from datamodules.downloads import RemoteFile

    return RemoteFile("corpus.txt", f"{url}/corpus.txt", hashlib.md5(Stalling.payload).hexdigest())


@pytest.mark.slow
def test_a_download_killed_midway_is_fetched_again(tmp_path: Path, stalling_server: str) -> None:
    from datamodules.downloads import fetch

    folder = tmp_path / "data" / "corpus"
    Stalling.stall.set()
    script = (
        "import sys; from pathlib import Path; from datamodules.downloads import RemoteFile, fetch; "
        "fetch(Path(sys.argv[1]), [RemoteFile(*sys.argv[2:])], 'corpus')"
    )
    remote = _remote(stalling_server)
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(folder), remote.name, remote.url, remote.md5], cwd=ROOT
    )
    try:
        deadline = time.monotonic() + 120
        while not any(p.stat().st_size > 0 for p in folder.glob("*") if p.is_file()):
            assert child.poll() is None and time.monotonic() < deadline, "no partial file written"
            time.sleep(0.05)
    finally:
        child.kill()  # SIGKILL mid-download: no handler runs
        child.wait()
    Stalling.stall.clear()
    Stalling.release.set()
    fetch(folder, [remote], "corpus")  # the next run
    assert (folder / "corpus.txt").read_bytes() == Stalling.payload
    assert sorted(p.name for p in folder.iterdir()) == ["corpus.txt"]  # no partial file left
    assert sorted(p.name for p in folder.parent.iterdir()) == ["corpus"]  # no lock file left


def test_runs_that_start_together_download_once(tmp_path: Path, stalling_server: str) -> None:
    from datamodules.downloads import fetch

    folder = tmp_path / "data" / "corpus"
    remote = _remote(stalling_server)
    errors = []

    def run() -> None:
        try:
            fetch(folder, [remote], "corpus")
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # torchvision opens a URL once to follow redirects, then downloads it: one download in all
    assert len(Stalling.requests) == 2
    assert (folder / "corpus.txt").read_bytes() == Stalling.payload
    assert sorted(p.name for p in folder.parent.iterdir()) == ["corpus"]


def test_the_download_lock_admits_one_holder_and_leaves_no_file(tmp_path: Path) -> None:
    from datamodules.downloads import download_lock

    inside, overlaps = [], []
    root = tmp_path / "data"
    root.mkdir()

    def hold() -> None:
        for _ in range(20):
            with download_lock(root):
                overlaps.append(len(inside))
                inside.append(1)
                time.sleep(0.001)  # others open the lock file meanwhile, then find it unlinked
                inside.pop()

    threads = [threading.Thread(target=hold) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(overlaps) == 120 and set(overlaps) == {0}
    assert list(root.iterdir()) == []  # the last holder removed the lock file


def test_a_data_folder_holding_every_file_is_only_read(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datamodules import downloads

    def no_lock(*args):  # a shared, read-only data folder: no lock file can be made there
        raise AssertionError("took the download lock with every file present")

    monkeypatch.setattr(downloads, "download_lock", no_lock)
    SST2(str(data_root), 4, download=True, verify=False).prepare_data()
