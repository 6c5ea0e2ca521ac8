"""The model zoo: the policies under test of the paper's comparison, rebuilt by one command.

``config/zoo.yaml`` lists the roster (task, algorithm, observations, training length). For one
task, :func:`build` writes scripted demonstrations, trains every model that is not built yet
with robomimic (the exact ``robofail train-policy`` command, run as a subprocess and recorded),
measures its nominal success and records name, command, seed and sha256 in ``<zoo>/index.yaml``.
It resumes: finished models are kept (their sha256 is checked), a checkpoint whose evaluation
was interrupted is evaluated, a training that was interrupted starts again.

Bundled policies (data/policies) are part of the roster too and are never rebuilt.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
import shlex
import subprocess
import sys
from typing import Callable

import yaml

from . import resources
from .config import read_yaml
from .errors import ConfigError, lookup, nearest, strict_fields
from .files import written_whole
from .policies.training import check_combination, sha256_of
from .scenes.tasks import get_task

DEFAULT_ROSTER = resources.path("config", "zoo.yaml")


@dataclasses.dataclass(frozen=True)
class Training:
    """robomimic training length and rate of one algorithm (``robofail train-policy`` flags)."""

    epochs: int = 50
    steps_per_epoch: int = 100
    batch_size: int = 100
    learning_rate: float = 0.001
    lr_decay_epochs: tuple = ()
    data_workers: int = 0


@dataclasses.dataclass(frozen=True)
class ZooModel:
    task: str
    algo: str
    obs: str
    cameras: tuple
    training: Training
    seed: int

    @property
    def name(self) -> str:
        return f"{self.task.lower()}_{self.algo}_{self.obs}"

    @property
    def images(self) -> bool:
        return self.obs != "low_dim"

    def train_args(self, dataset, out, device: str) -> list[str]:
        t = self.training
        args = ["train-policy", "--dataset", str(dataset), "--algo", self.algo, "--obs", self.obs,
                "--epochs", str(t.epochs), "--steps-per-epoch", str(t.steps_per_epoch),
                "--batch-size", str(t.batch_size), "--learning-rate", str(t.learning_rate),
                "--seed", str(self.seed), "--device", device, "--out", str(out)]
        if t.lr_decay_epochs:
            args += ["--lr-decay-epochs", *map(str, t.lr_decay_epochs)]
        if t.data_workers:
            args += ["--data-workers", str(t.data_workers)]
        if self.images:
            args += ["--cameras", *self.cameras]
        return args


@dataclasses.dataclass(frozen=True)
class Roster:
    models: tuple
    demo_episodes: int
    demo_seed: int
    eval_episodes: int
    eval_seed: int

    @classmethod
    def load(cls, path=DEFAULT_ROSTER) -> "Roster":
        data = read_yaml(path, "zoo roster")
        where = f"zoo roster {path}"
        if not isinstance(data, dict) or set(data) - {"demos", "evaluation", "training", "image_training", "models"}:
            raise ConfigError(f"{where} must be a mapping with demos, evaluation, training and models")
        training = {algo: strict_fields(Training, values or {}, f"{where}: training.{algo}")
                    for algo, values in (data.get("training") or {}).items()}
        models = []
        for i, entry in enumerate(data.get("models") or []):
            keys = {"task", "algo", "obs", "cameras", "seed", "training"}
            if not isinstance(entry, dict) or set(entry) - keys:
                raise ConfigError(f"{where}: models[{i}] must be a mapping of {', '.join(sorted(keys))}")
            algo, obs = entry.get("algo"), entry.get("obs", "low_dim")
            check_combination(algo, obs)
            get_task(entry.get("task"))
            base = lookup(training, f"training section of {where}", algo)
            own = strict_fields(Training, {**dataclasses.asdict(base), **(entry.get("training") or {})},
                                f"{where}: models[{i}].training")
            models.append(ZooModel(entry["task"], algo, obs, tuple(entry.get("cameras") or ("agentview",)),
                                   own, int(entry.get("seed", 0))))
        demos, evaluation = data.get("demos") or {}, data.get("evaluation") or {}
        return cls(tuple(models), int(demos.get("episodes", 200)), int(demos.get("seed", 1000)),
                   int(evaluation.get("episodes", 50)), int(evaluation.get("seed", 0)))

    def for_task(self, task: str, observations=None) -> list[ZooModel]:
        chosen = [m for m in self.models if m.task == task and (not observations or m.obs in observations)]
        if not chosen:
            raise ConfigError(f"the zoo roster has no models for task {task!r}" + (f" with --obs {' '.join(observations)}"
                              if observations else "") + f"; its tasks are {sorted({m.task for m in self.models})}")
        return chosen


@dataclasses.dataclass
class ZooEntry:
    """One built model as index.yaml records it (the bundled index uses the same fields)."""

    name: str
    task: str
    algo: str
    obs: str
    file: str
    sha256: str
    command: str
    seed: int
    cameras: list = dataclasses.field(default_factory=list)
    nominal_success: float | None = None
    nominal_episodes: int = 0
    nominal_seeds: str = ""
    nominal_horizon: int = 0  # control steps each evaluation episode had (the task's horizon)


class Zoo:
    """A folder of built models with their index.yaml (written atomically after every model)."""

    def __init__(self, folder):
        self.folder = pathlib.Path(folder)
        self.index_path = self.folder / "index.yaml"
        self.entries: dict[str, ZooEntry] = {}
        if self.index_path.is_file():
            try:
                for e in yaml.safe_load(self.index_path.read_text()) or []:
                    self.entries[e["name"]] = ZooEntry(**e)
            except (OSError, yaml.YAMLError, UnicodeDecodeError, TypeError, KeyError) as exc:
                raise ConfigError(f"{self.index_path} is not a zoo index ({exc}); move it away and rebuild") from None

    def checkpoint(self, name: str) -> pathlib.Path:
        return self.folder / f"{name}.pth"

    def save(self, entry: ZooEntry) -> None:
        """Records ``entry``; builds of other tasks may share the index, so it is re-read under a lock."""
        import fcntl
        with open(self.folder / ".index.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.entries = {**Zoo(self.folder).entries, entry.name: entry}
            with written_whole(self.index_path) as partial:
                partial.write_text(yaml.safe_dump([dataclasses.asdict(e) for e in self.entries.values()], sort_keys=False))

    def resolve(self, name: str) -> str:
        """A policy spec for a roster name: the bundled name, or the zoo checkpoint's path."""
        from .policies.bundled import bundled_policies
        if any(b.name == name for b in bundled_policies()):
            return name
        entry = self.entries.get(name)
        if entry is None or not self.checkpoint(name).is_file():
            roster = {m.name: m for m in Roster.load().models}
            model = lookup(roster, "model of the zoo roster", name)  # a typo: the nearest names
            command = f"robofail zoo build {model.task} --only {name} --zoo {self.folder}"
            why = ""
            if model.images:
                command += " --device cuda"
                why = " (an image model: 15-30 minutes on an H100, demos included; hours on a CPU)"
            raise ConfigError(f"model {name!r} is neither bundled nor built in {self.folder}; build it with `{command}`{why}")
        if sha256_of(self.checkpoint(name)) != entry.sha256:
            raise ConfigError(f"{self.checkpoint(name)} does not match the sha256 its index records; "
                              f"delete it and run `robofail zoo build {entry.task} --zoo {self.folder}` again")
        return str(self.checkpoint(name))


