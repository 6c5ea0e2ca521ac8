"""A search run from start to finish: the one function `robofail search`, `robofail evaluate`
and the ROS search node all use, so each path gives the same numbers for the same seed."""
from __future__ import annotations

import os
import pathlib
import sys
import time

from . import interrupts
from .analysis import RunResult, failure_table, run_result
from .config import SearchConfig
from .perturbations import DEFAULT_CATALOG, Catalog
from .policies import load_policy
from .provenance import PolicyRecord
from .errors import ConfigError, lookup
from .search import SEARCHERS, SearchContext, episode_seed, make_searcher
from .search.base import EpisodeRequest, SearchCancelled, resolve_hyperparameters
from .stats import Goal
from .store import EXTENDABLE, HOW_IT_RUNS, RunStore
from .workers import WorkerSpec, check_local_workers, make_evaluator


def resolve_catalog(config: SearchConfig) -> Catalog:
    full = Catalog.load(config.catalog or DEFAULT_CATALOG)
    catalog = full.for_task(config.task)
    if not len(catalog):
        raise ConfigError(f"{full.path}: none of its {len(full)} perturbation(s) applies to task {config.task} "
                          f"(each one's tasks: names other tasks); add entries for {config.task} or drop their tasks: lists")
    if config.perturbations != ("all",):
        catalog = catalog.subset(config.perturbations)
    return catalog


def policy_record(config: SearchConfig) -> PolicyRecord:
    """Loads the policy once here (a bad checkpoint fails before any worker starts) and
    returns what the run records about it."""
    policy = load_policy(config.policy, task=config.task, device=config.device)
    return PolicyRecord(spec=config.policy, name=policy.name, source="loaded by robofail",
                        sha256=getattr(policy, "sha256", None), path=getattr(policy, "path", None),
                        algo=getattr(policy, "algo", None), observation_keys=tuple(policy.observation_keys),
                        cameras=tuple(policy.cameras))


def worker_spec(config: SearchConfig, sha256: str | None = None) -> WorkerSpec:
    """What the workers of ``config`` build; ``sha256``: the checkpoint they must load (the run's)."""
    searcher = lookup(SEARCHERS, "searcher", config.searcher)
    hp = resolve_hyperparameters(config.searcher, config.searchers.get(config.searcher))
    catalog = str(config.catalog or DEFAULT_CATALOG)
    return WorkerSpec(task=config.task, policy=config.policy, catalog=catalog, horizon=config.episode_horizon,
                      render_quality=config.render_quality, device=config.device, images=searcher.episode_images(hp),
                      sha256=sha256, catalog_digest=Catalog.load(catalog).for_task(config.task).digest())


class RunObserver:
    """Sees a run as it goes (progress bars, ROS topics and services). Override what you need."""

    def started(self, searcher, catalog, store) -> None:
        pass

    def recorded(self, outcomes, store) -> None:
        pass

    def should_stop(self) -> bool:
        """True cancels the search: no new episodes; the run stays unfinished and resumable."""
        return False


