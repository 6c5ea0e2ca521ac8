"""Policies that need no training: a state-based expert and a random policy.

The expert reads object and gripper positions (never images), so visual perturbations cannot
affect it; physical ones (mass, friction, pose, actuation) can.
"""
from __future__ import annotations

import numpy as np

from ..errors import PolicyError
from .base import register_policy_loader


def _toward(target, eef, gain: float, grip: float) -> np.ndarray:
    """An OSC_POSE delta action moving the gripper toward ``target`` (orientation held)."""
    return np.concatenate([np.clip(gain * (target - eef), -1.0, 1.0), np.zeros(3), [grip]])


class _Expert:
    """A phase machine over positions read from the observation; subclasses say what to read."""

    name = "scripted"
    cameras = ()
    observation_keys: tuple = ()

    def __init__(self, gain: float = 10.0, close_steps: int = 8):
        self.gain, self.close_steps = gain, close_steps

    def start_episode(self, seed: int) -> None:
        self.phase, self.closed_for = self.first_phase, 0


class LiftExpert(_Expert):
    """Hovers above the cube, descends, closes the gripper, lifts (OSC_POSE deltas)."""

    observation_keys = ("robot0_eef_pos", "cube_pos")
    first_phase = "hover"
    grasp_height = -0.005  # m of the gripper site relative to the object's centre when it closes

    def act(self, obs: dict) -> np.ndarray:
        eef, cube = obs["robot0_eef_pos"], obs["cube_pos"]
        return self.pick(eef, cube, then=lambda: _toward(eef + (0, 0, 0.1), eef, self.gain, 1.0))

    def release(self, eef):
        """Opens the gripper and backs off upwards."""
        return _toward(eef + (0, 0, 0.05), eef, self.gain, -1.0)

    def pick(self, eef, cube, then):
        """Hover, descend, grasp ``cube``; once held, ``then()`` gives the action."""
        if self.phase == "hover":
            if np.linalg.norm(cube + (0, 0, 0.06) - eef) < 0.012:
                self.phase = "descend"
            else:
                return _toward(cube + (0, 0, 0.06), eef, self.gain, -1.0)
        grasp = cube + (0, 0, self.grasp_height)
        if self.phase == "descend":
            if np.linalg.norm(grasp - eef) < 0.01:
                self.phase = "grasp"
            else:
                return _toward(grasp, eef, self.gain, -1.0)
        if self.phase == "grasp":
            self.closed_for += 1
            if self.closed_for < self.close_steps:
                return _toward(grasp, eef, self.gain, 1.0)
            self.phase = "held"
        return then()


class StackExpert(LiftExpert):
    """Picks cube A, carries it above cube B, lowers it onto B and lets go."""

    observation_keys = ("robot0_eef_pos", "cubeA_pos", "cubeB_pos")
    clearance = 0.08  # m above cube B while carrying

    def act(self, obs: dict) -> np.ndarray:
        eef, a, b = obs["robot0_eef_pos"], obs["cubeA_pos"], obs["cubeB_pos"]
        return self.pick(eef, a, then=lambda: self.place(eef, a, b))

    def place(self, eef, a, b):
        grasp_offset = eef - a  # keep the cube where it is in the hand
        above = b + (0, 0, self.clearance)
        if self.phase == "held":
            if np.linalg.norm((above - a)[:2]) < 0.01 and a[2] > b[2] + 0.05:
                self.phase = "lower"
            elif a[2] < b[2] + self.clearance - 0.02:
                return _toward(np.array([a[0], a[1], above[2]]) + grasp_offset, eef, self.gain, 1.0)
            else:
                return _toward(above + grasp_offset, eef, self.gain, 1.0)
        if self.phase == "lower":
            resting = b + (0, 0, 0.045)  # half-heights of B (0.025) and A (0.02)
            if a[2] < resting[2] + 0.008:
                self.phase = "release"
            else:
                return _toward(resting + grasp_offset, eef, self.gain * 0.5, 1.0)
        return self.release(eef)


