"""The paper's searcher: stable-baselines3 PPO choosing perturbations, rewarded for failures.

Two configurations (``ppo: {preset: paper}`` selects the second; any key overrides either):

- the default, made to work at the budgets our users run (hundreds to a few thousand episodes):
  an entropy-regularised objective (``ent_coef``, the temperature), rewards scaled to
  failure = 1 / success = 0, advantages left unnormalised (normalising rescales the temperature
  by every minibatch's spread), 32-episode rollouts from 8 search environments, and an MLP over
  which perturbations are applied so far (with one perturbation per search episode the scene
  image PPO would see is the same before every choice; a CNN over it only adds cost);
- ``paper``: Appendix A of the paper: NatureCNN over the 84x84 scene image, Eq. 1 rewards
  (+1000 on failure, -100/horizon on success), SB3's defaults (2048-step rollouts, normalised
  advantages, no entropy bonus).

What pi(a|o) means (the default, one perturbation per search episode): PPO then maximises
E_pi[r] + tau * H(pi) with tau = ``ent_coef``, whose maximiser is the Boltzmann distribution
pi(a) = exp(rbar(a) / tau) / Z, rbar(a) = p(a) * R_fail + (1 - p(a)) * R_success. So
rbar(a) = tau * (log pi(a) + H(pi)) + V, where V = E_pi[rbar] is what PPO's critic estimates,
and ``pi_p_fail()`` reads p(a) = (rbar(a) - R_success) / (R_fail - R_success) off the trained
actor and critic. How far SB3's PPO gets to that optimum in a given budget is measured in
BENCHMARKS.md, not assumed. With ``max_perturbations > 1`` (the paper's sequential setting) or
normalised advantages, the readout has no such meaning and is not given.

Resume: PPO is saved after every update (``ppo/latest.zip`` in the run folder) and reloaded;
episodes recorded after that save stay in the run's statistics, and PPO goes on learning from
the saved weights. A run extending a finished one starts from a copy of its saved weights.
"""
from __future__ import annotations

import dataclasses
import pathlib
import re
import shutil

import numpy as np

from ..errors import ConfigError, require
from .base import Searcher, register_searcher

POLICIES = ("MlpPolicy", "CnnPolicy")
OBSERVATIONS = ("applied", "image")


