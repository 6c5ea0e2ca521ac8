"""The search configuration: one ROS 2 parameter file read by both `robofail search` and the
ROS nodes (config/search.yaml). Unknown keys are refused with the closest known names, so a
typo never silently falls back to a default."""
from __future__ import annotations

import dataclasses
import difflib
import math
import pathlib
import re

import yaml

from . import resources, yaml_files
from .errors import ConfigError, lookup, not_a_file
from .search import DEFAULT_SEARCHER
from .search.base import resolve_hyperparameters
from .stats import Goal

DEFAULT_SEARCH_CONFIG = resources.path("config", "search.yaml")


# Parameters that belong to one node only (put them in that node's section of the file).
SEARCH_NODE_PARAMETERS = {
    "out": "",  # run folder; empty: <output_dir>/<searcher>-<time>
    "resume": False,  # continue the unfinished run in `out` (with the config it recorded)
    "extend": "",  # a finished run folder to continue to a larger budget in `out` (the same search otherwise)
    "exit_when_done": False,  # shut down when the search finishes (else keep serving)
    "episode_timeout_s": 120.0,  # a worker silent this long has its episode re-queued to another
    "policy_timeout_s": 120.0,  # how long to wait for every worker's policy node to announce itself
    "start_on_launch": True,  # run the parameter file's search at start-up (else wait for RunSearch goals)
}
SIM_NODE_PARAMETERS = {
    "action_timeout_s": 30.0,  # a policy node silent this long stops the episode with an error
}


