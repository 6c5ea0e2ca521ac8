"""A search run from start to finish: the one function `robofail search`, `robofail evaluate`
and the ROS search node all use, so each path gives the same numbers for the same seed."""
from __future__ import annotations

import dataclasses
import pathlib
import sys
import time

from .analysis import failure_modes, summary
from .config import SearchConfig
from .perturbations import DEFAULT_CATALOG, Catalog
from .policies import load_policy
from .search import SearchContext, episode_seed, make_searcher
from .search.base import EpisodeRequest
from .store import RunStore
from .workers import WorkerSpec, make_evaluator


def resolve_catalog(config: SearchConfig) -> Catalog:
    catalog = Catalog.load(config.catalog or DEFAULT_CATALOG).for_task(config.task)
    if config.perturbations != ("all",):
        catalog = catalog.subset(config.perturbations)
    return catalog


def policy_info(config: SearchConfig) -> dict:
    """Loads the policy once here (a bad checkpoint fails before any worker starts) and
    returns what the run records about it."""
    policy = load_policy(config.policy, task=config.task, device=config.device)
    return {"spec": config.policy, "name": policy.name, "path": getattr(policy, "path", None),
            "sha256": getattr(policy, "sha256", None), "algo": getattr(policy, "algo", None),
            "observation_keys": list(policy.observation_keys), "cameras": list(policy.cameras)}


def worker_spec(config: SearchConfig) -> WorkerSpec:
    max_perturbations = config.searchers.get("ppo", {}).get("max_perturbations", 1)
    return WorkerSpec(task=config.task, policy=config.policy, catalog=str(config.catalog or DEFAULT_CATALOG),
                      horizon=config.horizon, render_quality=config.render_quality, device=config.device,
                      images=config.searcher == "ppo" and max_perturbations > 1)


class RunObserver:
    """Sees a run as it goes (progress bars, ROS topics and services). Override what you need."""

    def started(self, searcher, catalog, store) -> None:
        pass

    def recorded(self, outcomes, store) -> None:
        pass


def run_search(config: SearchConfig, out, resume: bool = False, evaluator=None,
               observer: RunObserver | None = None) -> dict:
    """Runs (or resumes) a search and returns its result (also written to ``out/summary.json``).

    ``evaluator`` defaults to worker processes (or this process for one worker); the ROS search
    node passes its own. ``observer`` sees the run start and every finished batch.
    """
    observer = observer or RunObserver()
    catalog = resolve_catalog(config)
    searcher = make_searcher(config.searcher, catalog.names, config.seed, config.searchers.get(config.searcher))
    info = policy_info(config)
    store = RunStore.create(out, config.to_dict(), info, resume=resume)
    own_evaluator = evaluator is None
    evaluator = evaluator or make_evaluator(worker_spec(config), config.num_workers)
    try:
        observer.started(searcher, catalog, store)
        done = store.outcomes()
        next_id = max((o.episode_id for o in done), default=-1) + 1

        def record(outcomes):
            for o in outcomes:
                store.append(o)
            observer.recorded(outcomes, store)

        # 1. The unperturbed baseline (episode ids 0 .. nominal_episodes-1).
        nominal_done = {o.episode_id for o in done if not o.perturbations}
        missing = [EpisodeRequest(i, (), episode_seed(config.seed, i))
                   for i in range(config.nominal_episodes) if i not in nominal_done]
        for start in range(0, len(missing), evaluator.num_workers):
            record(evaluator.evaluate(missing[start:start + evaluator.num_workers]))
        # 2. The search, caught up with any episodes of an interrupted run.
        perturbed = [o for o in store.outcomes() if o.perturbations]
        searcher.restore(perturbed)
        if hasattr(searcher, "run_folder"):
            searcher.run_folder, searcher.horizon = pathlib.Path(out), config.horizon
        ctx = SearchContext(evaluator.evaluate, config.budget, config.seed, evaluator.num_workers,
                            evaluator.reference_image() if config.searcher == "ppo" else None, record,
                            first_episode_id=max(next_id, config.nominal_episodes), spent=len(perturbed))
        start = time.time()
        searcher.search(ctx)
        result = result_of(store, catalog, searcher.pi())
        result["search_seconds"] = round(time.time() - start, 1)
        store.finish(result)
    finally:
        searcher.close()
        if own_evaluator:
            evaluator.close()
        store.close()
    if config.report:  # after the workers are gone: the gallery replays build scenes of their own
        result["report"] = _report(out)
    return result


def _report(out) -> str | None:
    """Writes the run's report; a failure here is reported, and the finished run is kept."""
    from .report import write_report
    try:
        return str(write_report([out], pathlib.Path(out) / "report"))
    except Exception as exc:
        print(f"robofail: the run finished, but its report failed ({type(exc).__name__}: {exc}); "
              f"write it with `robofail report {out} --out {out}/report`", file=sys.stderr)
        return None


def result_of(store: RunStore, catalog: Catalog, pi: dict | None) -> dict:
    """The failure-mode table and summary of the episodes in ``store`` so far."""
    outcomes = store.outcomes()
    modes = failure_modes(outcomes, catalog, pi)
    return {"run": str(store.folder), "modes": [dataclasses.asdict(m) for m in modes], **summary(modes, outcomes)}
