"""The composer's fast path (a cached composition of the group choices, the value overrides applied
after) makes exactly what Hydra's own compose makes, and composes each set of choices once: the
runs of a sweep differ in their values and their run directory only."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from harness.config import compose as composer

OVERRIDE_LISTS = [
    ["optim=adam", "optim.lr=0.01", "seed=1", "hydra.run.dir=/tmp/r/a"],
    ["hydra.run.dir=/tmp/r/b", "data=digits", "model=cnn", "trainer.max_epochs=2"],
    ["hydra.job.chdir=true", "optim=sgd", "hydra.run.dir=/tmp/r/c", "+extra_key=3", "~seed"],
    ["hydra.run.dir=/tmp/r/d"],
    ["callbacks=sweep", "logger.wandb.group=g", "hydra.run.dir=runs/${now:%Y}/x"],
]


@pytest.mark.parametrize("overrides", OVERRIDE_LISTS, ids=lambda o: " ".join(o))
def test_the_fast_path_makes_what_hydra_makes(overrides: list[str]) -> None:
    bases: dict = {}
    other = [
        o if not o.startswith("hydra.run.dir=") else "hydra.run.dir=/elsewhere" for o in overrides
    ]
    composer.compose_with_defaults(other, bases)  # the choices' composition, cached by another run
    fast, _ = composer.compose_with_defaults(overrides, bases)
    hydra = composer.compose(overrides)
    assert OmegaConf.to_container(fast, resolve=False) == OmegaConf.to_container(
        hydra, resolve=False
    )
    assert OmegaConf.is_struct(fast)


def test_runs_differing_in_run_directory_compose_their_choices_once(monkeypatch) -> None:
    calls = []
    compose = composer.compose
    monkeypatch.setattr(composer, "compose", lambda o: calls.append(o) or compose(o))
    bases: dict = {}
    for i in range(3):
        composer.compose_with_defaults(
            ["optim=adam", f"optim.lr=0.{i + 1}", f"hydra.run.dir=/tmp/r/{i}"], bases
        )
    assert calls == [["optim=adam"]]


def test_kept_compositions_follow_edits_to_conf(tmp_path: Path, monkeypatch) -> None:
    """The fork server keeps compositions for the runs it forks; a run started after an edit of
    conf/ composes the edited files, as a run started as its own process would."""
    conf = tmp_path / "conf"
    shutil.copytree(composer.CONF_DIR, conf)
    monkeypatch.setattr(composer, "CONF_DIR", conf)
    monkeypatch.setattr(composer, "_kept", None)
    composer.keep_compositions()
    calls = []
    compose = composer.compose
    monkeypatch.setattr(composer, "compose", lambda o: calls.append(o) or compose(o))
    first, _ = composer.compose_with_defaults(["optim=adam", "hydra.run.dir=/tmp/r/1"])
    again, _ = composer.compose_with_defaults(["optim=adam", "hydra.run.dir=/tmp/r/2"])
    assert len(calls) == 1 and again.optim.lr == first.optim.lr
    adam = conf / "optim" / "adam.yaml"
    adam.write_text(re.sub(r"^lr: .*$", "lr: 0.123", adam.read_text(), flags=re.M))
    edited, _ = composer.compose_with_defaults(["optim=adam", "hydra.run.dir=/tmp/r/3"])
    assert len(calls) == 2 and edited.optim.lr == 0.123


def _keep(tmp_path: Path, monkeypatch) -> Path:
    """A copy of conf/ whose compositions are kept, as in the fork server."""
    conf = tmp_path / "conf"
    shutil.copytree(composer.CONF_DIR, conf)
    monkeypatch.setattr(composer, "CONF_DIR", conf)
    monkeypatch.setattr(composer, "_kept", None)
    composer.keep_compositions()
    return conf


@pytest.mark.parametrize("values", [["optim.lr=0.5"], []], ids=["values", "no values"])
def test_a_kept_composition_records_the_runs_own_working_directory(
    tmp_path: Path, monkeypatch, values: list[str]
) -> None:
    """Hydra records os.getcwd() in hydra.runtime.cwd: the fork server composes in its own
    directory, its child runs in the run's (Runner.cwd); .hydra/hydra.yaml and
    ${hydra:runtime.cwd} must say the run's, as `python train.py` there would."""
    _keep(tmp_path, monkeypatch)
    composer.compose_with_defaults(["optim=adam", *values, "hydra.run.dir=/tmp/r/1"])  # server
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the child
    overrides = ["optim=adam", *values] + (["hydra.run.dir=/tmp/r/2"] if values else [])
    kept, _ = composer.compose_with_defaults(overrides)
    assert kept.hydra.runtime.cwd == str(elsewhere)
    assert OmegaConf.to_container(kept) == OmegaConf.to_container(composer.compose(overrides))


