"""Lightning calls each per-batch hook of every callback whether the callback overrides it or
not; the run skips the ones nobody overrides, and still calls the ones that are."""

from __future__ import annotations

from pathlib import Path

from harness.run.recipe import train
from tests.conftest import FAST, compose
from tests.probes import HookCounter


def test_a_run_calls_the_hooks_callbacks_override_and_skips_the_rest(tmp_path: Path) -> None:
    HookCounter.counted, HookCounter.skipped = 0, {}
    cfg = compose(
        [*FAST, "data=digits", "model=mlp", "+callbacks.hooks._target_=tests.probes.HookCounter"]
    )
    assert train(cfg, tmp_path)["status"] == "finished"
    assert HookCounter.counted == 4  # trainer.max_steps: its own hook ran every step
    skipped = HookCounter.skipped
    assert "on_train_batch_end" not in skipped["HookCounter"]
    assert "on_before_backward" in skipped["HookCounter"]
    assert "on_before_backward" not in skipped["StopOnNonFiniteLoss"]  # overridden: kept
    assert "on_train_batch_start" in skipped["ModelCheckpoint"]  # Lightning's own callbacks too
    assert len(skipped["RandomState"]) == 12  # no per-batch hook at all
