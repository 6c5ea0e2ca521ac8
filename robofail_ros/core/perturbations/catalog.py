"""The perturbation catalog: named perturbations loaded from YAML, validated before anything runs.

File format (config/perturbations/default.yaml)::

    perturbations:
      - name: red_table          # stable id, [a-z0-9_]
        label: Red Table         # shown in reports (optional; defaults to the name)
        factor: table_color      # one of FACTORS
        rgba: [0.85, 0.1, 0.1, 1]  # the factor's parameters
        tasks: [Lift, Stack]     # optional: only these tasks offer it
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib
import re

import yaml

from .. import resources, yaml_files
from ..analysis import NOMINAL
from ..errors import ConfigError, PerturbationError, UnknownNameError, lookup, not_a_file
from .factors import FACTORS, Factor

DEFAULT_CATALOG = resources.path("config", "perturbations", "default.yaml")
_NAME = re.compile(r"^[a-z0-9_]+$")
_ENTRY_KEYS = {"name", "label", "factor", "tasks"}


@dataclasses.dataclass(frozen=True)
class Perturbation:
    name: str
    label: str
    factor_name: str
    factor: Factor
    tasks: tuple[str, ...]  # empty: every task
    source: str  # "file:line", for error messages


class Catalog:
    """An ordered, name-indexed set of perturbations."""

    def __init__(self, perturbations, path: str = "<memory>"):
        self.path = str(path)
        self._by_name: dict[str, Perturbation] = {}
        for p in perturbations:
            if p.name in self._by_name:
                raise ConfigError(f"{p.source}: perturbation name {p.name!r} is already used at "
                                  f"{self._by_name[p.name].source}; names must be unique")
            self._by_name[p.name] = p

    @classmethod
    def load(cls, path=DEFAULT_CATALOG) -> "Catalog":
        path = pathlib.Path(path)
        if problem := not_a_file(path):
            raise ConfigError(f"perturbation catalog {path} {problem}; pass an existing YAML file "
                              f"(the bundled one is {DEFAULT_CATALOG})")
        try:
            root = yaml.compose(path.read_text(), Loader=yaml_files.UniqueKeyLoader)
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:  # a binary file given by mistake, too
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(root, yaml.MappingNode):
            raise ConfigError(f"{path}: expected a mapping with a 'perturbations' list at the top")
        keys = [k.value for k, _ in root.value]
        top = dict(zip(keys, (v for _, v in root.value)))
        if keys != ["perturbations"]:
            raise ConfigError(f"{path}: the file must hold exactly one key, 'perturbations', whose value "
                              f"is a list (found keys: {keys})")
        listed = top["perturbations"]
        if not isinstance(listed, yaml.SequenceNode):
            got = f"{listed.value!r:.60}" if isinstance(listed, yaml.ScalarNode) else "a mapping"
            raise ConfigError(f"{path}:{listed.start_mark.line + 1}: 'perturbations' must be a list of entries "
                              f"('- {{name: ..., factor: ..., ...}}'), got {got}")
        constructor = yaml_files.UniqueKeyLoader("")
        entries = []
        for node in top["perturbations"].value:
            where = f"{path}:{node.start_mark.line + 1}"
            try:
                data = constructor.construct_object(node, deep=True)
            except yaml.YAMLError as exc:  # a key given twice in the entry
                raise ConfigError(f"{where}: {exc}") from None
            entries.append(_entry(data, where))
        if not entries:
            raise ConfigError(f"{path}: the perturbations list is empty; add entries (the bundled catalog "
                              f"{DEFAULT_CATALOG} shows the layout)")
        return cls(entries, path)

    def for_task(self, task: str) -> "Catalog":
        return Catalog([p for p in self if not p.tasks or task in p.tasks], self.path)

    def subset(self, names) -> "Catalog":
        return Catalog([self[n] for n in names], self.path)

    def __getitem__(self, name: str) -> Perturbation:
        return lookup(self._by_name, "perturbation", name)

    def __contains__(self, name) -> bool:
        return name in self._by_name

    def __iter__(self):
        return iter(self._by_name.values())

    def __len__(self):
        return len(self._by_name)

    @property
    def names(self) -> list[str]:
        return list(self._by_name)

    def factors(self) -> list[str]:
        return sorted({p.factor_name for p in self})

    def definitions(self) -> dict[str, dict]:
        """What each perturbation does, by name: its factor and parameters (as JSON has them).
        A run records these, so that an entry edited since cannot pass for the one its episodes ran."""
        return json.loads(json.dumps({p.name: {"factor": p.factor_name, **dataclasses.asdict(p.factor)} for p in self},
                                     default=str))

    def digest(self) -> str:
        return definitions_digest(self.definitions())


def definitions_digest(definitions: dict[str, dict]) -> str:
    """A short fingerprint of perturbation definitions (Catalog.definitions, or a run record's)."""
    return hashlib.sha256(json.dumps(definitions, sort_keys=True).encode()).hexdigest()[:16]


# Names that mean something else already: a perturbation under them would be mixed with it.
_RESERVED = {NOMINAL: "every table reports the unperturbed episodes under it",
             "all": "`perturbations: [all]` in a config means the whole catalog"}


def _entry(data, where: str) -> Perturbation:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: each perturbation must be a mapping with name, factor and parameters")
    for key in ("name", "factor"):
        if key not in data:
            raise ConfigError(f"{where}: perturbation is missing {key!r}")
    name = data["name"]
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{where}: name {name!r} must be lower-case letters, digits and '_'")
    if name in _RESERVED:
        raise ConfigError(f"{where}: perturbation name {name!r} is reserved ({_RESERVED[name]}); choose another name")
    try:
        factor_cls = lookup(FACTORS, "factor", data["factor"])
    except UnknownNameError as exc:
        raise ConfigError(f"{where}: perturbation {name!r}: {exc}") from None
    fields = {f.name for f in dataclasses.fields(factor_cls)}
    params = {k: v for k, v in data.items() if k not in _ENTRY_KEYS}
    unknown = sorted(set(params) - fields)
    if unknown:
        raise ConfigError(f"{where}: perturbation {name!r}: unknown parameter(s) {unknown} for factor "
                          f"{factor_cls.NAME!r}; it takes {sorted(fields)}")
    required = [f.name for f in dataclasses.fields(factor_cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [key for key in required if key not in params]
    if missing:
        raise ConfigError(f"{where}: perturbation {name!r}: factor {factor_cls.NAME!r} needs {', '.join(missing)} "
                          f"(`robofail perturbations --factors` shows each factor's parameters)")
    try:
        factor = factor_cls(**params)
    except TypeError as exc:
        raise ConfigError(f"{where}: perturbation {name!r}: {exc}; factor {factor_cls.NAME!r} takes "
                          f"{sorted(fields)}") from None
    except (PerturbationError, ValueError) as exc:
        raise ConfigError(f"{where}: perturbation {name!r}: {exc}") from None
    tasks = data.get("tasks", [])
    if isinstance(tasks, str) or not all(isinstance(t, str) for t in tasks):
        raise ConfigError(f"{where}: perturbation {name!r}: tasks must be a list of task names")
    from ..scenes.tasks import TASKS  # here: the scenes import this module
    for task in tasks:
        try:
            lookup(TASKS, "task", task)
        except UnknownNameError as exc:  # a typo would leave the perturbation out of every task
            raise ConfigError(f"{where}: perturbation {name!r}: tasks: {exc}") from None
    return Perturbation(name=name, label=str(data.get("label", name)), factor_name=factor_cls.NAME,
                        factor=factor, tasks=tuple(tasks), source=where)
