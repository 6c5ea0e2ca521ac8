"""Policies that need no training: a state-based expert and a random policy.

The expert reads object and gripper positions (never images), so visual perturbations cannot
affect it; physical ones (mass, friction, pose, actuation) can.
"""
from __future__ import annotations

import numpy as np

from ..errors import PolicyError
from .base import register_policy_loader


class LiftExpert:
    """Hovers above the cube, descends, closes the gripper, lifts (OSC_POSE deltas)."""

    name = "scripted"
    cameras = ()
    observation_keys = ("robot0_eef_pos", "cube_pos")

    def __init__(self, gain: float = 10.0, close_steps: int = 8):
        self.gain, self.close_steps = gain, close_steps

    def start_episode(self, seed: int) -> None:
        self.phase, self.closed_for = "hover", 0

    def act(self, obs: dict) -> np.ndarray:
        eef, cube = obs["robot0_eef_pos"], obs["cube_pos"]
        grip = -1.0
        if self.phase == "hover":
            target = cube + (0, 0, 0.06)
            if np.linalg.norm(target - eef) < 0.012:
                self.phase = "descend"
        if self.phase == "descend":
            target = cube + (0, 0, -0.005)
            if np.linalg.norm(target - eef) < 0.01:
                self.phase = "grasp"
        if self.phase == "grasp":
            target, grip = cube + (0, 0, -0.005), 1.0
            self.closed_for += 1
            if self.closed_for >= self.close_steps:
                self.phase = "lift"
        if self.phase == "lift":
            target, grip = eef + (0, 0, 0.1), 1.0
        delta = np.clip(self.gain * (target - eef), -1.0, 1.0)
        return np.concatenate([delta, np.zeros(3), [grip]])


class RandomPolicy:
    """Uniform random actions, seeded per episode."""

    name = "random"
    cameras = ()
    observation_keys = ()

    def __init__(self, action_dim: int = 7):
        self.action_dim = action_dim
        self._rng = np.random.default_rng(0)

    def start_episode(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def act(self, obs: dict) -> np.ndarray:
        return self._rng.uniform(-1.0, 1.0, self.action_dim)


_EXPERTS = {"Lift": LiftExpert}


@register_policy_loader("scripted")
def load_scripted(_arg, task: str, device: str = "cpu"):
    if task not in _EXPERTS:
        raise PolicyError(f"there is no scripted expert for task {task!r} yet (only for {sorted(_EXPERTS)}); "
                          "use a robomimic checkpoint or the random policy")
    return _EXPERTS[task]()


@register_policy_loader("external")
def load_external(_arg, task: str, device: str = "cpu"):
    raise PolicyError("policy 'external' is a ROS node of your own that the workers talk to: it runs only in the ROS "
                      "system (`robofail ros-run --policy external`, or `ros2 launch robofail_ros search.launch.py "
                      "policy:=external`); name a bundled policy, a checkpoint, scripted or random here")


@register_policy_loader("random")
def load_random(_arg, task: str, device: str = "cpu"):
    return RandomPolicy()
