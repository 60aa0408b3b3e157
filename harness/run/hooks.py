"""Per-batch hooks nobody overrides, skipped. Lightning calls each per-batch hook of every
callback whether the callback overrides it or not (trainer/call.py `_call_callback_hooks`: a
profiler context and the callback's `state_key` per call, ~1.2 us), six hooks a training step over
some 16 callbacks; it skips a hook that is not callable. A hook a callback's class does not
override is therefore set to None on the instance: the class keeps its hooks, and nothing a
callback does changes."""

from __future__ import annotations

from collections.abc import Iterable

import lightning as L

PER_BATCH = (
    "on_train_batch_start",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
    "on_train_batch_end",
    "on_validation_batch_start",
    "on_validation_batch_end",
    "on_test_batch_start",
    "on_test_batch_end",
    "on_predict_batch_start",
    "on_predict_batch_end",
)


def skip_unused_hooks(callbacks: Iterable[L.Callback]) -> None:
    for callback in callbacks:
        for hook in PER_BATCH:
            inherited = getattr(type(callback), hook, None) is getattr(L.Callback, hook)
            if inherited and hook not in vars(callback):  # not set on the instance either
                setattr(callback, hook, None)  # Lightning: `if callable(fn)`, else skipped
