"""The policy-under-test protocol and the registry of policy loaders."""
from __future__ import annotations

from typing import Callable, Protocol, Sequence

import numpy as np

from ..errors import lookup


class PolicyUnderTest(Protocol):
    """What the episode loop needs from a policy.

    ``cameras``: cameras whose images the policy reads (the scene renders only these).
    ``observation_keys``: every observation key the policy reads.
    ``image_size`` (optional): side of the square camera images it reads, in pixels; 84 if absent.
    """
    name: str
    cameras: Sequence[str]
    observation_keys: Sequence[str]

    def start_episode(self, seed: int) -> None: ...

    def act(self, obs: dict) -> np.ndarray: ...


# kind -> loader(path_or_spec, task) -> PolicyUnderTest
POLICY_LOADERS: dict[str, Callable] = {}


def register_policy_loader(kind: str):
    def wrap(fn):
        POLICY_LOADERS[kind] = fn
        return fn
    return wrap


def load_policy(spec: str, task: str = "Lift", device: str = "cpu") -> PolicyUnderTest:
    """Loads a policy from a spec: ``scripted``, ``random``, a bundled policy name, or a checkpoint path.

    ``kind:argument`` picks a loader explicitly (e.g. ``robomimic:/path/model.pth``).
    """
    from . import bundled  # noqa: F401  (registers the bundled names)
    kind, _, arg = spec.partition(":")
    if arg and kind in POLICY_LOADERS:
        return POLICY_LOADERS[kind](arg, task=task, device=device)
    if spec in POLICY_LOADERS:
        return POLICY_LOADERS[spec](None, task=task, device=device)
    if spec.endswith(".pth") or "/" in spec:
        return POLICY_LOADERS["robomimic"](spec, task=task, device=device)
    return lookup(POLICY_LOADERS, "policy", spec)(None, task=task, device=device)
