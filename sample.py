"""Generate text from a trained language model: python sample.py CHECKPOINT [--prompt TEXT] ...

Everything comes from the checkpoint (loaded with weights_only=True): the run's config rebuilds
the network, the datamodule's saved state gives the vocabulary. No data files are read.
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness.arguments import ArgumentParser


def load_language_model(path: str | Path):
    """-> (network in eval mode, the datamodule holding its vocabulary)."""
    import torch
    from omegaconf import OmegaConf

    from harness.protocol import DataTraits, traits
    from harness.run.build import build_datamodule, build_net, target_class

    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    cfg = OmegaConf.create(ckpt["config"])
    data_cls = target_class(cfg.data)
    if traits(data_cls, DataTraits).target_kind != "tokens":
        sys.exit(f"error: {path} is not a language model (data={cfg.data._target_})")
    datamodule = build_datamodule(cfg)
    datamodule.load_state_dict(ckpt[data_cls.__qualname__])  # the vocabulary
    net = build_net(cfg, datamodule.dims)
    prefix = "net."
    net.load_state_dict(
        {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    )
    return net.eval(), datamodule


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "checkpoint",
        help="a language model's checkpoint (a run on a text corpus), e.g. "
        "RUN_DIR/checkpoints/best.ckpt; nothing else is read",
    )
    parser.add_argument(
        "--prompt",
        default=None,
        help="text to continue, tokenised as the run's "
        "data was (default: a random token per sample)",
    )
    parser.add_argument(
        "--tokens", type=int, default=500, help="tokens to generate after the prompt (default 500)"
    )
    parser.add_argument("--num", type=int, default=1, help="samples to draw (default 1)")
    parser.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        help="divides the logits: below 1 more likely tokens, above 1 more varied (default 1.0)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seeds the sampling, for repeatable text (default 0)"
    )
    args = parser.parse_args(argv)
    import torch

    from datamodules.vocab import characters, whitespace
    from lightning_modules.language_model import generate

    net, datamodule = load_language_model(args.checkpoint)
    vocab, char_level = datamodule.vocab, datamodule.char_level
    g = torch.Generator().manual_seed(args.seed)
    if args.prompt:
        tokens = (characters if char_level else whitespace)(args.prompt)
        start = vocab.encode(tokens).repeat(args.num, 1)  # (num, T0)
    else:
        start = torch.randint(len(vocab), (args.num, 1), generator=g)
    out = generate(net, start, args.tokens, datamodule.block_size, args.temperature, g)
    for row in out.tolist():
        print(("" if char_level else " ").join(vocab.decode(row)))
        print("---")


if __name__ == "__main__":
    main()
