"""eval.py predict=FILE: one prediction per input, written as CSV or JSONL (by predict_out's
extension). A classifier gives the class name and every class's probability for each text (a
.csv/.tsv column data.text_column, a .jsonl key of that name, else one text a line) or each
image (a folder, searched recursively, or one file); a language model continues each line of FILE
(as sample.py does). The inputs are encoded as the run's data was: the checkpoint's vocabulary,
tokeniser, image size, channels and normalisation."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.run.evaluate import Rebuilt, rebuild, with_job_type, write_config

OUT_FORMATS = (".csv", ".jsonl")
DEFAULT_OUT = "predictions.csv"


def output_path(given: str | None, run_dir: Path) -> Path:
    out = Path(given).expanduser() if given else run_dir / DEFAULT_OUT
    if out.suffix.lower() not in OUT_FORMATS:
        raise ConfigError(f"predict_out={out}: the extension must be .csv or .jsonl")
    if out.exists():
        raise ConfigError(f"predict_out={out} already exists; choose another file")
    return out.absolute()


def predict(cfg: Any, ckpt: dict[str, Any], own: dict[str, Any], run_dir: Path) -> Path:
    """Predict for every input of own["predict"]; write them and RUN_DIR/results.json."""
    from harness.protocol import DataTraits, TaskTraits, traits
    from harness.run.build import target_class
    from harness.rundir.files import write_results, write_text_atomic

    source = Path(own["predict"]).expanduser()
    if not source.exists():
        raise ConfigError(f"predict={own['predict']}: no such file or folder")
    out = output_path(own["predict_out"], run_dir)
    data = traits(target_class(cfg.data), DataTraits)
    task = traits(target_class(cfg.task.module), TaskTraits)
    if task.target_kind == "tokens" and task.causal:
        rows = continue_lines(cfg, ckpt, source, own)
    elif task.target_kind == "class" and data.target_kind == "class":
        rows = classify(cfg, ckpt, source, data.input_kind)
    else:
        raise ConfigError(
            f"predict= works for classifiers and language models; this checkpoint's task is "
            f"{cfg.task.module._target_}"
        )
    with_job_type(cfg, "predict")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_config(run_dir, cfg)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, render(rows, out.suffix.lower()))
    write_results(run_dir, {"status": "finished", "job_type": "predict", "predictions": str(out),
                            "count": len(rows), "checkpoint": own["checkpoint"]})  # fmt: skip
    return out


def render(rows: list[dict[str, Any]], suffix: str) -> str:
    if suffix == ".jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    flat = [{k: v for k, v in r.items() if k != "probabilities"} | {f"p_{name}": p for name, p in
            r.get("probabilities", {}).items()} for r in rows]  # fmt: skip
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=list(flat[0]) if flat else ["input"])
    writer.writeheader()
    writer.writerows(flat)
    return buf.getvalue()


def device_for(cfg: Any) -> str:
    import torch

    wanted = str(cfg.trainer.get("accelerator", "auto"))
    return "cuda" if torch.cuda.is_available() and wanted in ("auto", "gpu", "cuda") else "cpu"


def classify(cfg: Any, ckpt: dict[str, Any], source: Path, input_kind: str | None) -> list[dict]:
    import torch

    if input_kind == "image":
        inputs, rebuilt, x = images(cfg, ckpt, source)
        batches = [x[i : i + 256] for i in range(0, len(x), 256)]
    else:
        inputs = read_texts(source, cfg.data.get("text_column") or "text", data_encoding(cfg))
        rebuilt = rebuild(cfg, ckpt, stage=None)  # the vocabulary and classes are the state's
        batches = text_batches(rebuilt.datamodule, inputs, int(cfg.data.get("batch_size") or 64))
    names = rebuilt.dims["class_names"]
    device = device_for(cfg)
    module = rebuilt.module.to(device)
    probs = []
    with torch.no_grad():
        for batch in batches:
            batch = [t.to(device) for t in batch] if isinstance(batch, list) else batch.to(device)
            probs.append(module(batch).float().softmax(-1).cpu())  # (B, num_classes)
    p = torch.cat(probs) if probs else torch.zeros(0, len(names))
    return [{"input": inp, "prediction": names[int(row.argmax())],
             "probabilities": {n: round(float(v), 6) for n, v in zip(names, row, strict=True)}}
            for inp, row in zip(inputs, p, strict=True)]  # fmt: skip


def read_texts(source: Path, column: str, encoding: str = "utf-8") -> list[str]:
    """The texts of a file (read as the training files were, in data.encoding): a CSV/TSV column
    or a JSONL key named `column`, else every non-blank line (no label needed)."""
    from datamodules.files import lines, read_text

    if source.is_dir():
        raise ConfigError(f"predict={source} is a folder; a text classifier reads a file")
    text = read_text(source, encoding)
    suffix = source.suffix.lower()
    if suffix in (".csv", ".tsv"):
        reader = csv.DictReader(
            io.StringIO(text, newline=""), delimiter="\t" if suffix == ".tsv" else ","
        )
        if column not in (reader.fieldnames or []):
            raise ConfigError(f"{source}:1: the header has no column {column!r} (data.text_column)")
        texts = [row[column] or "" for row in reader]
    elif suffix in (".jsonl", ".ndjson"):
        texts = []
        for n, line in enumerate(lines(text), 1):
            if line.strip():
                try:
                    texts.append(str(json.loads(line)[column]))
                except (ValueError, KeyError, TypeError):
                    raise ConfigError(
                        f"{source}:{n}: not a JSON object with the key {column!r}"
                    ) from None
    else:
        texts = [line for line in lines(text) if line.strip()]
    if not texts:
        raise ConfigError(f"predict={source}: the file holds no inputs")
    return texts


def text_batches(datamodule: Any, texts: list[str], batch_size: int) -> list[list[Any]]:
    """Encoded as the training texts were: (tokens (B, T), lengths (B,)) per batch."""
    from datamodules.text_classification import padded

    tokens, lengths, _ = padded(datamodule.vocab, datamodule.tokens(texts), [0] * len(texts))
    return [[tokens[i : i + batch_size, : int(lengths[i : i + batch_size].max())], lengths[i : i + batch_size]]
            for i in range(0, len(texts), batch_size)]  # fmt: skip


def images(cfg: Any, ckpt: dict[str, Any], source: Path) -> tuple[list[str], Rebuilt, Any]:
    """(the image files, the rebuilt run, their normalised pixels (N, C, S, S)). Size, channels
    and normalisation are the checkpoint's (data=image_folder), else those of the run's data."""
    from datamodules.augment import normalize
    from datamodules.image_folder import EXTENSIONS, decode, image_files
    from harness.protocol import normalisation
    from harness.run.build import target_class

    files = image_files(source) if source.is_dir() else [source]
    if not files or files[0].suffix.lower() not in EXTENSIONS:
        raise ConfigError(f"predict={source}: no image files ({', '.join(EXTENSIONS)})")
    state = ckpt.get(target_class(cfg.data).__qualname__) or {}
    if "size" in state:
        dims = {"in_channels": state["channels"], "image_size": state["size"],
                "num_classes": len(state["class_names"]), "class_names": state["class_names"]}  # fmt: skip
        rebuilt = rebuild(cfg, ckpt, stage=None, dims=dims)
        mean, std = state["mean"], state["std"]
    else:  # a built-in dataset: its shapes come from its data
        rebuilt = rebuild(cfg, ckpt, stage="test")
        mean, std = normalisation(rebuilt.datamodule)
    import torch

    c, s = rebuilt.dims["in_channels"], rebuilt.dims["image_size"]
    from datamodules import DatasetError

    try:
        x = torch.stack([decode(p, c, s) for p in files])  # uint8 (N, C, S, S)
    except DatasetError as e:
        raise ConfigError(str(e)) from None
    return [str(p) for p in files], rebuilt, normalize(x, mean, std)


def continue_lines(cfg: Any, ckpt: dict[str, Any], source: Path, own: dict[str, Any]) -> list[dict]:
    """Each non-blank line of the file continued by `tokens` tokens, as sample.py samples."""
    import torch

    from datamodules.files import lines, read_text
    from datamodules.vocab import characters, whitespace
    from lightning_modules.language_model import generate

    steps, temperature = own["tokens"], own["temperature"]
    if not isinstance(steps, int) or steps < 1 or not temperature > 0:
        raise ConfigError("tokens must be a positive integer and temperature a positive number")
    prompts = [line for line in lines(read_text(source, data_encoding(cfg))) if line.strip()]
    if not prompts:
        raise ConfigError(f"predict={source}: the file holds no prompts")
    rebuilt = rebuild(cfg, ckpt, stage=None)
    dm = rebuilt.datamodule
    vocab, split = dm.vocab, characters if dm.char_level else whitespace
    sep = "" if dm.char_level else " "
    net, device = rebuilt.module.net.to(device_for(cfg)), device_for(cfg)
    g = torch.Generator(device=device).manual_seed(int(cfg.seed))
    rows = []
    for n, prompt in enumerate(prompts, 1):
        try:
            start = vocab.encode(split(prompt))[None].to(device)  # (1, T0)
        except KeyError as e:
            raise ConfigError(f"{source}:{n}: {e} is not in the checkpoint's vocabulary") from None
        out = generate(net, start, steps, dm.block_size, temperature, g)[0, start.shape[1] :]
        rows.append({"input": prompt, "prediction": sep.join(vocab.decode(out.tolist()))})
    return rows


def data_encoding(cfg: Any) -> str:
    """The encoding the run's text files were read in (data.encoding; UTF-8 where it has none)."""
    from omegaconf import OmegaConf

    return OmegaConf.select(cfg, "data.encoding", default=None) or "utf-8"
