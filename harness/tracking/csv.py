"""RUN_DIR/metrics.csv that survives a kill and a resume: Lightning's CSV logger, each row on disk
as soon as it is logged (a killed run has lost none), keeping an earlier attempt's rows and
skipping those a resumed run replays (harness.rundir.files.Replayed; on a CPU with a fixed
seed the replayed values are the same numbers)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from harness.rundir.files import Replayed, read_metrics, write_text_atomic


class _Writer(ExperimentWriter):
    """Lightning's CSV writer, except that it keeps the rows of an earlier attempt (Lightning's
    deletes metrics.csv whenever the folder is not empty) and rewrites the file atomically when
    a new column appears."""

    def __init__(self, log_dir: str, replayed: Replayed | None) -> None:
        self.replayed = replayed
        super().__init__(log_dir)
        if replayed is not None:
            self.metrics_keys = read_metrics(Path(self.metrics_file_path), cut_torn_line=True)[0]

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if self.replayed is None and path.is_file():
            path.unlink()  # a fresh run: a file left by an attempt without a checkpoint goes

    def log_metrics(self, metrics_dict: dict[str, float], step: int | None = None) -> None:
        if self.replayed is not None and self.replayed.skip(step, metrics_dict):
            return
        super().log_metrics(metrics_dict, step)

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        _, rows = read_metrics(Path(self.metrics_file_path), cut_torn_line=True)
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomic(Path(self.metrics_file_path), out.getvalue())


class RunCSVLogger(CSVLogger):
    """RUN_DIR/metrics.csv, each row on disk as soon as it is logged. `replayed` (a resumed run):
    keep the file and skip the rows it already holds; None: start a new file."""

    def __init__(self, run_dir: str | Path, replayed: Replayed | None = None) -> None:
        super().__init__(save_dir=str(run_dir), name="", version="", flush_logs_every_n_steps=1)
        self._replayed = replayed

    @property
    @rank_zero_experiment
    def experiment(self) -> _Writer:
        if self._experiment is None:
            Path(self.log_dir).mkdir(parents=True, exist_ok=True)
            self._experiment = _Writer(self.log_dir, self._replayed)
        return self._experiment
