"""The offline W&B file reader, for tests (it lives in harness.tracking.wandb_records)."""

from harness.tracking.wandb_records import artifacts, config, history_rows, records, summary

__all__ = ["artifacts", "config", "history_rows", "records", "summary"]
