"""Train one model: python train.py [GROUP=OPTION ...] [KEY=VALUE ...]  (--help lists them).

A plain list of overrides is one run: harness.run.app.run_command composes it once, checks it once
and runs harness.run.recipe.train(cfg, run_dir), which tests call directly. Multirun (-m),
--help, --cfg and the other Hydra flags go to Hydra (`main`). Nothing heavy is imported before
the command line is read, so --help and --cfg are fast.
"""

import sys

import hydra
from omegaconf import DictConfig

from harness.run.app import hydra_job, is_single_run, run_command


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    hydra_job(cfg)


if __name__ == "__main__":
    if is_single_run(sys.argv[1:]):
        sys.exit(run_command(sys.argv[1:]))
    main()
