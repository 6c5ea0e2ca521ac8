"""Evaluators: what runs a batch of episodes for a searcher.

- ``LocalEvaluator``: one scene and one policy in this process.
- ``ProcessPoolEvaluator``: ``num_workers`` processes, each with its own scene and policy.
The ROS system (robofail_ros.nodes) provides a third, over DDS, with the same interface:
``evaluate(requests) -> outcomes``, ``num_workers``, ``reference_image()``.
"""
from __future__ import annotations

import dataclasses
import multiprocessing

import numpy as np

from .episode import EpisodeOutcome, run_episode
from .perturbations import Catalog
from .policies import load_policy
from .scenes import Scene

SEARCH_IMAGE_SIZE = 84  # the searcher's observation (the paper's 84x84 RGB)


@dataclasses.dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs to build its scene and policy (picklable)."""
    task: str
    policy: str
    catalog: str
    horizon: int = 200
    render_quality: str = "default"
    device: str = "cpu"
    images: bool = False  # attach the perturbed scene image to every outcome (PPO accumulating)


class LocalEvaluator:
    num_workers = 1

    def __init__(self, spec: WorkerSpec, worker: str = "local"):
        self.spec, self.worker = spec, worker
        self.policy = load_policy(spec.policy, task=spec.task, device=spec.device)
        self.scene = Scene(spec.task, catalog=Catalog.load(spec.catalog), cameras=self.policy.cameras,
                           horizon=spec.horizon, render_quality=spec.render_quality)

    def reference_image(self) -> np.ndarray:
        self.scene.reset([], seed=0)
        return self.scene.render("agentview", SEARCH_IMAGE_SIZE)

    def run(self, request) -> EpisodeOutcome:
        return run_episode(self.scene, self.policy, request.perturbations, request.seed,
                           episode_id=request.episode_id, worker=self.worker,
                           image_size=SEARCH_IMAGE_SIZE if self.spec.images else None)

    def evaluate(self, requests) -> list[EpisodeOutcome]:
        return [self.run(r) for r in requests]

    def close(self):
        self.scene.close()


_WORKER: LocalEvaluator | None = None


def _init_worker(spec: WorkerSpec):
    global _WORKER
    _WORKER = LocalEvaluator(spec, worker=f"worker_{multiprocessing.current_process().name.split('-')[-1]}")


def _run_in_worker(request) -> EpisodeOutcome:
    return _WORKER.run(request)


class ProcessPoolEvaluator:
    """Runs a batch's episodes in parallel in ``num_workers`` processes (spawned, so each
    process owns its own MuJoCo and GL context)."""

    def __init__(self, spec: WorkerSpec, num_workers: int):
        self.spec, self.num_workers = spec, num_workers
        self._pool = multiprocessing.get_context("spawn").Pool(num_workers, _init_worker, (spec,))
        self._local: LocalEvaluator | None = None

    def reference_image(self) -> np.ndarray:
        if self._local is None:
            self._local = LocalEvaluator(self.spec)
        return self._local.reference_image()

    def evaluate(self, requests) -> list[EpisodeOutcome]:
        return self._pool.map(_run_in_worker, requests, chunksize=1)

    def close(self):
        self._pool.close()
        self._pool.join()
        if self._local is not None:
            self._local.close()


def make_evaluator(spec: WorkerSpec, num_workers: int):
    return LocalEvaluator(spec) if num_workers == 1 else ProcessPoolEvaluator(spec, num_workers)
