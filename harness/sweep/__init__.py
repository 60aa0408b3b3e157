"""Run a W&B sweep file with no W&B server (W&B's own search engine, the `sweeps` package, proposes
the runs), and report on a sweep's runs. Entry point: sweep.py at the project root."""
