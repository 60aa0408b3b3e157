"""Run a W&B sweep file here with no W&B server, and report on a sweep.

  python sweep.py run sweeps/optim_lr_digits.yaml --jobs 2 --out runs/digits [KEY=VALUE ...]
  python sweep.py report runs/digits            (or a W&B sweep path ENTITY/PROJECT/ID)

The code is in harness/sweep/ (python sweep.py --help).
"""

import sys

from harness.sweep.main import main

if __name__ == "__main__":
    sys.exit(main())
