"""The paper's failure-search MDP as a Gymnasium environment, and a VecEnv that runs its
episodes in batches on any evaluator (worker processes, ROS workers).

- action: index of a perturbation in the catalog (Discrete(K));
- observation: the 84x84 RGB image of the perturbed scene (uint8, HWC; the paper's), or which
  perturbations are applied so far (K zeros and ones) when no reference image is given;
- reward (Eq. 1): ``failure_reward`` if the policy under test fails, else ``success_reward``
  (Eq. 1's -100 / horizon, or 0 with unit rewards); a simulator error earns 0 and ends the
  search episode;
- perturbations accumulate while the policy keeps succeeding, up to ``max_perturbations``
  per search episode (1 by default: each search episode is one perturbation).
"""
from __future__ import annotations

from typing import Callable, Sequence

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from ..episode import EpisodeOutcome


class FailureSearchEnv(gym.Env):
    """One search episode = up to ``max_perturbations`` rollouts of the policy under test.

    ``step`` is ``complete(evaluate(prepare(action)))``; the VecEnv below calls the three parts
    itself so that many environments' rollouts run at once.
    """

    metadata = {"render_modes": []}

    def __init__(self, names: Sequence[str], evaluate_one: Callable | None, reference_image: np.ndarray | None,
                 failure_reward: float = 1000.0, success_reward: float = -0.5, max_perturbations: int = 1):
        super().__init__()
        self.names = list(names)
        self.action_space = gym.spaces.Discrete(len(self.names))
        if reference_image is None:
            self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(len(self.names),), dtype=np.float32)
            self.reference_image = None
        else:
            self.observation_space = gym.spaces.Box(0, 255, shape=reference_image.shape, dtype=np.uint8)
            self.reference_image = reference_image.astype(np.uint8)
        self._evaluate_one = evaluate_one
        self.failure_reward, self.success_reward = failure_reward, success_reward
        self.max_perturbations = max_perturbations
        self.applied: list[str] = []

    def _observe(self, outcome: EpisodeOutcome | None = None) -> np.ndarray:
        if self.reference_image is None:
            obs = np.zeros(len(self.names), dtype=np.float32)
            obs[[self.names.index(n) for n in self.applied]] = 1.0
            return obs
        image = outcome.image if outcome is not None and outcome.image is not None else self.reference_image
        return image.astype(np.uint8)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.applied = []
        return self._observe(), {}

    def prepare(self, action) -> tuple[str, ...]:
        name = self.names[int(action)]
        if name not in self.applied:
            self.applied.append(name)
        return tuple(self.applied)

    def complete(self, outcome: EpisodeOutcome):
        if outcome.sim_error:
            reward, terminated = 0.0, True
        elif outcome.success:
            reward, terminated = self.success_reward, False
        else:
            reward, terminated = self.failure_reward, True
        # Reaching max_perturbations ends the search episode for good (it is the MDP's end, not
        # a time limit): PPO must not bootstrap a value past it.
        terminated = terminated or len(self.applied) >= self.max_perturbations
        truncated = False
        info = {"episode_id": outcome.episode_id, "perturbations": outcome.perturbations,
                "failure": outcome.failure, "sim_error": outcome.sim_error}
        return self._observe(outcome), float(reward), terminated, truncated, info

    def step(self, action):
        return self.complete(self._evaluate_one(self.prepare(action)))


class BatchedSearchVecEnv(VecEnv):
    """``n`` FailureSearchEnvs whose rollouts run as one batch through ``run_batch``
    (SearchContext.run: one perturbation set per environment -> outcomes in order)."""

    def __init__(self, envs: list[FailureSearchEnv], run_batch: Callable):
        self.envs, self._run_batch = envs, run_batch
        super().__init__(len(envs), envs[0].observation_space, envs[0].action_space)
        self._actions = None

    def reset(self):
        self.reset_infos = [{} for _ in self.envs]
        return np.stack([env.reset()[0] for env in self.envs])

    def step_async(self, actions):
        self._actions = actions

    def step_wait(self):
        batch = [env.prepare(a) for env, a in zip(self.envs, self._actions)]
        outcomes = self._run_batch(batch)
        obs, rewards, dones, infos = [], [], [], []
        for env, outcome in zip(self.envs, outcomes):
            o, r, terminated, truncated, info = env.complete(outcome)
            if terminated or truncated:
                info["terminal_observation"] = o
                info["TimeLimit.truncated"] = truncated and not terminated
                o, _ = env.reset()
            obs.append(o)
            rewards.append(r)
            dones.append(terminated or truncated)
            infos.append(info)
        return np.stack(obs), np.array(rewards, dtype=np.float32), np.array(dones), infos

    def close(self):
        pass

    def get_attr(self, attr_name, indices=None):
        return [getattr(self.envs[i], attr_name) for i in self._indices(indices)]

    def set_attr(self, attr_name, value, indices=None):
        for i in self._indices(indices):
            setattr(self.envs[i], attr_name, value)

    def env_method(self, method_name, *args, indices=None, **kwargs):
        return [getattr(self.envs[i], method_name)(*args, **kwargs) for i in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False for _ in self._indices(indices)]

    def _indices(self, indices):
        if indices is None:
            return range(self.num_envs)
        return [indices] if isinstance(indices, int) else indices
