"""Tiny Shakespeare (Karpathy's char-rnn): 1,115,394 characters of Shakespeare's plays in one
UTF-8 file, ROOT/tinyshakespeare/input.txt, modelled a character at a time. As nanoGPT's
shakespeare_char: the first 90% trains, the last 10% validates, and there is no test split."""

from __future__ import annotations

from datamodules.corpus import CorpusDataModule
from datamodules.downloads import RemoteFile
from datamodules.image import check_fraction
from datamodules.vocab import characters

URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"


class TinyShakespeare(CorpusDataModule):
    name = "Tiny Shakespeare"
    folder = "tinyshakespeare"
    files = (RemoteFile("input.txt", URL, "6fb458f1232090904fb40fe944165e91"),)
    char_level = True
    has_test_split = False

    def __init__(
        self,
        root: str,
        batch_size: int = 64,
        *,
        block_size: int = 256,
        val_fraction: float = 0.1,
        download: bool = True,
        verify: bool = True,
        cache_dir: str | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(
            root, batch_size, block_size=block_size, download=download, verify=verify,
            cache_dir=cache_dir, seed=seed,
        )  # fmt: skip
        check_fraction("data.val_fraction", val_fraction, allow_zero=False)
        self.val_fraction = val_fraction

    def settings(self) -> dict[str, float]:
        return {"val_fraction": self.val_fraction}

    def read(self) -> dict[str, list[str]]:
        text = (self.path / "input.txt").read_text(encoding="utf-8")
        cut = int(len(text) * (1 - self.val_fraction))  # nanoGPT: data[:int(n*0.9)]
        return {"train": characters(text[:cut]), "val": characters(text[cut:])}
