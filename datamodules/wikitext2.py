"""WikiText-2 (Merity et al., 2016): Wikipedia's Good and Featured articles, tokenised, with
<unk> for words seen fewer than 3 times (2.1M / 218k / 246k words, 33,278 distinct). Read from
the published archive as it is, ROOT/wikitext2/wikitext-2-v1.zip, members
wikitext-2/wiki.{train,valid,test}.tokens. Words are tokens and every line ends with <eos>."""

from __future__ import annotations

import zipfile

from datamodules import DatasetError
from datamodules.corpus import CorpusDataModule, words_and_eos
from datamodules.downloads import RemoteFile

# The original Salesforce S3 address is gone; this is the author's own mirror of the same
# archive. The md5 is the one torchtext's WikiText2 dataset lists.
URL = "https://wikitext.smerity.com/wikitext-2-v1.zip"


class WikiText2(CorpusDataModule):
    name = "WikiText-2"
    folder = "wikitext2"
    files = (RemoteFile("wikitext-2-v1.zip", URL, "542ccefacc6c27f945fb54453812b3cd"),)

    def read(self) -> dict[str, list[str]]:
        archive = self.path / "wikitext-2-v1.zip"
        try:
            with zipfile.ZipFile(archive) as z:
                return {
                    split: words_and_eos(z.read(f"wikitext-2/wiki.{name}.tokens").decode("utf-8"))
                    for split, name in (("train", "train"), ("val", "valid"), ("test", "test"))
                }
        except (zipfile.BadZipFile, KeyError) as e:
            raise DatasetError(f"{archive} is not the WikiText-2 archive ({e})") from e
