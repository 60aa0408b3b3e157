"""What the text datamodules share: the published files of a dataset (downloaded into
ROOT/<folder>/ on first use, checked against their published md5), tokenised once into tensors
that are cached on disk, and the vocabulary, which Lightning saves in every checkpoint
(state_dict) so that a trained model can be evaluated or sampled later.

A subclass names its folder and files and turns them into {"vocab": [...], "splits": {...}}
(`build`): corpora for language modelling (corpus.py) or labelled texts (text_classification.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import torch

from datamodules import DatasetError
from datamodules.downloads import RemoteFile, fetch, require, verify
from datamodules.image import check_positive_int
from datamodules.tensor_loader import SplitLoaders
from datamodules.token_cache import cache_file, cached
from datamodules.vocab import Vocabulary


class TextDataModule(SplitLoaders, L.LightningDataModule):
    input_kind: ClassVar[str] = "tokens"
    target_kind: ClassVar[str]  # "tokens" (a corpus: predict its tokens) or "class" (a label each)
    name: ClassVar[str]  # for messages: "Tiny Shakespeare"
    folder: ClassVar[str]  # ROOT/<folder>/ holds the published files
    files: ClassVar[tuple[RemoteFile, ...]]
    has_test_split: ClassVar[bool] = True

    def __init__(
        self,
        root: str,
        batch_size: int,
        *,
        download: bool = True,
        verify: bool = True,
        cache_dir: str | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        check_positive_int("data.batch_size", batch_size)
        self.root = Path(root)
        self.batch_size = batch_size
        self.download = download
        self.verify = verify  # md5 of the files, whenever they are tokenised afresh
        self.cache_dir = cache_dir  # None: tokenise on every run
        self.seed = seed
        self.vocab: Vocabulary | None = None
        self.splits: dict[str, tuple[torch.Tensor, ...]] | None = None

    @property
    def path(self) -> Path:
        return self.root / self.folder

    def settings(self) -> dict[str, Any]:
        """The constructor arguments that change the tensors (they key the cache)."""
        return {}

    def build(self) -> dict[str, Any]:
        """Read the files -> {"vocab": token list, "splits": {name: [tensors]}}."""
        raise NotImplementedError

    def prepare_data(self) -> None:
        if self.download:
            fetch(self.path, self.files, self.name)

    def setup(self, stage: str | None = None) -> None:
        if self.splits is not None:
            return
        require(self.path, self.files, self.name, self.download)

        def checked_build() -> dict[str, Any]:
            if self.verify:
                verify(self.path, self.files)
            return self.build()

        cache = self.cache_dir and cache_file(
            self.cache_dir, type(self).__name__, self.path, self.settings()
        )
        data = cached(cache or None, [self.path / f.name for f in self.files], checked_build)
        self._adopt(data["vocab"])
        self.splits = {name: tuple(tensors) for name, tensors in data["splits"].items()}

    def _adopt(self, tokens: list[str]) -> None:
        if self.vocab is not None and self.vocab.tokens != tokens:
            raise DatasetError(
                f"the checkpoint's vocabulary and the one built from {self.path} differ "
                f"({len(self.vocab)} and {len(tokens)} tokens): the files changed since the "
                "checkpoint was written, or the data options differ (data.min_freq ...)."
            )
        self.vocab = Vocabulary(tokens)

    def _split(self, name: str) -> tuple[torch.Tensor, ...]:
        if self.splits is None:
            raise RuntimeError("call setup() before asking for data")
        return self.splits[name]

    # Lightning stores these in every checkpoint and restores them when one is loaded.
    def state_dict(self) -> dict[str, Any]:
        return {"vocab": list(self.vocab.tokens)} if self.vocab is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "vocab" in state:
            self._adopt(state["vocab"])