def node_parameters(given: dict, spec: dict, where: str) -> dict:
    """A node's own parameters (``spec``: name -> default), each of its default's type; a timeout
    must be a positive number of seconds. The defaults fill in what ``given`` lacks."""
    own = {}
    for name, default in spec.items():
        value = given.get(name, default)
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ConfigError(f"{where}: {name} must be true or false, got {value!r}")
        if isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{where}: {name} must be a positive number of seconds, got {value!r}")
            value = float(value)
        if isinstance(default, str) and not isinstance(value, str):
            raise ConfigError(f"{where}: {name} must be text, got {value!r}")
        own[name] = value
    return own


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """What a search run does (each field is a key of the parameter file)."""
    task: str = "Lift"  # robosuite task (see `robofail perturbations --task`)
    policy: str = "lift_bc_rnn_low_dim"  # bundled policy name, checkpoint path, "scripted" or "random"
    searcher: str = DEFAULT_SEARCHER  # a registered searcher (`robofail search --help`; core/search/)
    budget: int = 300  # episodes the searcher may spend
    nominal_episodes: int = 20  # unperturbed episodes first: the baseline for severity
    num_workers: int = 1  # episodes run at once (worker processes or ROS worker pairs)
    seed: int = 0  # fixes every episode's scene and every searcher's choices
    horizon: int = 0  # control steps before an episode counts as a failure; 0: the task's own (episode_horizon)
    catalog: str = ""  # perturbation catalog YAML; empty: config/perturbations/default.yaml
    perturbations: tuple = ("all",)  # catalog names to search over; ["all"]: the task's whole catalog
    render_quality: str = "default"  # "default" or "fast" (no shadows/reflections)
    device: str = "cpu"  # where the policy under test runs
    output_dir: str = "runs"  # run folders go here unless --out names one
    report: bool = True  # write <run>/report/ (figures, failure gallery, index.html) when the run finishes
    # What the search decides (stats.Goal): rank the top_k worst modes; a mode fails above the
    # unperturbed rate + margin; decisions hold with this confidence over every mode at once;
    # modes closer than tolerance need not be ordered.
    top_k: int = 3
    margin: float = 0.1
    confidence: float = 0.95
    tolerance: float = 0.05
    # per-searcher hyperparameters: {searcher name: {name: value}}
    searchers: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        for field in dataclasses.fields(self):
            _check_type(field.name, getattr(self, field.name), field.type)
        if self.budget <= 0:
            raise ConfigError(f"budget must be a positive number of episodes, got {self.budget!r}")
        for name, value, least, what in (("nominal_episodes", self.nominal_episodes, 0, "unperturbed episodes"),
                                          ("num_workers", self.num_workers, 1, "episodes at once"),
                                          ("horizon", self.horizon, 0, "control steps per episode; 0: the task's own")):
            if value < least:
                raise ConfigError(f"{name} must be >= {least} ({what}), got {value}")
        if not 0 <= self.seed < 2**32:  # PPO's seeding (numpy's legacy seed) takes 32 bits, SeedSequence no negatives
            raise ConfigError(f"seed must be in [0, {2**32 - 1}], got {self.seed}")
        perturbations = tuple(self.perturbations)
        if not perturbations:
            raise ConfigError("perturbations is empty; list catalog names or use [all]")
        repeated = sorted({name for name in perturbations if perturbations.count(name) > 1})
        if repeated:
            raise ConfigError(f"perturbations lists {', '.join(map(repr, repeated))} more than once; list each catalog name once")
        if "all" in perturbations and len(perturbations) > 1:
            raise ConfigError("perturbations: 'all' (the task's whole catalog) stands alone; give [all], or only the "
                              "catalog names to search")
        object.__setattr__(self, "perturbations", perturbations)
        if self.render_quality not in ("default", "fast"):
            raise ConfigError(f"render_quality must be 'default' or 'fast', got {self.render_quality!r}")
        from .scenes.tasks import TASKS
        lookup(TASKS, "task", self.task)
        if not re.fullmatch(r"cpu|cuda(:\d+)?", self.device):
            raise ConfigError(f"device must be cpu or cuda (cuda:N for the N-th GPU), got {self.device!r}")
        self.goal  # validates top_k, margin, confidence, tolerance
        for name, section in self.searchers.items():  # every section, not only the chosen searcher's: a typo
            resolve_hyperparameters(name, section)      # in one that a later --searcher picks must not wait until then

    @property
    def episode_horizon(self) -> int:
        """The control steps an episode gets: ``horizon``, or the task's own when it is 0."""
        from .scenes.tasks import get_task
        return self.horizon or get_task(self.task).horizon

    @property
    def goal(self) -> Goal:
        return Goal(self.top_k, self.margin, self.confidence, self.tolerance)

    def replace(self, **changes) -> "SearchConfig":
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def with_overrides(self, overrides: dict) -> "SearchConfig":
        """This config with a request's overrides (a ROS action goal, say), every value checked
        like the file's; names longer than 200 characters are refused before any lookup."""
        for key, value in overrides.items():
            for text in (value if isinstance(value, (list, tuple)) else [value]):
                if isinstance(text, str) and len(text) > 200:
                    raise ConfigError(f"{key} is {len(text)} characters long; give a name (at most 200 characters)")
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(self)} - {"searchers"})
        if unknown:
            raise ConfigError(f"unknown override(s) {unknown}")
        try:
            return dataclasses.replace(self, **overrides)
        except TypeError as exc:
            raise ConfigError(str(exc)) from None

    def to_dict(self) -> dict:
        """The config as a run records it, with the horizon its episodes have (0 resolved to the
        task's): a run recorded before a task's default changed still resumes only with its own."""
        d = dataclasses.asdict(self)
        d["perturbations"] = list(self.perturbations)
        d["horizon"] = self.episode_horizon
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str = "config") -> "SearchConfig":
        """The inverse of ``to_dict`` (a run record's config), checked like a parameter file."""
        plain = {key: value for key, value in d.items() if key != "searchers"}
        return config_from_params({**(d.get("searchers") or {}), **plain}, where)


_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "dict": (dict,),
          "tuple": (list, tuple)}


def _check_type(name: str, value, annotation: str) -> None:
    """Checks a parameter against its field's annotation (bool is not a number here)."""
    expected = _TYPES[annotation]
    if (isinstance(value, bool) and bool not in expected) or not isinstance(value, expected):
        wanted = {"int": "a whole number", "float": "a number", "str": "a string", "bool": "true or false",
                  "dict": "a mapping", "tuple": "a list"}[annotation]
        raise ConfigError(f"{name} must be {wanted}, got {value!r}")
    if annotation == "tuple" and not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{name} must be a list of names, got {value!r}")


