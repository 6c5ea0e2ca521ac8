"""Bundled policies (data/policies/index.yaml), loadable by name."""
from __future__ import annotations


import yaml

from .. import resources
from .base import POLICY_LOADERS

BUNDLED_DIR = resources.path("data", "policies")
INDEX = BUNDLED_DIR / "index.yaml"


def bundled_policies() -> list[dict]:
    """Entries of data/policies/index.yaml (name, task, algo, obs, file, sha256, nominal_success...)."""
    if not INDEX.is_file():
        return []
    entries = yaml.safe_load(INDEX.read_text()) or []
    for e in entries:
        e["path"] = str(BUNDLED_DIR / e["file"])
    return entries


def _register():
    for entry in bundled_policies():
        def loader(_arg, task, device="cpu", _path=entry["path"]):
            return POLICY_LOADERS["robomimic"](_path, task=task, device=device)
        POLICY_LOADERS.setdefault(entry["name"], loader)


_register()
