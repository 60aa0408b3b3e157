"""logger=tensorboard: the event files hold the scalars under their logged names (the steps of
metrics.csv), the pictures as images, and the hyperparameters with the run's score."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.rundir.files import read_metrics
from tests.conftest import FAST, compose

pytest.importorskip("tensorboard")


def _train():
    from harness.run.recipe import train

    return train


def events(run_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (folder,) = {p.parent for p in (run_dir / "tensorboard").glob("*/events.out.tfevents.*")}
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def hparams(acc) -> tuple[dict, list[str]]:
    """(hyperparameters of the run's session, metric names of the experiment)."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    values, metrics = {}, []
    for content in acc.PluginTagToContent("hparams").values():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        if data.HasField("session_start_info"):
            for k, v in data.session_start_info.hparams.items():
                values[k] = getattr(v, v.WhichOneof("kind"))
        if data.HasField("experiment"):
            metrics += [m.name.tag for m in data.experiment.metric_infos]
    return values, metrics


@pytest.mark.slow
def test_tensorboard_run_holds_scalars_pictures_and_score(tmp_path: Path) -> None:
    overrides = [o for o in FAST if not o.startswith(("logger.", "callbacks="))]
    cfg = compose([*overrides, "logger=[csv,tensorboard]", "callbacks=[predictions]",
                   "data=digits", "model=mlp", "optim=adam", "optim.lr=3e-3",
                   "trainer.max_steps=6", "trainer.val_check_interval=3"])  # fmt: skip
    results = _train()(cfg, tmp_path)
    assert results["status"] == "finished"
    acc = events(tmp_path)
    assert (tmp_path / "tensorboard" / "adam-lr3e-3-s0").is_dir()  # TensorBoard's run name
    scalars = set(acc.Tags()["scalars"])
    _, rows = read_metrics(tmp_path / "metrics.csv")
    for name in ("train/loss", "val/acc", "val/loss", "test/acc"):
        assert name in scalars, name
        csv_steps = [int(r["step"]) for r in rows if r.get(name)]
        assert [e.step for e in acc.Scalars(name)] == csv_steps, name
    assert [e.value for e in acc.Scalars("train/loss")] == pytest.approx(
        [float(r["train/loss"]) for r in rows if r.get("train/loss")], rel=1e-6
    )
    # the pictures: one image per publication, as in RUN_DIR/pictures/
    assert "pictures/predictions" in acc.Tags()["images"]
    image = acc.Images("pictures/predictions")[-1]
    assert image.width > 100 and image.encoded_image_string[:4] == b"\x89PNG"
    # hyperparameters with the score: the HParams tab ranks runs by best/val/acc
    values, metrics = hparams(acc)
    assert values["optim/lr"] == pytest.approx(3e-3)
    assert values["optim/_target_"] == "torch.optim.Adam"
    assert values["choice/optim"] == "adam" and values["choice/data"] == "digits"
    assert "best/val/acc" in metrics and "test/acc" in metrics
    assert acc.Scalars("best/val/acc")[-1].value == pytest.approx(results["best"]["val/acc"])


def test_logger_group_combines_like_callbacks() -> None:
    both = compose(["logger=[default,tensorboard]"]).logger
    assert both.wandb is not None and both.csv and both.tensorboard is not None
    alone = compose(["logger=tensorboard"]).logger
    assert alone.get("wandb") is None and alone.csv and alone.tensorboard is not None
    assert compose([]).logger.get("tensorboard") is None


@pytest.mark.slow
def test_a_killed_and_resumed_run_shows_every_step_once(tmp_path: Path) -> None:
    """SIGKILL between checkpoints: the resumed run replays the steps since last.ckpt; TensorBoard
    drops the killed attempt's events after the checkpoint (a purge) and shows each step once."""
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT

    run_dir, marker = tmp_path / "run", tmp_path / "killed"
    fast = [o for o in FAST if not o.startswith(("logger.", "callbacks="))]
    args = [*fast, "logger=[csv,tensorboard]", "callbacks=sweep", "data=digits", "model=mlp",
            "trainer.max_steps=16", "checkpoint_every_n_steps=5", f"hydra.run.dir={run_dir}",
            f"+callbacks.kill={{_target_:tests.probes.SignalAt,signal:SIGKILL,step:13,marker:'{marker}'}}"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for expected in (-signal.SIGKILL, 0):
        out = subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300)  # fmt: skip
        assert out.returncode == expected, out.stderr[-2000:]
    acc = events(run_dir)
    _, rows = read_metrics(run_dir / "metrics.csv")
    for name in ("train/loss", "val/acc"):
        steps = [e.step for e in acc.Scalars(name)]
        assert steps == [int(r["step"]) for r in rows if r.get(name)], name
        assert len(steps) == len(set(steps))
    assert [e.step for e in acc.Scalars("train/loss")] == list(range(16))
