"""Train one model: python train.py [GROUP=OPTION ...] [KEY=VALUE ...]  (--help lists them).

A plain list of overrides is one run: harness.run.app.run_command composes it once, checks it once
and runs harness.run.recipe.train(cfg, run_dir), which tests call directly. Multirun (-m),
--help, --cfg and the other Hydra flags go to Hydra (`main`). Nothing heavy is imported before
the command line is read, so --help and --cfg are fast.
"""

import sys

from harness.errors import from_ctrl_c
from harness.run.app import hydra_job, ignore_later_ctrl_c, interrupted, is_single_run, run_command

try:  # Ctrl-C from here on: one line and the interrupted status (run_command's own, in a run)
    ignore_later_ctrl_c()
    import hydra
    from omegaconf import DictConfig

    from harness.run.summary import end_multirun
except BaseException as e:
    if not from_ctrl_c(e):
        raise
    sys.exit(interrupted(None))


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    return hydra_job(cfg)  # the run's score: what Hydra's sweepers (Optuna...) optimise


if __name__ == "__main__":
    if is_single_run(sys.argv[1:]):
        sys.exit(run_command(sys.argv[1:]))
    try:
        try:
            main()
        finally:  # a multirun: its table, also when a job crashed or was interrupted
            status = end_multirun()
    except BaseException as e:  # Ctrl-C in Hydra's code or in a job's set-up
        if not from_ctrl_c(e):
            raise
        sys.exit(interrupted(None))
    sys.exit(status)  # 0 when every job finished