def _cli(args: list[str]) -> str:
    return "robofail " + " ".join(shlex.quote(a) for a in args)


def build(task: str, zoo_dir, roster: Roster | None = None, device: str = "cpu", evaluate: bool = True,
          jobs: int = 1, observations=(), only=(), say: Callable[[str], None] = print) -> Zoo:
    """Builds every roster model of ``task`` not built yet in ``zoo_dir`` (see the module doc);
    ``observations`` and ``only`` (model names) narrow the roster."""
    from .policies.bundled import bundled_policies
    roster = roster or Roster.load()
    zoo = Zoo(zoo_dir)
    bundled = {b.name for b in bundled_policies()}
    todo = []
    models = roster.for_task(task, observations)
    for name in only:
        _check_only(name, task, models, roster)
    zoo.folder.mkdir(parents=True, exist_ok=True)
    models = [m for m in models if not only or m.name in only]
    for model in models:
        path, entry = zoo.checkpoint(model.name), zoo.entries.get(model.name)
        if model.name in bundled:
            say(f"{model.name}: bundled, kept")
        elif entry and path.is_file():
            if sha256_of(path) != entry.sha256:
                raise ConfigError(f"{path} does not match the sha256 in {zoo.index_path}; delete it to rebuild it")
            say(f"{model.name}: built, kept")
        elif path.is_file() and path.with_suffix(".train.json").is_file():
            # trained, but the build stopped before recording it: train-policy writes the
            # checkpoint, then its .train.json, so both mean a complete training
            meta = json.loads(path.with_suffix(".train.json").read_text())
            _record(model, model.train_args(meta["dataset"], path, meta["device"]), zoo, say)
        elif path.is_file():
            raise ConfigError(f"{path} exists but {zoo.index_path} does not record it; delete it to rebuild it")
        else:
            todo.append(model)
    running = []
    for model in todo:
        dataset = _demos(task, model, roster, zoo, say)
        args = model.train_args(dataset, zoo.checkpoint(model.name), device)
        say(f"{model.name}: training: {_cli(args)}")
        log = open(zoo.folder / f"{model.name}.log", "w")
        running.append((model, args, subprocess.Popen([sys.executable, "-m", "robofail_ros.cli", *args],
                                                      stdout=log, stderr=subprocess.STDOUT), log))
        while len(running) >= jobs or (model is todo[-1] and running):
            _finish(running.pop(0), zoo, say)
    for model in models:
        entry = zoo.entries.get(model.name)
        if evaluate and entry and entry.nominal_success is None:
            _evaluate(entry, zoo, roster, say)
    return zoo


