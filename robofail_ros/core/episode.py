"""One episode of a policy under test in a perturbed scene."""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from .errors import PolicyError


@dataclasses.dataclass(frozen=True)
class EpisodeOutcome:
    perturbations: tuple[str, ...]
    seed: int
    success: bool
    steps: int
    sim_error: str | None  # the simulator broke down: neither a success nor a policy failure
    episode_id: int = 0
    worker: str = ""
    # The perturbed scene as the searcher sees it (agentview at reset), when asked for.
    image: np.ndarray | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def failure(self) -> bool:
        """A policy failure: no success and no simulator error."""
        return not self.success and self.sim_error is None


def run_episode(scene, policy, perturbations: Sequence[str] = (), seed: int = 0, on_step=None,
                episode_id: int = 0, worker: str = "", image_size: int | None = None) -> EpisodeOutcome:
    """Resets ``scene`` with ``perturbations`` and ``seed`` and lets ``policy`` act until the episode ends.

    ``on_step(obs)``, if given, sees every observation (for recording frames). With
    ``image_size``, the outcome carries an agentview image of the perturbed scene at reset.
    """
    obs = scene.reset(perturbations, seed=seed)
    image = scene.render("agentview", image_size) if image_size else None
    missing = sorted(set(policy.observation_keys) - set(obs))
    if missing:
        fix = (f"give the scene the policy's cameras (Scene(..., cameras={list(policy.cameras)}))"
               if all(key.endswith("_image") for key in missing) else
               "the policy was trained on observations of another environment or robosuite version; train it on "
               "demonstrations of this scene (`robofail demos`, then `robofail train-policy`)")
        raise PolicyError(f"policy {policy.name!r} reads observation keys {missing} that this scene does not "
                          f"provide (it provides {sorted(obs)}); {fix}")
    policy.start_episode(seed)
    while not scene.done:
        if on_step is not None:
            on_step(obs)
        obs = scene.step(policy.act(obs))
    return EpisodeOutcome(tuple(scene.applied), int(seed), bool(scene.success), scene.steps, scene.sim_error,
                          episode_id, worker, image)