def load_search_config(path=DEFAULT_SEARCH_CONFIG) -> SearchConfig:
    """Reads a ROS 2 parameter file: ``<node or /**>: ros__parameters: {...}``.

    The parameters of ``/**`` apply to every node; ``search_node``'s override them.
    """
    path = pathlib.Path(path)
    if problem := not_a_file(path):
        raise ConfigError(f"config file {path} {problem}; start from {DEFAULT_SEARCH_CONFIG}")
    try:
        doc = yaml_files.load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: a ROS 2 parameter file is a mapping ('/**:' -> 'ros__parameters:' -> parameters), "
                          f"got {type(doc).__name__}; start from {DEFAULT_SEARCH_CONFIG}")
    known = ("/**", "search_node", "/search_node", "/**/sim_node", "/**/policy_node")
    for section in doc:
        if section in ("sim_node", "policy_node", "/sim_node", "/policy_node"):
            raise ConfigError(f"{path}: section {section!r} would reach only a node named /{section.strip('/')}; the workers' "
                              f"nodes live in namespaces /worker_<i>: write '/**/{section.strip('/')}:'")
        if section in {f.name for f in dataclasses.fields(SearchConfig)} | set(SEARCH_NODE_PARAMETERS):
            raise ConfigError(f"{path}: {section!r} is a parameter, not a section: a ROS 2 parameter file nests "
                              f"parameters as '/**:' -> 'ros__parameters:' -> '{section}: ...' (indent them under those "
                              f"two lines); start from {DEFAULT_SEARCH_CONFIG}")
        if section not in known:
            close = difflib.get_close_matches(str(section), known, n=1)
            raise ConfigError(f"{path}: unknown section {section!r}." + (f" Did you mean {close[0]!r}?" if close else "")
                              + f" Sections: {', '.join(known)}")
    params: dict = {}
    for node in ("/**", "search_node", "/search_node"):
        section = doc.get(node)
        if section is None:
            continue
        if not isinstance(section, dict) or "ros__parameters" not in section:
            raise ConfigError(f"{path}: section {node!r} must hold 'ros__parameters:' (ROS 2 parameter file layout)")
        if not isinstance(section["ros__parameters"] or {}, dict):
            raise ConfigError(f"{path}: {node!r} -> ros__parameters must map parameter names to values, "
                              f"got {section['ros__parameters']!r}")
        section = dict(section["ros__parameters"] or {})
        if node != "/**":
            node_parameters(section, SEARCH_NODE_PARAMETERS, f"{path}: {node!r}")
            section = {k: v for k, v in section.items() if k not in SEARCH_NODE_PARAMETERS}
        params.update(section)
    sim_section = doc.get("/**/sim_node")
    sim_node = sim_section.get("ros__parameters") if isinstance(sim_section, dict) else None
    if isinstance(sim_node, dict):
        unknown = sorted(set(sim_node) - set(SIM_NODE_PARAMETERS))
        if unknown:
            raise ConfigError(f"{path}: '/**/sim_node' takes only {', '.join(SIM_NODE_PARAMETERS)} (the search's "
                              f"parameters go under '/**:'), got {unknown}")
        node_parameters(sim_node, SIM_NODE_PARAMETERS, f"{path}: '/**/sim_node'")
    if not params:
        raise ConfigError(f"{path}: no '/**:' or 'search_node:' section with ros__parameters found")
    return config_from_params(params, str(path))


def config_from_params(params: dict, where: str = "parameters") -> SearchConfig:
    fields = {f.name for f in dataclasses.fields(SearchConfig)}
    from .search import SEARCHERS
    searchers = {}
    plain = {}
    for key, value in params.items():
        if key in SEARCHERS:
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: {key!r} must be a mapping of that searcher's hyperparameters")
            searchers[key] = value
        elif key == "searchers":  # as run.json records them
            raise ConfigError(f"{where}: 'searchers' is no parameter: each searcher's section goes directly under "
                              f"ros__parameters (e.g. identify: {{discover_trials: 4}}), one per searcher "
                              f"({', '.join(sorted(SEARCHERS))})")
        elif key in fields:
            plain[key] = value
        else:
            known = sorted(fields - {"searchers"})
            close = difflib.get_close_matches(key, known + sorted(SEARCHERS), n=2)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ConfigError(f"{where}: unknown parameter {key!r}.{hint} Known: {', '.join(known)} "
                              f"and one section per searcher ({', '.join(sorted(SEARCHERS))})")
    try:
        return SearchConfig(**plain, searchers=searchers)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def read_yaml(path, what: str):
    """The YAML document at ``path``; an unreadable or malformed file is a ConfigError naming ``what``."""
    try:
        return yaml_files.load(pathlib.Path(path).read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc}") from None