def test_an_editors_lock_link_in_conf_does_not_break_a_kept_composition(
    tmp_path: Path, monkeypatch
) -> None:
    """Emacs locks a file it edits with a dangling symlink beside it (.#adam.yaml); editors'
    temporary files come and go. Hydra composes regardless: so must a forked run."""
    conf = _keep(tmp_path, monkeypatch)
    (conf / "optim" / ".#adam.yaml").symlink_to("someone@host.1234:1700000000")
    cfg, _ = composer.compose_with_defaults(["optim=adam", "hydra.run.dir=/tmp/r/1"])
    assert cfg.optim.lr == composer.compose(["optim=adam"]).optim.lr


def test_kept_compositions_follow_edits_under_a_symlinked_folder_of_conf(
    tmp_path: Path, monkeypatch
) -> None:
    """A config group shared between checkouts by a symlink: Hydra reads through it, so an edit
    there is an edit of conf/ (Path.rglob does not descend into symlinked folders)."""
    conf = _keep(tmp_path, monkeypatch)
    shared = tmp_path / "shared_optim"
    shutil.move(conf / "optim", shared)
    (conf / "optim").symlink_to(shared, target_is_directory=True)
    first, _ = composer.compose_with_defaults(["optim=adam", "hydra.run.dir=/tmp/r/1"])
    adam = shared / "adam.yaml"
    adam.write_text(re.sub(r"^lr: .*$", "lr: 0.123", adam.read_text(), flags=re.M))
    edited, _ = composer.compose_with_defaults(["optim=adam", "hydra.run.dir=/tmp/r/2"])
    assert first.optim.lr != 0.123 and edited.optim.lr == 0.123


def test_a_run_directory_given_with_plus_plus_is_applied_like_a_value(monkeypatch) -> None:
    """W&B's ${args_override_hydra} macro writes ++hydra.run.dir=...: one composition for the
    sweep still, not one kept per run (~0.3 MB each in the fork server, and its time)."""
    calls = []
    compose = composer.compose
    monkeypatch.setattr(composer, "compose", lambda o: calls.append(o) or compose(o))
    bases: dict = {}
    made = [
        composer.compose_with_defaults(["optim=adam", f"++hydra.run.dir=/tmp/r/{i}"], bases)[0]
        for i in range(3)
    ]
    assert calls == [["optim=adam"]] and len(bases) == 1
    hydra = compose(["optim=adam", "++hydra.run.dir=/tmp/r/2"])
    assert OmegaConf.to_container(made[2]) == OmegaConf.to_container(hydra)


def test_kept_compositions_follow_edits_to_a_folder_of_the_search_path(
    tmp_path: Path, monkeypatch
) -> None:
    """docs/optimizers.md: your own optim file in DIR/optim/, added by hydra.searchpath (a sweep's
    extra override). Only conf/ is watched: a composition that reads other folders is not kept."""
    _keep(tmp_path, monkeypatch)
    mine = tmp_path / "mine" / "optim" / "mine.yaml"
    mine.parent.mkdir(parents=True)
    adam = (composer.CONF_DIR / "optim" / "adam.yaml").read_text()
    mine.write_text(adam)
    choices = [f"hydra.searchpath=[file://{mine.parents[1]}]", "optim=mine"]
    composer.compose_with_defaults([*choices, "hydra.run.dir=/tmp/r/1"])
    mine.write_text(re.sub(r"^lr: .*$", "lr: 0.123", adam, flags=re.M))
    edited, _ = composer.compose_with_defaults([*choices, "hydra.run.dir=/tmp/r/2"])
    assert edited.optim.lr == 0.123


def test_kept_compositions_follow_a_symlink_pointed_at_another_file(
    tmp_path: Path, monkeypatch
) -> None:
    """optim/mine.yaml -> a.yaml, then -> b.yaml (ln -sf): two files of one size whose
    modification times are equal (written in one clock tick, as git checkout writes many) are
    still two files."""
    conf = _keep(tmp_path, monkeypatch)
    adam = (conf / "optim" / "adam.yaml").read_text()
    a, b = conf / "optim" / "a.yaml", conf / "optim" / "b.yaml"
    a.write_text(re.sub(r"^lr: .*$", "lr: 0.1", adam, flags=re.M))
    b.write_text(re.sub(r"^lr: .*$", "lr: 0.2", adam, flags=re.M))
    link = conf / "optim" / "mine.yaml"
    link.symlink_to("a.yaml")
    for path in (a, b, conf / "optim"):
        os.utime(path, ns=(10**18, 10**18))
    first, _ = composer.compose_with_defaults(["optim=mine", "hydra.run.dir=/tmp/r/1"])
    link.unlink()
    link.symlink_to("b.yaml")
    os.utime(conf / "optim", ns=(10**18, 10**18))
    again, _ = composer.compose_with_defaults(["optim=mine", "hydra.run.dir=/tmp/r/2"])
    assert (first.optim.lr, again.optim.lr) == (0.1, 0.2)
