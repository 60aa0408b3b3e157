"""`python sweep.py run SWEEP.yaml --out DIR`: a W&B sweep file run here, with no server.
(Over 250 lines: one Runner class whose launch/collect/early-stop/interrupt loop shares its
state; split, each piece would take that whole state as arguments.)

DIR/sweep.json   what was asked (the sweep file, the extra overrides): a resume must ask the same
DIR/plan.json    grid and random: every run's parameters, drawn once
DIR/ledger.jsonl each run's state (harness.sweep.ledger), keyed by a hash of its overrides
DIR/runs/KEY/    a run directory (hydra.run.dir): results.json, metrics.csv, wandb/, output.log

Start it again after Ctrl-C or a kill and it keeps the runs that ended (finished, diverged,
stopped by hyperband) and does the rest again from scratch.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.rundir.metrics import read_history
from harness.sweep import process, propose
from harness.sweep.ledger import DONE, Ledger
from harness.sweep.outcome import outcome
from harness.sweep.spec import SweepSpec, apply_extra, command, overrides, run_key
from harness.sweep.validate import check_runs

POLL_S = 0.2  # how often finished children are collected
EARLY_STOP_EVERY_S = 2.0  # how often hyperband reads the running runs' metrics.csv


@dataclass
class Summary:
    total: int
    states: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=2) + "\n")
    os.replace(tmp, path)


def _claim(out: Path, spec: SweepSpec, extra: list[str]) -> None:
    """A sweep directory belongs to one sweep file and one set of extra overrides."""
    asked = {"name": spec.name, "sweep": spec.config, "extra": list(extra)}
    path = out / "sweep.json"
    if path.is_file():
        held = json.loads(path.read_text())
        if {k: held.get(k) for k in asked} != asked:
            raise ConfigError(
                f"{out} holds another sweep ({held.get('name')}, extra overrides "
                f"{' '.join(held.get('extra') or []) or 'none'}); give a new --out, or the same "
                "file and overrides to resume it"
            )
    else:
        out.mkdir(parents=True, exist_ok=True)
        _write_json(path, {**asked, "file": str(spec.path)})


def _planned(out: Path, spec: SweepSpec, count: int | None) -> list[dict[str, Any]] | None:
    if spec.method == "bayes":
        return None
    path = out / "plan.json"
    if not path.is_file():
        _write_json(path, propose.plan(spec, count))
    return json.loads(path.read_text())


class Runner:
    def __init__(
        self,
        spec: SweepSpec,
        out: Path,
        *,
        jobs: int = 1,
        extra: list[str] = (),
        count: int | None = None,
        cwd: Path | None = None,
        progress: bool | None = None,
    ) -> None:
        if jobs < 1:
            raise ConfigError(f"--jobs must be at least 1, got {jobs}")
        self.out, self.jobs = Path(out), jobs
        self.extra = list(extra)
        self.spec, self.fixed = apply_extra(spec, self.extra)
        self.cwd = Path(cwd or Path.cwd())
        self.progress = progress
        self.cap = count if count is not None else spec.run_cap
        if spec.method == "bayes" and self.cap is None:
            raise ConfigError(f"{spec.path}: a bayes sweep needs run_cap in the file or --count")
        _claim(self.out, self.spec, self.extra)
        self.ledger = Ledger(self.out / "ledger.jsonl")
        self.plan = _planned(self.out, self.spec, count)
        self.running: dict[str, process.Job] = {}
        self.histories: dict[str, list[dict]] = {}  # metric rows of ended runs, read once

    # -- what to run -----------------------------------------------------------------------
    def key(self, params: dict[str, Any]) -> str:
        return run_key(params, self.extra)

    def argv(self, params: dict[str, Any], run_dir: Path) -> list[str]:
        return command(self.spec, params, {**self.fixed, "hydra.run.dir": str(run_dir)})

    def train_overrides(self, params: dict[str, Any]) -> list[str]:
        """What the program gets after its own name, but for hydra.run.dir: what gets checked."""
        argv = self.argv(params, Path("."))
        program = str(self.spec.config.get("program", "train.py"))
        rest = argv[argv.index(program) + 1 :] if program in argv else overrides(params)
        return [a for a in rest if not a.startswith("hydra.run.dir=")]

    def check(self, params_list: list[dict[str, Any]]) -> None:
        check_runs(self.train_overrides(p) for p in params_list)

    def todo(self) -> list[dict[str, Any]]:
        """Parameters of the runs still to do, in plan order (bayes: those to do again)."""
        if self.plan is not None:
            return [p for p in self.plan if not self.ledger.done(self.key(p))]
        return [e["params"] for e in self.ledger.entries.values() if e.get("state") not in DONE]

    # -- the engine's view of the sweep -------------------------------------------------------
    def history(self, key: str) -> list[dict]:
        if key in self.histories:
            return self.histories[key]
        rows = read_history(self.out / "runs" / key)
        if key not in self.running:
            self.histories[key] = rows
        return rows

    def engine_runs(self) -> list[Any]:
        metric = (self.spec.metric or {}).get("name")
        runs = []
        for key, entry in self.ledger.entries.items():
            if "params" not in entry:
                continue
            state = "running" if key in self.running else entry.get("state", "interrupted")
            rows = self.history(key) if metric else []
            runs.append(
                propose.engine_run(key, entry["params"], state, [r for r in rows if metric in r])
            )
        return runs

    # -- running ----------------------------------------------------------------------------
    def launch(self, params: dict[str, Any]) -> None:
        key = self.key(params)
        run_dir = self.out / "runs" / key
        if run_dir.exists():  # an earlier attempt that did not end: start it afresh
            shutil.rmtree(run_dir)
        self.histories.pop(key, None)
        threads = max(1, (os.cpu_count() or 1) // self.jobs)
        job = process.start(key, params, self.argv(params, run_dir), run_dir, self.cwd, threads)
        self.running[key] = job
        self.ledger.record(
            key, state="running", params=params, overrides=self.train_overrides(params),
            run_dir=str(run_dir.relative_to(self.out)), pid=job.proc.pid,
        )  # fmt: skip

    def collect(self, summary: Summary) -> int:
        """Record the children that exited; return how many."""
        ended = 0
        for key, job in list(self.running.items()):
            code = job.proc.poll()
            if code is None:
                continue
            del self.running[key]
            state = outcome(job.run_dir, code, stopped=job.stop_sent is not None)
            wall = round(time.time() - job.started, 3)
            self.ledger.record(key, state=state, exit_code=code, wall_s=wall)
            summary.states[state] += 1
            if state == "failed":
                summary.failures.append(
                    f"{' '.join(overrides(job.params))} (exit {code}): {process.tail(job.run_dir)}"
                )
            ended += 1
        return ended

    def early_stop(self) -> None:
        if not self.running or not self.spec.config.get("early_terminate"):
            return
        for key in propose.to_stop(self.spec, self.engine_runs()):
            if key in self.running:
                process.stop(self.running[key])

    def next_params(self, queue: list[dict[str, Any]], budget: int) -> dict[str, Any] | None:
        """The next run to start: the plan's, else (bayes) a new proposal while budget lasts."""
        if queue:
            return queue.pop(0)
        if self.plan is None and budget > 0:
            params = propose.propose_bayes(self.spec, self.engine_runs())
            self.check([params])
            return params
        return None

    def run(self) -> Summary:
        started = time.time()
        queue = self.todo()
        done_before = sum(self.ledger.done(k) for k in self.ledger.entries)
        if self.plan is not None:
            self.check(queue)
            total = len(self.plan)
        else:  # bayes: check the first proposal now, each later one before it starts
            total = max(self.cap, done_before)
            self.check(queue or [propose.propose_bayes(self.spec, self.engine_runs())])
        budget = total - done_before  # runs this session may start
        self.say(f"{self.spec.name}: {total} runs, {done_before} already ended, {len(queue)} to "
                 f"run again or start; overrides checked in {time.time() - started:.1f} s")  # fmt: skip
        summary = Summary(total=total)
        bar = _bar(self.spec.name, total, done_before, self.progress)
        restore = _sigterm_as_interrupt()
        last_check = 0.0
        try:
            while True:
                while len(self.running) < self.jobs and budget > 0:
                    params = self.next_params(queue, budget)
                    if params is None:
                        break
                    self.launch(params)
                    budget -= 1
                if not self.running:
                    break
                time.sleep(POLL_S)
                ended = self.collect(summary)
                if ended:
                    bar.update(ended)
                    bar.set_postfix(dict(summary.states), refresh=False)
                if time.time() - last_check > EARLY_STOP_EVERY_S:
                    self.early_stop()
                    last_check = time.time()
        except KeyboardInterrupt:
            self.interrupt()
            raise
        finally:
            restore()
            bar.close()
        return summary

    def say(self, line: str) -> None:
        if self.progress is not False:
            print(line, flush=True)

    def interrupt(self, grace_s: float = 30.0) -> None:
        """Ctrl-C or SIGTERM: ask every run to stop (they write their results), wait, record."""
        for job in self.running.values():
            with contextlib.suppress(ProcessLookupError):
                job.proc.send_signal(signal.SIGINT)
        deadline = time.time() + grace_s
        while self.running and time.time() < deadline:
            time.sleep(POLL_S)
            for key, job in list(self.running.items()):
                if job.proc.poll() is not None:
                    del self.running[key]
                    self.ledger.record(key, state="interrupted", exit_code=job.proc.returncode)
        for key, job in self.running.items():
            job.proc.kill()
            job.proc.wait()
            self.ledger.record(key, state="interrupted", exit_code=job.proc.returncode)
        self.running.clear()


def _sigterm_as_interrupt():
    """SIGTERM to the runner stops it like Ctrl-C does (its runs stop and are recorded)."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, old)


def _bar(name: str, total: int, initial: int, enabled: bool | None):
    from tqdm import tqdm

    return tqdm(
        total=total, initial=initial, desc=name, unit="run", dynamic_ncols=True,
        disable=not enabled if enabled is not None else None,
    )  # fmt: skip
