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
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.run.summary import n_runs
from harness.rundir.files import read_history, write_text_atomic
from harness.rundir.lock import InUse, Lock, hold, take
from harness.rundir.secrets import redact
from harness.sweep import process, propose
from harness.sweep.ledger import DONE, Ledger
from harness.sweep.outcome import finished_state, outcome
from harness.sweep.secret_refs import env_refs
from harness.sweep.spec import SweepSpec, apply_extra, command, overrides, run_key
from harness.sweep.validate import check_runs

POLL_S = 0.2  # s: the longest the runner sleeps (a run that ends wakes it at once)
EARLY_STOP_EVERY_S = 2.0  # how often hyperband reads the running runs' metrics.csv
MAX_REPEATS = 20  # bayes: proposals of known runs before the space counts as explored


@dataclass
class Summary:
    total: int
    states: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    waited: bool = False  # said that it waits for other runners' runs


def _write_json(path: Path, value: Any) -> None:
    write_text_atomic(path, json.dumps(value, indent=2) + "\n")


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def _same_sweep(out: Path, held: dict[str, Any] | None, asked: dict[str, Any]) -> bool:
    """False for a directory that holds no sweep yet; ConfigError for one that holds another."""
    if held is None:
        return False
    if {k: held.get(k) for k in asked} != asked:
        raise ConfigError(
            f"{out} holds another sweep ({held.get('name')}, extra overrides "
            f"{' '.join(held.get('extra') or []) or 'none'}); give a new --out, or the same "
            "file and overrides to resume it"
        )
    return True


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
        start: Callable[..., process.Job] | None = None,
    ) -> None:
        """Reads DIR and checks the arguments; writes nothing (run() does, once the runs pass).
        `start`: how a run starts, process.start's signature (default: a child process here;
        harness.sweep.workers.Workers: forked from a warm server; harness.sweep.slurm.Launcher:
        a submitit job, which may also `reattach`)."""
        if jobs < 1:
            raise ConfigError(f"--jobs must be at least 1, got {jobs}")
        self.out, self.jobs = Path(out), jobs
        # secrets reach the runs through the environment: every file and argv holds a reference
        self.extra = env_refs(list(extra))
        self.spec, self.fixed = apply_extra(replace(spec, config=env_refs(spec.config)), self.extra)
        self.cwd = Path(cwd or Path.cwd())
        self.progress = progress
        self.start = start or process.start  # looked up now: tests patch process.start
        self.count = count
        self.cap = count if count is not None else spec.run_cap
        if spec.method == "bayes" and self.cap is None:
            raise ConfigError(f"{spec.path}: a bayes sweep needs run_cap in the file or --count")
        self.asked = {"name": self.spec.name, "sweep": self.spec.config, "extra": self.extra}
        held = _read_json(self.out / "sweep.json")
        self.claimed = _same_sweep(self.out, held, self.asked)
        self.plan_checked = bool(self.claimed and held.get("plan_checked"))
        self.ledger = Ledger(self.out / "ledger.jsonl")
        self.plan = self._plan()
        self.running: dict[str, process.Job] = {}
        self.locks: dict[str, Lock] = {}  # the runs this runner holds (out/locks/KEY.lock)
        self.histories: dict[str, list[dict]] = {}  # metric rows of ended runs, read once
        self.started = time.time()
        self.repeats = 0  # bayes proposals of runs already in the ledger
        self.exhausted = False  # bayes: cap reached or space explored; nothing more to propose

    def _plan(self) -> list[dict[str, Any]] | None:
        """grid and random: the plan on disk, else one drawn now (written once checked)."""
        if self.spec.method == "bayes":
            return None
        held = _read_json(self.out / "plan.json") if self.claimed else None
        if held is None:
            self.plan_checked = False
        return held if held is not None else propose.plan(self.spec, self.count)

    def _settle(self) -> None:
        """Write sweep.json and plan.json, once what they say has passed the checks; a runner
        that claimed DIR meanwhile (same sweep) wins, and its plan is the one run."""
        with hold(self.out, "sweep directory", wait=True):
            held = _read_json(self.out / "sweep.json")
            if _same_sweep(self.out, held, self.asked):
                plan = _read_json(self.out / "plan.json")
                if plan is not None and plan != self.plan:  # drawn by the runner that claimed DIR
                    self.plan = plan
                    if not held.get("plan_checked"):
                        self.check(self.todo())
                if self.plan is None or (plan is not None and held.get("plan_checked")):
                    return
            if self.plan is not None:
                _write_json(self.out / "plan.json", self.plan)
            _write_json(self.out / "sweep.json", {**self.asked, "file": str(self.spec.path),
                                                   "plan_checked": self.plan is not None})  # fmt: skip

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
        if self.ledger.done(key):
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

    # -- claiming runs: several runners may share DIR -------------------------------------------
    def reread(self) -> None:
        """The ledger as on disk: other runners append to it too."""
        self.ledger = Ledger(self.out / "ledger.jsonl")

    def claim(self, key: str) -> Lock | str:
        """This runner's lock on run `key`, or why not: "held" (another runner has it, or the
        child of a runner that died still runs) or "ended" (a runner ended it)."""
        try:
            # the file stays once the run has ended: deleting it could let two runners hold it
            lock = take(self.out / "locks", f"run {key}", name=f"{key}.lock")
        except InUse:
            return "held"
        self.reread()
        entry = self.ledger.entries.get(key, {})
        state = entry.get("state")
        if state == "running":  # its runner died; its child, which held the lock too, has exited
            state = finished_state(self.out / "runs" / key)
            if state is not None:  # it ended before its runner could record it
                self.ledger.record(key, state=state, exit_code=None, recovered=True)
        elif state is not None and entry.get("time", 0) >= self.started:
            state = "ended"  # another runner tried it during this session (failed, interrupted)
        if state in (*DONE, "ended"):
            lock.release()
            return "ended"
        return lock

    # -- running ----------------------------------------------------------------------------
    def launch(self, params: dict[str, Any], lock: Lock) -> None:
        key = self.key(params)
        run_dir = self.out / "runs" / key
        if self.reattach(key, params, run_dir, lock):
            return
        if run_dir.exists():  # an earlier attempt that did not end: start it afresh
            shutil.rmtree(run_dir)
        self.histories.pop(key, None)
        # recorded before the child exists: whatever results.json this directory gets from now
        # on is this attempt's, so a runner that dies before recording its end can recover it
        self.ledger.record(
            key, state="running", params=params, overrides=self.train_overrides(params),
            run_dir=str(run_dir.relative_to(self.out)),
        )  # fmt: skip
        threads = max(1, (os.cpu_count() or 1) // self.jobs)
        job = self.start(
            key, params, self.argv(params, run_dir), run_dir, self.cwd, threads, keep=lock.fd
        )
        self.running[key], self.locks[key] = job, lock
        self.ledger.record(key, pid=job.proc.pid, **_job_fields(job))

    def reattach(self, key: str, params: dict[str, Any], run_dir: Path, lock: Lock) -> bool:
        """Watch again a job an earlier runner submitted (--launcher slurm) that is still queued
        or running, rather than submit the run twice; False when there is none."""
        entry = self.ledger.entries.get(key, {})
        again = getattr(self.start, "reattach", None)
        job = again(key, params, run_dir, entry) if again and entry.get("state") == "running" else None  # fmt: skip
        if job is None:
            return False
        self.running[key], self.locks[key] = job, lock
        self.ledger.record(key, reattached=True, **_job_fields(job))
        return True

    def end(self, key: str, **fields: Any) -> None:
        """Record how run `key` ended, then let other runners see it."""
        self.ledger.record(key, **fields)
        self.locks.pop(key).release()

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
            self.end(key, state=state, exit_code=code, wall_s=wall, **_job_fields(job))
            summary.states[state] += 1
            if state == "failed":
                summary.failures.append(redact(
                    f"{' '.join(overrides(job.params))} (exit {code}): {process.tail(job.run_dir)}"
                ))  # fmt: skip
            ended += 1
        return ended

    def early_stop(self) -> None:
        if not self.running or not self.spec.config.get("early_terminate"):
            return
        for key in propose.to_stop(self.spec, self.engine_runs()):
            if key in self.running:
                process.stop(self.running[key])

    def start_next(self, queue: list[dict[str, Any]], held: list[dict[str, Any]]) -> bool | None:
        """Start the next run: the queue's first claimable one, else (bayes) a new proposal while
        the cap allows. True: started; False: skipped one (ended or held, kept in `held`);
        None: nothing left to start now."""
        if queue:
            params = queue.pop(0)
            lock = self.claim(self.key(params))
            if lock == "held":
                held.append(params)
            if isinstance(lock, str):
                return False
            self.launch(params, lock)
            return True
        if self.plan is not None or self.exhausted:  # (polled every POLL_S: no lock, no reads)
            return None
        with hold(self.out, "sweep directory", wait=True):  # one proposal at a time, cap shared
            self.reread()
            if len(self.ledger.entries) >= self.cap:
                self.exhausted = True
                return None
            params = propose.propose_bayes(self.spec, self.engine_runs())
            if self.key(params) in self.ledger.entries:  # a run it has seen (discrete values)
                self.repeats += 1
                self.exhausted = self.repeats >= MAX_REPEATS
                return None if self.exhausted else False
            self.check([params])
            lock = self.claim(self.key(params))
            if isinstance(lock, str):
                return False
            self.launch(params, lock)
        return True

    def run(self) -> Summary:
        started = time.time()
        queue = self.todo()
        done_before = sum(self.ledger.done(k) for k in self.ledger.entries)
        if self.plan is not None:
            self.check(queue)  # also on a resume: conf/ or the code may have changed since
            total = len(self.plan)
        else:  # bayes: check the first proposal now, each later one before it starts
            total = max(self.cap, done_before)
            self.check(queue or [propose.propose_bayes(self.spec, self.engine_runs())])
        self._settle()
        queue = self.todo()
        self.say(f"{self.spec.name}: {n_runs(total)}, {done_before} already ended, {len(queue)} to "
                 f"run again or start; overrides checked in {time.time() - started:.1f} s")  # fmt: skip
        summary = Summary(total=total)
        bar = _bar(self.spec.name, total, done_before, self.progress)
        restore = _sigterm_as_interrupt()
        last_check, held = 0.0, []  # held: runs other runners had when this one came to them
        try:
            while True:
                if held and not queue and len(self.running) < self.jobs:
                    queue, held = held, []  # try them again: ended, or their runner died
                while len(self.running) < self.jobs and self.start_next(queue, held) is not None:
                    pass
                if not self.running and not held:
                    break
                if held and not self.running and not summary.waited:
                    summary.waited = True
                    self.say(f"waiting for {n_runs(len(held))} that other runners hold")
                process.wait_any(self.running.values(), POLL_S)
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
                    self.end(key, state="interrupted", exit_code=job.proc.returncode)
        for key, job in self.running.items():
            job.proc.kill()
            job.proc.wait()
            self.end(key, state="interrupted", exit_code=job.proc.returncode)
        self.running.clear()


def ended_states(summary: Summary) -> str:
    """'6 finished, 1 diverged', or 'nothing to do'."""
    return ", ".join(f"{n} {s}" for s, n in sorted(summary.states.items())) or "nothing to do"


def _job_fields(job: process.Job) -> dict[str, Any]:
    """What the ledger records of a submitted run (job id, launcher, scheduler state)."""
    fields = getattr(job.proc, "ledger_fields", None)
    return fields() if fields is not None else {}


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
