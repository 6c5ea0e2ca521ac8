"""The paper's searcher: stable-baselines3 PPO with a NatureCNN over the scene image.

Defaults are the paper's Appendix A hyperparameters; every one can be overridden in the
search config's ``ppo:`` section. One PPO timestep is one rollout of the policy under test,
so ``n_steps * num_workers`` episodes pass between two updates.

Resume: PPO is saved after every update (``ppo/latest.zip`` in the run folder) and reloaded;
episodes recorded after that save stay in the run's statistics, and PPO goes on learning from
the saved weights.
"""
from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

from ..errors import ConfigError
from .base import Searcher, register_searcher


@register_searcher("ppo")
class PPOSearcher(Searcher):

    @dataclasses.dataclass(frozen=True)
    class Hyperparameters:
        learning_rate: float = 3e-4
        n_steps: int = 2048  # per worker, between updates
        batch_size: int = 64
        n_epochs: int = 10
        gamma: float = 0.99
        gae_lambda: float = 0.95
        ent_coef: float = 0.0
        vf_coef: float = 0.5
        max_grad_norm: float = 0.5
        clip_range: float = 0.2
        failure_reward: float = 1000.0  # Eq. 1: reward when the policy under test fails
        success_reward: float = -100.0  # Eq. 1: divided by the horizon when it succeeds
        max_perturbations: int = 1  # perturbations that may accumulate per search episode
        device: str = "auto"

        def __post_init__(self):
            if self.n_steps < 1 or self.batch_size < 1 or self.n_epochs < 1 or self.max_perturbations < 1:
                raise ConfigError("ppo: n_steps, batch_size, n_epochs and max_perturbations must be >= 1")

    NEEDS_REFERENCE_IMAGE = True
    run_folder: pathlib.Path | None = None
    horizon: int = 200

    @classmethod
    def episode_images(cls, hyperparameters):
        return hyperparameters.get("max_perturbations", 1) > 1

    def bind(self, run_folder, horizon):
        self.run_folder, self.horizon = pathlib.Path(run_folder), horizon

    def __init__(self, names, seed, hp, goal):
        super().__init__(names, seed, hp, goal)
        self.model = None
        self._reference_image = None

    def _make(self, ctx):
        # Imported here: torch and SB3 take ~0.5 GB, which processes that only read the
        # searcher registry (every ROS node, through the config) should not pay.
        from stable_baselines3 import PPO

        from .env import BatchedSearchVecEnv, FailureSearchEnv
        if ctx.reference_image is None:
            raise ConfigError("the ppo searcher needs the scene image (the evaluator gave none)")
        self._reference_image = ctx.reference_image
        envs = [FailureSearchEnv(self.names, None, ctx.reference_image, self.horizon, self.hp.failure_reward,
                                 self.hp.success_reward, self.hp.max_perturbations) for _ in range(ctx.num_workers)]
        vec = BatchedSearchVecEnv(envs, ctx.run)
        saved = self.run_folder / "ppo" / "latest.zip" if self.run_folder else None
        if saved is not None and saved.exists():
            return PPO.load(saved, env=vec, device=self.hp.device)
        kwargs = {f.name: getattr(self.hp, f.name) for f in dataclasses.fields(self.hp)
                  if f.name not in ("failure_reward", "success_reward", "max_perturbations", "device")}
        kwargs["batch_size"] = min(self.hp.batch_size, self.hp.n_steps * ctx.num_workers)
        return PPO("CnnPolicy", vec, seed=self.seed, device=self.hp.device, verbose=0,
                   tensorboard_log=str(self.run_folder / "tensorboard") if self.run_folder else None, **kwargs)

    def search(self, ctx):
        from stable_baselines3.common.callbacks import BaseCallback
        self.model = self._make(ctx)
        folder = self.run_folder

        class SaveAfterUpdate(BaseCallback):
            def _on_rollout_end(self):
                if folder is not None:
                    (folder / "ppo").mkdir(exist_ok=True)
                    self.model.save(folder / "ppo" / "latest.zip")

            def _on_step(self):
                # PPO steps every worker at once: stop before a batch would pass the budget
                # (up to num_workers - 1 episodes of it stay unspent).
                return ctx.remaining >= ctx.num_workers

        if ctx.remaining >= ctx.num_workers:
            self.model.learn(total_timesteps=ctx.remaining, callback=SaveAfterUpdate(),
                             reset_num_timesteps=False, tb_log_name="ppo")

    def pi(self):
        """P_failure(a) = pi(a|o) at the unperturbed scene image (Eq. 5-8)."""
        if self.model is None:
            return {n: 1.0 / len(self.names) for n in self.names}
        import torch
        obs = self._reference_image[None]
        obs_tensor, _ = self.model.policy.obs_to_tensor(obs)
        with torch.no_grad():
            probs = self.model.policy.get_distribution(obs_tensor).distribution.probs[0].cpu().numpy()
        return dict(zip(self.names, (probs / probs.sum()).astype(float).tolist()))
