"""Bundled policies (data/policies/index.yaml), loadable by name."""
from __future__ import annotations

import dataclasses
import pathlib

import yaml

from .. import resources
from ..errors import ConfigError
from .base import POLICY_LOADERS

BUNDLED_DIR = resources.path("data", "policies")
INDEX = BUNDLED_DIR / "index.yaml"


@dataclasses.dataclass(frozen=True)
class BundledPolicy:
    """An entry of data/policies/index.yaml: a checkpoint shipped with the package and how it was made."""
    name: str
    task: str
    algo: str
    obs: str
    file: str  # under data/policies/
    sha256: str
    nominal_success: float  # share of unperturbed episodes (seeds nominal_seeds) succeeded
    nominal_episodes: int
    nominal_seeds: str
    nominal_horizon: int  # control steps each of those episodes had (the task's horizon)
    command: str  # the commands that made it
    trained_on: str
    cameras: tuple[str, ...] = ()  # an image policy's cameras (the checkpoint says them too)

    @property
    def path(self) -> pathlib.Path:
        return BUNDLED_DIR / self.file


def bundled_policies() -> list[BundledPolicy]:
    if not INDEX.is_file():
        return []
    entries = []
    for e in yaml.safe_load(INDEX.read_text()) or []:
        try:
            entries.append(BundledPolicy(**{k: tuple(v) if isinstance(v, list) else v for k, v in e.items()}))
        except TypeError as exc:
            raise ConfigError(f"{INDEX}: entry {e.get('name', e)!r} is malformed ({exc}); restore the file from the "
                              f"package") from None
    return entries


def _register():
    for entry in bundled_policies():
        def loader(_arg, task, device="cpu", _path=str(entry.path)):
            return POLICY_LOADERS["robomimic"](_path, task=task, device=device)
        POLICY_LOADERS.setdefault(entry.name, loader)


_register()
