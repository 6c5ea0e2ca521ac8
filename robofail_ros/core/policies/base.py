"""The policy-under-test protocol and the registry of policy loaders."""
from __future__ import annotations

from typing import Callable, Protocol, Sequence

import numpy as np

from ..errors import PolicyError, WrongTaskError, lookup


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
    loader, arg = _loader(spec)
    return loader(arg, task=task, device=device)


def check_policy(spec: str, task: str) -> None:
    """Refuses what loading the policy would refuse and can be told without loading it (a launcher
    that starts the policy nodes need not import torch for it): an unknown name, a checkpoint file
    that is not there, a bundled policy of another task."""
    from .bundled import bundled_policies
    from .robomimic_policy import checkpoint_problem
    loader, arg = _loader(spec)
    if loader is POLICY_LOADERS["robomimic"]:
        if arg is None:
            loader(arg, task=task)  # refuses at once: no checkpoint named
        elif problem := checkpoint_problem(arg):
            raise PolicyError(problem)
    trained_on = next((b.task for b in bundled_policies() if b.name == spec), task)
    if trained_on != task:
        raise WrongTaskError(f"policy {spec!r} was trained on task {trained_on!r}, not {task!r}; test it with "
                             f"--task {trained_on}", trained_on)


def _loader(spec: str) -> tuple[Callable, str | None]:
    """The loader a policy spec names, and its argument (see load_policy)."""
    from . import bundled  # noqa: F401  (registers the bundled names)
    kind, _, arg = spec.partition(":")
    if arg and kind in POLICY_LOADERS:
        return POLICY_LOADERS[kind], arg
    if spec in POLICY_LOADERS:
        return POLICY_LOADERS[spec], None
    if spec.endswith(".pth") or "/" in spec:
        return POLICY_LOADERS["robomimic"], spec
    return lookup(POLICY_LOADERS, "policy", spec), None
