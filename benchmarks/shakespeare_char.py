"""nanoGPT's shakespeare_char CPU run, through the harness and as a plain PyTorch loop, side by side.

Both use the same config (experiment=nanogpt_shakespeare_char), the same GPT code, the same batches
(the datamodule's TensorLoader with the same seed), the same AdamW parameter groups, schedule and
gradient clipping, and both measure the validation loss the same way (every 250 steps, over the
whole validation split). The plain loop is what nanoGPT's train.py does, without Lightning.

    python benchmarks/shakespeare_char.py data.root=../shared/data [OVERRIDES...]

Prints the final validation loss, the wall time and CPU time (this process, all threads) and the
training tokens per second of each, and the harness/plain throughput ratio by both clocks (--out FILE: also as JSON). On a machine shared with other jobs the wall
time moves with their load; the CPU time much less, so the ratio by CPU time is the steadier one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def compose(overrides: list[str]):
    """The run's resolved config, as train.py composes it (the one composer)."""
    from harness.config.command import task_config
    from harness.config.compose import compose as compose_config

    return task_config(compose_config(overrides))


def plain_loop(cfg) -> dict:
    """nanoGPT's training loop on the harness's parts, with no Lightning."""
    import lightning as L
    import torch
    import torch.nn.functional as F

    from harness.run.build import build_datamodule, build_net
    from optim.optimizer import build_optimizer_factory, build_scheduler_factory, param_groups

    clocks = time.perf_counter(), time.process_time()
    L.seed_everything(cfg.seed, verbose=False)  # the harness's order: seed, data, then the model
    dm = build_datamodule(cfg)
    dm.prepare_data()
    dm.setup("fit")
    net = build_net(cfg, dm.dims)
    optimizer = build_optimizer_factory(cfg)(param_groups(net, cfg.decay_norm_and_bias))
    steps = cfg.trainer.max_steps
    scheduler = build_scheduler_factory(cfg)(optimizer, total_steps=steps)
    clip, every = cfg.trainer.gradient_clip_val, cfg.trainer.val_check_interval
    # Lightning clips the optimizer's parameters in group order (decayed, then not): the norm's sum
    # in net.parameters() order differs in the last bit, which 125 steps grow to ~5e-4 in val/loss.
    clipped = [p for group in optimizer.param_groups for p in group["params"]]

    @torch.no_grad()
    def val_loss() -> float:
        net.eval()
        total, count = 0.0, 0
        for x, y in dm.val_dataloader():
            total += F.cross_entropy(net(x).flatten(0, 1), y.flatten(), reduction="sum").item()
            count += y.numel()
        net.train()
        return total / count

    loader, step, epoch, losses = dm.train_dataloader(), 0, 0, []
    net.train()
    while step < steps:
        loader.sampler.set_epoch(epoch)
        for x, y in loader:
            loss = F.cross_entropy(net(x).flatten(0, 1), y.flatten())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(clipped, clip)
            optimizer.step()
            scheduler.step()
            step += 1
            if step % every == 0 or step == steps:
                losses.append((step, val_loss()))
            if step == steps:
                break
        epoch += 1
    return {"val/loss": losses[-1][1], "val_curve": losses, **elapsed(clocks)}


def harness_run(cfg) -> dict:
    from harness.run.recipe import train

    clocks = time.perf_counter(), time.process_time()
    from harness.rundir.files import read_history, series

    with tempfile.TemporaryDirectory() as run_dir:
        train(cfg, run_dir)
        curve = series(read_history(Path(run_dir)), "val/loss")
    last = curve[-1][1] if curve else float("nan")  # nan: no validation ran
    return {"val/loss": last, "val_curve": curve, **elapsed(clocks)}


def elapsed(clocks: tuple[float, float]) -> dict[str, float]:
    return {"wall_s": time.perf_counter() - clocks[0], "cpu_s": time.process_time() - clocks[1]}


def measure(overrides: list[str], threads: int = 1, out: str | None = None) -> dict:
    """Both runs, printed; their results and the harness/plain throughput ratio by each clock."""
    os.environ.setdefault("WANDB_MODE", "disabled")
    import torch

    torch.set_num_threads(threads)
    overrides = [
        "experiment=nanogpt_shakespeare_char",
        "logger=csv",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        *overrides,
    ]
    cfg = compose(overrides)
    tokens = cfg.trainer.max_steps * cfg.data.batch_size * cfg.data.block_size
    runs = {"plain PyTorch": plain_loop(cfg), "harness": harness_run(cfg)}
    print(f"\n{cfg.trainer.max_steps} steps x {cfg.data.batch_size} x {cfg.data.block_size} tokens, "
          f"{threads} thread(s)")  # fmt: skip
    print(
        f"{'':15} {'val/loss':>9} {'wall s':>8} {'CPU s':>8} {'tokens/s wall':>14} {'tokens/s CPU':>13}"
    )
    for name, r in runs.items():
        r["tokens_per_s_wall"], r["tokens_per_s_cpu"] = tokens / r["wall_s"], tokens / r["cpu_s"]
        print(f"{name:15} {r['val/loss']:9.4f} {r['wall_s']:8.1f} {r['cpu_s']:8.1f} "
              f"{r['tokens_per_s_wall']:14.0f} {r['tokens_per_s_cpu']:13.0f}")  # fmt: skip
    for name, r in runs.items():
        print(f"{name:15} val/loss at each validation: "
              + ", ".join(f"{v:.6f}" for _, v in r["val_curve"]))  # fmt: skip
    ratio = {
        clock: runs["harness"][f"tokens_per_s_{clock}"]
        / runs["plain PyTorch"][f"tokens_per_s_{clock}"]
        for clock in ("wall", "cpu")
    }
    print(
        f"harness / plain throughput: {ratio['wall']:.3f} by wall time, {ratio['cpu']:.3f} by CPU time"
    )
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)  # a fresh clone has no results/
        record = {"overrides": overrides, "threads": threads, "tokens": tokens, "runs": runs}
        Path(out).write_text(json.dumps({**record, "throughput_ratio": ratio}, indent=2) + "\n")
    return {"runs": runs, "throughput_ratio": ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument(
        "--out", default=str(ROOT / "benchmarks" / "results" / "shakespeare_char.json")
    )
    args, overrides = parser.parse_known_args()
    measure(overrides, args.threads, args.out)


if __name__ == "__main__":
    main()
