"""python -m harness.report RUN_DIR [RUN_DIR ...]: the one-run HTML page (harness.report.run_page)."""

import sys

from harness.report.run_page import main

sys.exit(main(sys.argv[1:]))