class PickPlaceCanExpert(LiftExpert):
    """Picks the can out of its bin, carries it high over the goal bin's target quarter, lowers
    it there and lets go."""

    observation_keys = ("robot0_eef_pos", "Can_pos", "goal_pos")
    grasp_height = 0.02  # the fingers would meet the bin's floor lower down
    carry_height = 0.25  # m above the target while carrying (clears both bins' walls)
    release_height = 0.07  # m of the can's centre above the target when it is let go

    def act(self, obs: dict) -> np.ndarray:
        eef, can, goal = obs["robot0_eef_pos"], obs["Can_pos"], obs["goal_pos"]
        return self.pick(eef, can, then=lambda: self.place(eef, can, goal))

    def place(self, eef, can, goal):
        grasp_offset = eef - can
        above = goal + (0, 0, self.carry_height)
        if self.phase == "held":
            if can[2] < above[2] - 0.03:  # up first, clear of the bin's walls
                return _toward(np.array([can[0], can[1], above[2]]) + grasp_offset, eef, self.gain, 1.0)
            if np.linalg.norm((above - can)[:2]) > 0.01:
                return _toward(above + grasp_offset, eef, self.gain, 1.0)
            self.phase = "lower"
        if self.phase == "lower":
            if can[2] > goal[2] + self.release_height:
                return _toward(goal + (0, 0, self.release_height - 0.01) + grasp_offset, eef, self.gain * 0.5, 1.0)
            self.phase = "release"
        return self.release(eef)


class ReachExpert(_Expert):
    """Moves the gripper straight to the goal."""

    observation_keys = ("robot0_eef_pos", "goal_pos")
    first_phase = "reach"

    def act(self, obs: dict) -> np.ndarray:
        return _toward(obs["goal_pos"], obs["robot0_eef_pos"], self.gain, -1.0)


class PushExpert(_Expert):
    """Closes the gripper, lowers it behind the cube (seen from the goal) and pushes the cube to the goal."""

    observation_keys = ("robot0_eef_pos", "cube_pos", "goal_pos")
    first_phase = "behind"
    standoff = 0.06  # m behind the cube's centre before pushing

    def act(self, obs: dict) -> np.ndarray:
        eef, cube, goal = obs["robot0_eef_pos"], obs["cube_pos"], obs["goal_pos"]
        to_goal = np.array([goal[0] - cube[0], goal[1] - cube[1], 0.0])
        direction = to_goal / max(np.linalg.norm(to_goal), 1e-6)
        behind = cube - self.standoff * direction
        if self.phase == "behind":
            if np.linalg.norm((behind - eef)[:2]) < 0.01:
                self.phase = "lower"
            else:
                return _toward(behind + (0, 0, 0.06), eef, self.gain, 1.0)
        if self.phase == "lower":
            if eef[2] < cube[2] + 0.005:
                self.phase = "push"
            else:
                return _toward(behind, eef, self.gain, 1.0)
        rel = (eef - cube)[:2]
        along = rel @ direction[:2]
        if along > -0.015 or np.linalg.norm(rel - along * direction[:2]) > 0.02:
            self.phase = "behind"  # the cube turned or slid away: go around and push again
            return _toward(eef + (0, 0, 0.05), eef, self.gain, 1.0)
        # Aim through the cube at the goal; the lateral error of the gripper is corrected too.
        target = cube + direction * min(np.linalg.norm(to_goal), 0.05) - 0.02 * direction
        return _toward(np.array([target[0], target[1], cube[2]]), eef, self.gain * 0.6, 1.0)


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


_EXPERTS = {"Lift": LiftExpert, "Stack": StackExpert, "Reach": ReachExpert, "Push": PushExpert,
            "PickPlaceCan": PickPlaceCanExpert}


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