@register_searcher("ppo")
class PPOSearcher(Searcher):
    PRESETS = {
        "default": {},
        "paper": {"policy": "CnnPolicy", "observation": "image", "n_envs": 1, "n_steps": 2048, "batch_size": 64,
                  "learning_rate": 3e-4, "n_epochs": 10, "ent_coef": 0.0, "clip_range": 0.2,
                  "normalize_advantage": True, "unit_rewards": False},
    }

    @dataclasses.dataclass(frozen=True)
    class Hyperparameters:
        policy: str = "MlpPolicy"  # MlpPolicy or CnnPolicy (NatureCNN; needs observation: image)
        observation: str = "applied"  # "applied": which perturbations are applied (multi-hot); "image": the scene
        n_envs: int = 8  # search environments stepped together (their episodes run on the workers)
        n_steps: int = 4  # per environment, between updates: n_envs * n_steps episodes per rollout
        batch_size: int = 32
        n_epochs: int = 10
        learning_rate: float = 0.001
        gamma: float = 0.99
        gae_lambda: float = 0.95
        ent_coef: float = 0.25  # the temperature tau of the entropy-regularised objective (reward units)
        vf_coef: float = 0.5
        max_grad_norm: float = 0.5
        clip_range: float = 0.3
        normalize_advantage: bool = False
        unit_rewards: bool = True  # failure 1, success 0; false: Eq. 1's failure_reward, success_reward / horizon
        failure_reward: float = 1000.0  # Eq. 1: reward when the policy under test fails
        success_reward: float = -100.0  # Eq. 1: divided by the horizon when it succeeds
        max_perturbations: int = 1  # perturbations that may accumulate per search episode
        device: str = "auto"

        def __post_init__(self):
            require("ppo", self, n_envs=">= 1", n_steps=">= 1", batch_size=">= 1", n_epochs=">= 1",
                    max_perturbations=">= 1", ent_coef=">= 0", learning_rate="> 0", clip_range="> 0",
                    gamma="in [0, 1]", gae_lambda="in [0, 1]", vf_coef=">= 0", max_grad_norm="> 0")
            for name, known in (("policy", POLICIES), ("observation", OBSERVATIONS)):
                if getattr(self, name) not in known:
                    raise ConfigError(f"ppo: {name} must be one of {', '.join(known)}, got {getattr(self, name)!r}")
            if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
                raise ConfigError(f"ppo: device must be auto, cpu or cuda (cuda:N for the N-th GPU), got {self.device!r}")
            if self.policy == "CnnPolicy" and self.observation != "image":
                raise ConfigError("ppo: CnnPolicy reads images; set observation: image (or policy: MlpPolicy)")
            if self.failure_reward <= self.success_reward:
                raise ConfigError("ppo: failure_reward must be above success_reward (failures are what it looks for)")

    run_folder: pathlib.Path | None = None
    horizon: int = 200

    @classmethod
    def episode_images(cls, hp):
        return hp.observation == "image" and hp.max_perturbations > 1

    def __init__(self, names, seed, hp, goal):
        super().__init__(names, seed, hp, goal)
        self.model = None
        self._first_obs = None

    def needs_reference_image(self):
        return self.hp.observation == "image"

    def bind(self, run_folder, horizon):
        self.run_folder, self.horizon = pathlib.Path(run_folder), horizon

    def continue_from(self, run_folder):
        saved, own = pathlib.Path(run_folder) / "ppo" / "latest.zip", self.run_folder / "ppo" / "latest.zip"
        if saved.exists() and not own.exists():
            own.parent.mkdir(exist_ok=True)
            shutil.copyfile(saved, own)

    @property
    def rewards(self) -> tuple[float, float]:
        """(reward of a failure, reward of a success) as PPO sees them."""
        return (1.0, 0.0) if self.hp.unit_rewards else (self.hp.failure_reward, self.hp.success_reward / self.horizon)

    def _make(self, ctx):
        # Imported here: torch and SB3 take ~0.5 GB, which processes that only read the
        # searcher registry (every ROS node, through the config) should not pay.
        from stable_baselines3 import PPO

        from .env import BatchedSearchVecEnv, FailureSearchEnv
        if self.hp.observation == "image" and ctx.reference_image is None:
            raise ConfigError("ppo with observation: image needs the scene image (the evaluator gave none)")
        failure, success = self.rewards
        envs = [FailureSearchEnv(self.names, None, ctx.reference_image if self.hp.observation == "image" else None,
                                 failure, success, self.hp.max_perturbations) for _ in range(self.hp.n_envs)]
        self._first_obs = envs[0].reset()[0]
        vec = BatchedSearchVecEnv(envs, ctx.run)
        saved = self.run_folder / "ppo" / "latest.zip" if self.run_folder else None
        if saved is not None and saved.exists():
            return PPO.load(saved, env=vec, device=self.hp.device)
        skip = {"policy", "observation", "n_envs", "unit_rewards", "failure_reward", "success_reward",
                "max_perturbations", "device"}
        kwargs = {f.name: getattr(self.hp, f.name) for f in dataclasses.fields(self.hp) if f.name not in skip}
        kwargs["batch_size"] = min(self.hp.batch_size, self.hp.n_steps * self.hp.n_envs)
        if self.run_folder is not None:
            return PPO(self.hp.policy, vec, seed=self.seed, device=self.hp.device, verbose=0,
                       tensorboard_log=str(self.run_folder / "tensorboard"), **kwargs)
        from stable_baselines3.common.logger import Logger
        model = PPO(self.hp.policy, vec, seed=self.seed, device=self.hp.device, verbose=0, **kwargs)
        # Without a run folder SB3 would log nowhere but still make an empty tempdir/SB3-<time>
        # folder for each search (hundreds after a benchmark): a logger with no outputs makes none.
        model.set_logger(Logger(folder=None, output_formats=[]))
        return model

    def search(self, ctx):
        from stable_baselines3.common.callbacks import BaseCallback
        with self.lock:
            self.model = self._make(ctx)
        folder, n_envs, lock = self.run_folder, self.hp.n_envs, self.lock

        class SaveAfterUpdate(BaseCallback):
            # The lock is held from the end of a rollout through PPO's update (SB3 calls train()
            # between on_rollout_end and the next on_rollout_start or on_training_end).
            def _on_rollout_end(self):
                lock.acquire()
                if folder is not None:
                    (folder / "ppo").mkdir(exist_ok=True)
                    self.model.save(folder / "ppo" / "latest.zip")

            def _on_rollout_start(self):
                self._release()

            def _on_training_end(self):
                self._release()

            def _release(self):
                try:
                    lock.release()
                except RuntimeError:  # not held: the first rollout, or no update since
                    pass

            def _on_step(self):
                # PPO steps every environment at once: stop before a batch would pass the budget
                # (up to n_envs - 1 episodes of it stay unspent), but let a rollout that just
                # completes with this step reach its update (SB3 counts the step after this call).
                complete = self.locals["n_steps"] + 1 == self.locals["n_rollout_steps"]
                return ctx.remaining >= n_envs or complete

        if ctx.remaining >= n_envs:
            # Whole steps only: SB3 steps again after an update while it is short of total_timesteps.
            self.model.learn(total_timesteps=ctx.remaining - ctx.remaining % n_envs, callback=SaveAfterUpdate(),
                             reset_num_timesteps=False, tb_log_name="ppo")
        if 0 < ctx.remaining < n_envs and not ctx.cancelled:  # a budget below n_envs ran nothing without a word
            ctx.stop_reason = (f"PPO steps its n_envs = {n_envs} search environments together, an episode each: the "
                               f"last {ctx.remaining} episode(s) of the budget make no whole step and stay unspent "
                               f"(a budget that is a multiple of n_envs spends them all)")

    def _probabilities_and_value(self):
        import torch
        obs_tensor, _ = self.model.policy.obs_to_tensor(self._first_obs[None])
        with torch.no_grad():
            probs = self.model.policy.get_distribution(obs_tensor).distribution.probs[0].cpu().numpy()
            value = float(self.model.policy.predict_values(obs_tensor)[0, 0])
        return probs.astype(float) / probs.sum(), value

    def pi(self):
        """P_failure(a) = pi(a|o) at the search episode's first observation (Eq. 5-8)."""
        if self.model is None:
            return {n: 1.0 / len(self.names) for n in self.names}
        return dict(zip(self.names, self._probabilities_and_value()[0].tolist()))

    def pi_p_fail(self):
        """P(fail) of each perturbation from pi and the critic (see the module docstring), or None
        where pi has no such meaning."""
        if (self.model is None or self.hp.max_perturbations > 1 or self.hp.normalize_advantage
                or self.hp.ent_coef <= 0):
            return None
        probs, value = self._probabilities_and_value()
        return dict(zip(self.names, readout(probs, value, self.hp.ent_coef, *self.rewards).tolist()))


def readout(probs, value: float, temperature: float, failure_reward: float = 1.0, success_reward: float = 0.0):
    """P(fail) of each action from a Boltzmann policy pi(a) ∝ exp(rbar(a) / temperature) and the
    value V = E_pi[rbar]: rbar(a) = temperature * (log pi(a) + H(pi)) + V, mapped from rewards to
    probabilities by Eq. 1 and clipped to [0, 1]. Monotone in pi(a)."""
    probs = np.clip(np.asarray(probs, dtype=float), 1e-12, 1.0)
    probs = probs / probs.sum()
    entropy = float(-(probs * np.log(probs)).sum())
    expected = temperature * (np.log(probs) + entropy) + value
    return np.clip((expected - success_reward) / (failure_reward - success_reward), 0.0, 1.0)
