"""eval.py: a checkpoint evaluated (or predicting) from itself alone, in a run directory of its
own; the training run's test metrics reproduced exactly; bad input one line, exit 2, nothing
written."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.run.evaluate import main
from harness.run.recipe import train
from tests.conftest import FAST, ROOT, compose
from tests.own_files import NAMES, labelled_examples, write_labelled, write_labelled_splits
from tests.test_bad_input import assert_clear_failure, run_cli
from tests.test_text_training import SMALL

DIGITS = ["data=digits", "model=mlp"]


def texts(root: Path) -> list[str]:
    return ["data=text_files", f"data.train={root / 'train.tsv'}", f"data.test={root / 'test.tsv'}",
            "data.cache_dir=null", "data.batch_size=4", "model=textcnn", *SMALL["textcnn"]]  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict]]:
    """A tiny digits run and a text_files run (TSV fixture files), each trained and tested."""
    root = tmp_path_factory.mktemp("eval")
    write_labelled_splits(root / "texts", "tsv")
    out = {}
    for name, overrides in (("digits", DIGITS), ("texts", texts(root / "texts"))):
        run_dir = root / name
        out[name] = (run_dir, train(compose([*FAST, *overrides]), run_dir))
        assert out[name][1]["status"] == "finished"
    return out


def evaluate(*args: str) -> tuple[int, dict | None]:
    run_dir = next(a.split("=", 1)[1] for a in args if a.startswith("run_dir="))
    code = main(list(args))
    path = Path(run_dir) / "results.json"
    return code, json.loads(path.read_text()) if path.is_file() else None


@pytest.mark.slow
@pytest.mark.parametrize("name", ["digits", "texts"])
def test_eval_reproduces_the_training_runs_test_metrics(name, runs, tmp_path) -> None:
    run_dir, trained = runs[name]
    code, results = evaluate(f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}",
                             f"run_dir={tmp_path / 'e'}")  # fmt: skip
    assert code == 0 and results["status"] == "finished" and results["job_type"] == "eval"
    test_keys = sorted(k for k in trained if k.startswith("test/"))
    assert test_keys and sorted(k for k in results if k.startswith("test/")) == test_keys
    for k in test_keys:
        assert results[k] == trained[k], k  # exactly: the same batches through the same weights
    assert not (run_dir / "eval").exists()  # nothing written into the training run


def test_eval_of_the_validation_split(runs, tmp_path) -> None:
    run_dir, trained = runs["texts"]  # validated on examples held out of the training file
    code, results = evaluate(f"ckpt_path={run_dir}", "split=val", f"run_dir={tmp_path / 'e'}")
    assert code == 0 and "val/acc" in results and not any(k.startswith("test/") for k in results)
    assert results["val/loss"] == pytest.approx(trained["best"]["val/loss"], rel=1e-5)


def test_a_copied_run_directory_evaluates_its_own_checkpoint(runs, tmp_path) -> None:
    run_dir, _ = runs["digits"]
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    code, results = evaluate(f"ckpt_path={copy}", f"run_dir={tmp_path / 'e'}")
    assert code == 0
    assert results["checkpoint"] == str((copy / "checkpoints" / "best.ckpt").resolve())
    # results.json's best_checkpoint, recorded absolute (by the directory a copy came from) or
    # relative, is read in the directory given
    record = json.loads((copy / "results.json").read_text())
    (copy / "checkpoints" / "best.ckpt").rename(copy / "checkpoints" / "best-v1.ckpt")
    for n, recorded in enumerate(
        [str(run_dir / "checkpoints" / "best-v1.ckpt"), "checkpoints/best-v1.ckpt"]
    ):
        (copy / "results.json").write_text(json.dumps({**record, "best_checkpoint": recorded}))
        code, results = evaluate(f"ckpt_path={copy}", f"run_dir={tmp_path / str(n)}")
        assert code == 0
        assert results["checkpoint"] == str((copy / "checkpoints" / "best-v1.ckpt").resolve())


def test_other_data_is_read_with_the_checkpoints_vocabulary_and_classes(runs, tmp_path) -> None:
    run_dir, _ = runs["texts"]
    # another file, in another format, its labels in another order: the checkpoint's classes
    other = write_labelled(
        tmp_path / "other.jsonl", labelled_examples("val", seed=5)[::-1], "jsonl"
    )
    code, results = evaluate(f"ckpt_path={run_dir}", f"data.test={other}", "data.format=null",
                             f"run_dir={tmp_path / 'e'}")  # fmt: skip
    assert code == 0 and 0 <= results["test/acc"] <= 1
    with open(other, "a") as f:
        f.write(json.dumps({"label": "weather", "text": "rain again"}) + "\n")
    code, results = evaluate(
        f"ckpt_path={run_dir}", f"data.test={other}", f"run_dir={tmp_path / 'f'}"
    )
    assert code == 2 and results is None and not (tmp_path / "f").exists()


def eval_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "eval.py", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


@pytest.mark.slow  # starts processes
def test_unknown_label_in_other_data_is_one_line(runs, tmp_path) -> None:
    run_dir, _ = runs["texts"]
    other = write_labelled(
        tmp_path / "o.tsv", [("weather", "rain"), *labelled_examples("val")], "tsv"
    )
    out = eval_cli(f"ckpt_path={run_dir}", f"data.test={other}", f"run_dir={tmp_path / 'e'}")
    assert_clear_failure(out, "label 'weather' is not in the checkpoint's classes")
    assert not (tmp_path / "e").exists()


@pytest.mark.slow  # starts processes
def test_bad_input_is_one_line_and_writes_nothing(runs, tmp_path) -> None:
    run_dir, _ = runs["digits"]
    best = run_dir / "checkpoints" / "best.ckpt"
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    cases = [
        ([f"ckpt_path={tmp_path / 'missing.ckpt'}"], "no checkpoint file at"),
        ([f"ckpt_path={garbage}"], "is not a readable checkpoint"),
        ([f"ckpt_path={foreign}"], "not a checkpoint of this harness"),
        ([f"ckpt_path={best}", "split=train"], "split must be test or val"),
        ([f"ckpt_path={best}", "data.bogus=1"], "no key data.bogus"),
        ([f"ckpt_path={best}", "data=mnist"], "the checkpoint fixes data"),
        ([f"ckpt_path={best}", "data.batch_size=big"], "data.batch_size must be a number"),
        ([f"ckpt_path={best}", f"run_dir={run_dir}"], "already holds files"),
        ([f"ckpt_path={best}", "trainer.accelerator=gpu"], "trainer: "),
        ([f"ckpt_path={best}", "seed=-1"], "seed must be"),
        ([], "ckpt_path=PATH is required"),
    ]
    for args, expected in cases:
        out_dir = tmp_path / "e"
        extra = [] if any(a.startswith("run_dir=") for a in args) else [f"run_dir={out_dir}"]
        out = eval_cli(*args, *extra)
        assert_clear_failure(out, expected)
        assert not out_dir.exists(), args


@pytest.mark.slow
def test_a_datamodule_without_a_test_split(tmp_path, data_root) -> None:
    from tests.conftest import fixture_overrides

    run_dir = tmp_path / "lm"
    overrides = [*FAST, *fixture_overrides("shakespeare_char", data_root), "model=gpt", "task=lm",
                 *SMALL["gpt"]]  # fmt: skip
    assert train(compose(overrides), run_dir)["status"] == "finished"
    code = main([f"ckpt_path={run_dir}", f"run_dir={tmp_path / 'e'}"])
    assert code == 2 and not (tmp_path / "e").exists()
    code, results = evaluate(f"ckpt_path={run_dir}", "split=val", f"run_dir={tmp_path / 'v'}")
    assert code == 0 and "val/loss" in results
    # predict: each prompt line continued by `tokens` characters
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("First Citizen:\n\nthe \n")
    out = tmp_path / "gen.jsonl"
    code, results = evaluate(f"ckpt_path={run_dir}", f"predict={prompts}", f"predict_out={out}",
                             "tokens=12", f"run_dir={tmp_path / 'p'}")  # fmt: skip
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert (
        code == 0
        and results["count"] == 2
        and [r["input"] for r in rows] == ["First Citizen:", "the "]
    )
    assert all(len(r["prediction"]) == 12 for r in rows)


def test_training_zero_epochs_from_a_checkpoint_points_to_eval(runs, tmp_path) -> None:
    run_dir, _ = runs["digits"]
    out = run_cli(*DIGITS, *FAST, f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}",
                  "trainer.max_epochs=0", f"hydra.run.dir={tmp_path / 'r'}")  # fmt: skip
    assert_clear_failure(out, "trains nothing", "python eval.py ckpt_path=")
    assert not (tmp_path / "r").exists()


@pytest.mark.slow  # starts processes
def test_help_is_fast_and_imports_no_torch() -> None:
    out = subprocess.run([sys.executable, "-X", "importtime", "eval.py", "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0 and "ckpt_path=PATH" in out.stdout and "predict=FILE" in out.stdout
    assert " torch" not in out.stderr and "lightning" not in out.stderr


def read_predictions(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_predict_round_trip_for_text(runs, tmp_path) -> None:
    run_dir, trained = runs["texts"]
    test_file = run_dir.parent / "texts" / "test.tsv"
    code, results = evaluate(
        f"ckpt_path={run_dir}", f"predict={test_file}", f"run_dir={tmp_path / 'p'}"
    )
    assert code == 0 and results["job_type"] == "predict"
    rows = read_predictions(Path(results["predictions"]))  # default: RUN_DIR/predictions.csv
    assert Path(results["predictions"]) == tmp_path / "p" / "predictions.csv"
    examples = labelled_examples("test")
    assert [r["input"] for r in rows] == [t for _, t in examples]
    for r in rows:
        probs = [float(r[f"p_{n}"]) for n in NAMES]
        assert r["prediction"] == NAMES[probs.index(max(probs))]
        assert sum(probs) == pytest.approx(1, abs=1e-4)
    # the training run tested the first 2 batches of 4 (FAST): its accuracy, from the predictions
    hits = [r["prediction"] == y for r, (y, _) in zip(rows[:8], examples[:8], strict=True)]
    assert sum(hits) / 8 == pytest.approx(trained["test/acc"])
    # the same predictions as JSONL, from a plain text file (one input a line, no labels)
    plain = tmp_path / "inputs.txt"
    plain.write_text("".join(t + "\n" for _, t in examples))
    out = tmp_path / "out.jsonl"
    code, _ = evaluate(f"ckpt_path={run_dir}", f"predict={plain}", f"predict_out={out}",
                       f"run_dir={tmp_path / 'q'}")  # fmt: skip
    again = read_predictions(out)
    assert code == 0 and [r["prediction"] for r in again] == [r["prediction"] for r in rows]
    assert set(again[0]["probabilities"]) == set(NAMES)


@pytest.mark.slow
def test_predict_round_trip_for_an_image_folder(tmp_path) -> None:
    from tests.own_files import write_image_folder

    root = write_image_folder(tmp_path / "images")
    run_dir = tmp_path / "run"
    overrides = [*FAST, "data=image_folder", f"data.root={root}", "data.batch_size=8", "model=mlp"]
    trained = train(compose(overrides), run_dir)
    code, results = evaluate(f"ckpt_path={run_dir}", f"predict={root / 'test'}",
                             f"run_dir={tmp_path / 'p'}")  # fmt: skip
    assert code == 0
    rows = read_predictions(Path(results["predictions"]))
    classes = sorted(p.name for p in (root / "train").iterdir())
    truth = [Path(r["input"]).parent.name for r in rows]
    assert len(rows) == len(list((root / "test").rglob("*.png"))) and set(truth) <= set(classes)
    hits = [r["prediction"] == y for r, y in zip(rows[:16], truth[:16], strict=True)]
    assert sum(hits) / 16 == pytest.approx(trained["test/acc"])  # the tested 2 batches of 8
    one = next((root / "test").rglob("*.png"))
    code, results = evaluate(f"ckpt_path={run_dir}", f"predict={one}", f"run_dir={tmp_path / 'q'}")
    assert code == 0 and results["count"] == 1


@pytest.mark.slow  # starts processes
def test_predict_bad_input(runs, tmp_path) -> None:
    run_dir, _ = runs["texts"]
    inputs = tmp_path / "in.txt"
    inputs.write_text("a b c\n")
    for args, expected in [
        ([f"predict={tmp_path / 'nope.txt'}"], "no such file or folder"),
        ([f"predict={inputs}", f"predict_out={tmp_path / 'o.parquet'}"], "must be .csv or .jsonl"),
        ([f"predict={inputs}", f"predict_out={inputs}"], "extension must be"),
    ]:
        out = eval_cli(f"ckpt_path={run_dir}", *args, f"run_dir={tmp_path / 'e'}")
        assert_clear_failure(out, expected)
        assert not (tmp_path / "e").exists()


@pytest.mark.slow
def test_eval_logs_to_wandb_as_an_eval_job(tmp_path, monkeypatch) -> None:
    from tests.wandb_files import records, summary

    monkeypatch.setenv("WANDB_MODE", "offline")
    overrides = [o for o in FAST if not o.startswith("logger.")]  # the default loggers: W&B + CSV
    run_dir = tmp_path / "run"
    assert train(compose([*overrides, *DIGITS]), run_dir)["status"] == "finished"
    code, results = evaluate(f"ckpt_path={run_dir}", f"run_dir={tmp_path / 'e'}")
    assert code == 0
    (path,) = (tmp_path / "e").glob("wandb/offline-run-*/run-*.wandb")
    (run,) = [r.run for r in records(path) if r.WhichOneof("record_type") == "run"][:1]
    assert run.job_type == "eval"
    assert summary(path)["test/acc"] == pytest.approx(results["test/acc"], rel=1e-6)
    code, _ = evaluate(
        f"ckpt_path={run_dir}", "logger.wandb.mode=disabled", f"run_dir={tmp_path / 'f'}"
    )
    assert code == 0 and not (tmp_path / "f" / "wandb").exists()


@pytest.mark.slow
def test_training_fewer_epochs_than_the_checkpoint_has_points_to_eval(tmp_path) -> None:
    first = tmp_path / "first"
    overrides = [*FAST, *DIGITS, "trainer.max_steps=-1", "trainer.max_epochs=2",
                 "trainer.limit_train_batches=2"]  # fmt: skip
    assert train(compose(overrides), first)["status"] == "finished"
    out = run_cli(*overrides[:-2], "trainer.max_epochs=1", "trainer.limit_train_batches=2",
                  f"ckpt_path={first / 'checkpoints' / 'last.ckpt'}", f"hydra.run.dir={tmp_path / 'r'}")  # fmt: skip
    assert_clear_failure(out, "trainer.max_epochs=1 (it has trained 2 epochs)", "python eval.py")
    assert not (tmp_path / "r").exists()