def run_search(config: SearchConfig, out, resume: bool = False, evaluator=None,
               observer: RunObserver | None = None, extend=None) -> RunResult:
    """Runs (or resumes) a search and returns its result (also written to ``out/summary.json``).

    ``extend``: a finished run folder this new run starts from, to a larger ``config.budget``: the
    same search (``recorded_config`` gives its config), whose episodes are copied into ``out`` and
    replayed into the searcher, as a resume would; that run is left as it was.
    ``evaluator`` defaults to worker processes (or this process for one worker); the ROS search
    node passes its own, whose ``policy_record()`` says which policy its workers really run (what
    the run records). ``observer`` sees the run start and every finished batch.
    """
    if not isinstance(out, (str, os.PathLike)) or not str(os.fspath(out)).strip():  # "" would be the current folder
        raise ConfigError(f"the run folder must be a path (str or pathlib.Path), got {out!r}; e.g. runs/my-search")
    observer = observer or RunObserver()
    catalog = resolve_catalog(config)
    searcher = make_searcher(config.searcher, catalog.names, config.seed, config.searchers.get(config.searcher),
                             config.goal)
    if evaluator is None:
        check_local_workers(config.num_workers)  # before the run folder is made and any worker starts
    policy = evaluator.policy_record() if evaluator is not None else policy_record(config)
    store = RunStore.create(out, config.to_dict(), policy, catalog.definitions(), resume=resume, extend=extend)
    own_evaluator = evaluator is None
    evaluator = evaluator or make_evaluator(worker_spec(config, policy.sha256), config.num_workers)
    try:
        observer.started(searcher, catalog, store)
        done = store.outcomes()
        next_id = max((o.episode_id for o in done), default=-1) + 1

        def record(outcomes):
            for o in outcomes:
                store.append(o)
            observer.recorded(outcomes, store)
            interrupts.check()  # a Ctrl-C that a library swallowed during these episodes stops the run here

        # 1. The unperturbed baseline (episode ids 0 .. nominal_episodes-1).
        nominal_done = {o.episode_id for o in done if not o.perturbations}
        missing = [EpisodeRequest(i, (), episode_seed(config.seed, i))
                   for i in range(config.nominal_episodes) if i not in nominal_done]
        evaluator.evaluate(missing, on_arrival=record)
        # 2. The search, caught up with any episodes of an interrupted run.
        outcomes = store.outcomes()
        perturbed = [o for o in outcomes if o.perturbations]
        baseline = [o for o in outcomes if not o.perturbations and not o.sim_error]
        searcher.restore(perturbed)
        searcher.bind(pathlib.Path(out), config.episode_horizon)
        extended = store.record.extends  # also when an extension is resumed: its state may not be copied yet
        if extended:
            searcher.continue_from(pathlib.Path(extended.run))
        ctx = SearchContext(evaluator, config.budget, config.seed, evaluator.num_workers,
                            evaluator.reference_image() if searcher.needs_reference_image() else None, record,
                            first_episode_id=max(next_id, config.nominal_episodes), spent=len(perturbed),
                            baseline=(sum(not o.success for o in baseline), len(baseline)),
                            should_stop=observer.should_stop)
        start = time.time()
        try:
            searcher.search(ctx)
        except SearchCancelled:
            pass
        result = result_of(store, catalog, searcher, config.goal)
        result.search_seconds = round(time.time() - start, 1)
        result.stop_reason, result.cancelled = ctx.stop_reason, ctx.cancelled
        if ctx.cancelled:
            return result  # unfinished on purpose: `--resume` continues it
        store.finish(result)
    finally:
        searcher.close()
        if own_evaluator:
            evaluator.close()
        store.close()
    if config.report:  # after the workers are gone: the gallery replays build scenes of their own
        result.report = _report(out)
    return result


def _report(out) -> str | None:
    """Writes the run's report; a failure here is reported, and the finished run is kept."""
    from .report import write_report
    try:
        return str(write_report([out], pathlib.Path(out) / "report"))
    except Exception as exc:
        interrupts.reraise(exc)
        print(f"robofail: the run finished, but its report failed ({type(exc).__name__}: {exc}); "
              f"write it with `robofail report {out} --out {out}/report`", file=sys.stderr)
        return None


def recorded_config(folder) -> SearchConfig:
    """The config the run in ``folder`` ran with: where its resume or its extension starts."""
    store = RunStore.open(folder)
    try:
        return store.record.search_config
    finally:
        store.close()


def continued_config(config: SearchConfig, folder, extend: bool = False) -> tuple[SearchConfig, list[str]]:
    """The config the run in ``folder`` recorded, with the keys a resume (``extend``: an extension)
    may change taken from ``config``; and the keys whose values in ``config`` go unused. A ROS
    search node resumes and extends with it: a parameter file cannot tell which of its values a
    user gave, so the run's record decides the rest, as it does for `robofail search --resume`."""
    recorded = recorded_config(folder)
    continued = recorded.replace(**{key: getattr(config, key) for key in (EXTENDABLE if extend else HOW_IT_RUNS)})
    mine, theirs = config.to_dict(), continued.to_dict()
    return continued, sorted(key for key in mine if mine[key] != theirs[key])


def stored_result(folder) -> RunResult:
    """A run folder's result: its summary once the run finished, else its episodes' so far."""
    store = RunStore.open(folder)
    try:
        record = store.record
        if record.finished:
            return store.summary()
        config = record.search_config
        return result_of(store, resolve_catalog(config), None, config.goal)
    finally:
        store.close()


def result_of(store: RunStore, catalog: Catalog, searcher, goal: Goal) -> RunResult:
    """The failure-mode table and summary of the episodes in ``store`` so far (``searcher``: the
    live searcher whose pi goes with the table, or None for a stored run)."""
    outcomes = store.outcomes()
    pi, readout = searcher.readings() if searcher is not None else (None, None)
    table = failure_table(outcomes, catalog, pi, goal, readout)
    return run_result(str(store.folder), table, outcomes)
