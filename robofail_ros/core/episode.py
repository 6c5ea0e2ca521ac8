"""One episode of a policy under test in a perturbed scene."""
from __future__ import annotations

import dataclasses
from typing import Sequence


@dataclasses.dataclass(frozen=True)
class EpisodeOutcome:
    perturbations: tuple[str, ...]
    seed: int
    success: bool
    steps: int
    sim_error: str | None  # the simulator broke down: neither a success nor a policy failure

    @property
    def failure(self) -> bool:
        """A policy failure: no success and no simulator error."""
        return not self.success and self.sim_error is None


def run_episode(scene, policy, perturbations: Sequence[str] = (), seed: int = 0, on_step=None) -> EpisodeOutcome:
    """Resets ``scene`` with ``perturbations`` and ``seed`` and lets ``policy`` act until the episode ends.

    ``on_step(obs)``, if given, sees every observation (for recording frames).
    """
    obs = scene.reset(perturbations, seed=seed)
    policy.start_episode(seed)
    while not scene.done:
        if on_step is not None:
            on_step(obs)
        obs = scene.step(policy.act(obs))
    return EpisodeOutcome(tuple(scene.applied), int(seed), bool(scene.success), scene.steps, scene.sim_error)