def _check_only(name: str, task: str, models: list[ZooModel], roster: Roster) -> None:
    """An --only name that is no model of this build: another task's or other observations' (what
    builds it), or a typo (the nearest names)."""
    if name in {m.name for m in models}:
        return
    model = next((m for m in roster.models if m.name == name), None)
    if model is not None and model.task != task:
        raise ConfigError(f"--only {name}: a model of task {model.task}, not {task}; build it with "
                          f"`robofail zoo build {model.task} --only {name}`")
    if model is not None:  # left out by --obs
        raise ConfigError(f"--only {name}: a model on {model.obs} observations, which this build's --obs leaves out; "
                          f"add --obs {model.obs}")
    close = nearest(name, [m.name for m in roster.for_task(task)])
    hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
    raise ConfigError(f"--only {name}: no model of {task}'s roster; {hint}"
                      f"Its models: {', '.join(m.name for m in roster.for_task(task))}")


def _demos(task: str, model: ZooModel, roster: Roster, zoo: Zoo, say) -> pathlib.Path:
    kind = "-".join(model.cameras) if model.images else "low_dim"
    dataset = zoo.folder / "datasets" / f"{task.lower()}_{kind}_{roster.demo_episodes}.hdf5"
    if not dataset.is_file():  # write_demos writes a .partial file and renames it when complete
        args = ["demos", "--task", task, "--episodes", str(roster.demo_episodes), "--seed", str(roster.demo_seed),
                "--out", str(dataset)]
        args += ["--cameras", *model.cameras, "--exclude-next-obs"] if model.images else ["--cameras"]  # none
        say(f"{task}: demonstrations: {_cli(args)}")
        dataset.parent.mkdir(parents=True, exist_ok=True)
        with open(dataset.with_suffix(".log"), "w") as log:
            if subprocess.run([sys.executable, "-m", "robofail_ros.cli", *args], stdout=log, stderr=log).returncode:
                raise ConfigError(f"writing the {task} demonstrations failed; see {dataset.with_suffix('.log')}")
    return dataset


def _finish(job, zoo: Zoo, say) -> None:
    model, args, process, log = job
    code = process.wait()
    log.close()
    if code != 0 or not zoo.checkpoint(model.name).is_file():
        raise ConfigError(f"training {model.name} failed (exit {code}); see {zoo.folder / (model.name + '.log')}")
    _record(model, args, zoo, say)


def _record(model: ZooModel, args: list[str], zoo: Zoo, say) -> None:
    path = zoo.checkpoint(model.name)
    entry = ZooEntry(model.name, model.task, model.algo, model.obs, path.name, sha256_of(path), _cli(args),
                     model.seed, list(model.cameras) if model.images else [])
    zoo.save(entry)
    say(f"{model.name}: trained, sha256 {entry.sha256[:16]}")


def _evaluate(entry: ZooEntry, zoo: Zoo, roster: Roster, say) -> None:
    from .episode import run_episode
    from .policies import load_policy
    from .scenes import Scene
    policy = load_policy(str(zoo.checkpoint(entry.name)), task=entry.task)
    scene = Scene.for_policy(entry.task, policy)
    try:
        seeds = range(roster.eval_seed, roster.eval_seed + roster.eval_episodes)
        wins = sum(run_episode(scene, policy, [], seed=s).success for s in seeds)
    finally:
        scene.close()
    entry.nominal_success = wins / len(seeds)
    entry.nominal_episodes, entry.nominal_seeds = len(seeds), f"{seeds[0]}-{seeds[-1]}"
    entry.nominal_horizon = scene.horizon
    zoo.save(entry)
    say(f"{entry.name}: nominal success {wins}/{len(seeds)}")
