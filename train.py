"""Train one model: python train.py [GROUP=OPTION ...] [KEY=VALUE ...]  (--help lists them).

`main` is a thin Hydra wrapper around harness.run.train(cfg, run_dir), which tests call directly.
Nothing heavy is imported before Hydra has parsed the command line, so --help and --cfg are fast.
"""

import sys

import hydra
from omegaconf import DictConfig

from harness.config.compose import precheck


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    from harness.run.recipe import run_from_hydra

    run_from_hydra(cfg)


if __name__ == "__main__":
    precheck(sys.argv[1:])  # a bad override exits here, before Hydra makes a run directory
    main()
