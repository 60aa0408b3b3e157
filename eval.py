"""Evaluate or predict with a trained checkpoint, without training (python eval.py --help).

    python eval.py ckpt_path=RUN_DIR/checkpoints/best.ckpt [split=test|val] [KEY=VALUE ...]
    python eval.py ckpt_path=RUN_DIR/checkpoints/best.ckpt predict=FILE [predict_out=OUT.csv]

harness.run.evaluate does the work; nothing heavy is imported before the command line is read.
"""

import sys

from harness.run.evaluate import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
