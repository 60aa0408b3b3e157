"""Reports: the one-run HTML page (run_page; `python -m harness.report RUN_DIR`) and the report on
a sweep (records from local directories or W&B's API, analysis, plots, sweep_page)."""
