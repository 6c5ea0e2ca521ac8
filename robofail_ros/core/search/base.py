"""The searcher interface, the registry, and the context a search runs in.

A searcher chooses which perturbations to try; the context runs the episodes (through an
evaluator: in this process, in worker processes, or on ROS workers), records them, and keeps
the budget. ``Searcher.search(ctx)`` runs until ``ctx.remaining == 0``.
"""
from __future__ import annotations

import collections
import dataclasses
import threading
from typing import Callable, ClassVar, Sequence

import numpy as np

from ..episode import EpisodeOutcome
from ..errors import ConfigError, lookup, strict_fields
from ..scheduler import run_all
from ..stats import Goal

SEARCHERS: dict[str, type["Searcher"]] = {}


def register_searcher(name: str):
    def wrap(cls):
        cls.NAME = name
        SEARCHERS[name] = cls
        return cls
    return wrap


def make_searcher(name: str, names: Sequence[str], seed: int, hyperparameters: dict | None = None,
                  goal: Goal | None = None) -> "Searcher":
    """A searcher by registry name; unknown hyperparameters are refused with the accepted ones.
    Without a goal, the default one (top_k at most the number of perturbations)."""
    cls = lookup(SEARCHERS, "searcher", name)
    hp = resolve_hyperparameters(name, hyperparameters)
    if not names:
        raise ConfigError("the perturbation list is empty; give at least one perturbation to search over")
    if goal is None:
        goal = Goal(top_k=max(1, min(Goal.top_k, len(names))))
    goal.check_modes(len(names))
    return cls(list(names), seed, hp, goal)


def resolve_hyperparameters(name: str, hyperparameters: dict | None = None):
    """A searcher's Hyperparameters from a config section: a ``preset`` (where the searcher has
    PRESETS) under the keys given; unknown keys are refused with the accepted ones."""
    cls = lookup(SEARCHERS, "searcher", name)
    hyperparameters = dict(hyperparameters or {})
    if "preset" in hyperparameters and hasattr(cls, "PRESETS"):
        preset = hyperparameters.pop("preset")
        hyperparameters = {**lookup(cls.PRESETS, f"{name} preset", preset), **hyperparameters}
    fields = {f.name for f in dataclasses.fields(cls.Hyperparameters)}
    unknown = sorted(set(hyperparameters) - fields)
    if unknown:
        raise ConfigError(f"searcher {name!r} has no hyperparameter(s) {unknown}; it takes {sorted(fields)}")
    return strict_fields(cls.Hyperparameters, hyperparameters, f"searcher {name!r}")


@dataclasses.dataclass(frozen=True)
class EpisodeRequest:
    episode_id: int
    perturbations: tuple[str, ...]
    seed: int


def episode_seed(run_seed: int, episode_id: int) -> int:
    """The scene seed of an episode: fixed by the run's seed and the episode id, whoever runs it."""
    return int(np.random.SeedSequence([run_seed, episode_id]).generate_state(1)[0])


class SearchContext:
    """Runs a searcher's episodes on an evaluator and keeps the budget.

    Args:
        evaluator: has ``submit(request)``, ``collect(timeout)`` and ``evaluate(requests)``
            (workers.Evaluator, or a scheduler.SynchronousEvaluator).
        budget: episodes the searcher may spend in all (episodes already done count).
        run_seed: the run's seed (episode seeds derive from it).
        num_workers: how many episodes run at once.
        reference_image: the unperturbed scene as the searcher sees it (PPO on images).
        on_outcomes: called with every finished episode(s) (store, progress).
        first_episode_id: the next free episode id (after a resume).
        spent: episodes of the budget already spent (after a resume).
        baseline: (failures, trials) of the unperturbed episodes.
        should_stop: asked before every new episode; True ends the search early (episodes in
            flight are still recorded) and sets ``cancelled``.
        window: how far episode requests may run ahead of what the searcher has been told
            (default: 4 per extra worker). Before asking for its k-th episode a searcher is
            told exactly the outcomes of its episodes before k - window, whatever order they
            finished in: the same seed gives the same episodes on any number of processes or
            ROS workers, and a finished worker still gets its next episode at once.
    """

    def __init__(self, evaluator, budget: int, run_seed: int, num_workers: int = 1,
                 reference_image: np.ndarray | None = None, on_outcomes: Callable | None = None,
                 first_episode_id: int = 0, spent: int = 0, baseline: tuple[int, int] = (0, 0),
                 window: int | None = None, should_stop: Callable[[], bool] | None = None):
        self.evaluator = evaluator
        self.budget, self.run_seed, self.num_workers = budget, run_seed, num_workers
        self.reference_image = reference_image
        self._on_outcomes = on_outcomes
        self.next_episode_id = first_episode_id
        self.spent = spent
        self.baseline = baseline
        self.window = 4 * (num_workers - 1) if window is None else window
        self.stop_reason: str | None = None  # set by a searcher that stops before the budget is spent
        self._should_stop = should_stop or (lambda: False)
        self.cancelled = False

    def _check_cancel(self) -> bool:
        if not self.cancelled and self._should_stop():
            self.cancelled = True
            self.stop_reason = "cancelled on request (the run is kept and can be resumed)"
        return self.cancelled

    @property
    def remaining(self) -> int:
        return max(0, self.budget - self.spent)

    def _request(self, names) -> EpisodeRequest:
        eid = self.next_episode_id
        self.next_episode_id += 1
        return EpisodeRequest(eid, tuple(names), episode_seed(self.run_seed, eid))

    def _record(self, outcomes) -> None:
        self.spent += len(outcomes)
        if self._on_outcomes and outcomes:
            self._on_outcomes(outcomes)

    def run(self, batch: Sequence[Sequence[str]]) -> list[EpisodeOutcome]:
        """Runs one episode per perturbation set; returns outcomes in the batch's order."""
        if self._check_cancel():
            raise SearchCancelled()
        return run_all(self.evaluator, [self._request(names) for names in batch], self._record)

    def stream(self, ask: Callable[[], Sequence[str] | None], tell: Callable) -> None:
        """Asks for one episode whenever a worker is free (``ask()`` returns perturbation names,
        or None when the searcher is done) and tells outcomes in request order, ``window``
        episodes behind (see the class docstring), until the budget is spent."""
        asked: list[int] = []
        arrived: dict[int, EpisodeOutcome] = {}
        told = 0
        in_flight = 0
        done_asking = False
        while True:
            while told < len(asked) - self.window and asked[told] in arrived:
                tell([arrived.pop(asked[told])])
                told += 1
            done_asking = done_asking or self._check_cancel()
            may_ask = (not done_asking and in_flight < self.num_workers and self.spent + in_flight < self.budget
                       and told >= len(asked) - self.window)
            if may_ask:
                names = ask()
                if names is None:
                    done_asking = True
                    continue
                request = self._request(names)
                self.evaluator.submit(request)
                asked.append(request.episode_id)
                in_flight += 1
                continue
            if not in_flight:
                break
            outcomes = self.evaluator.collect()
            in_flight -= len(outcomes)
            arrived.update((o.episode_id, o) for o in outcomes)
            self._record(outcomes)
        for eid in asked[told:]:
            tell([arrived.pop(eid)])


class SearchCancelled(Exception):
    """Raised inside a batch searcher (PPO) when the search is cancelled; run_search catches it."""


class Searcher:
    """Chooses perturbations to find failures. Subclasses define Hyperparameters and search().

    What a searcher needs from the run it says itself: ``needs_reference_image()`` (the
    unperturbed scene image as its first observation) and ``episode_images()`` (the perturbed
    scene image with every outcome).
    """
    NAME: ClassVar[str] = ""

    @dataclasses.dataclass(frozen=True)
    class Hyperparameters:
        pass

    def __init__(self, names: list[str], seed: int, hp, goal: Goal = Goal()):
        if not names:
            raise ConfigError("the perturbation list is empty; give at least one perturbation to search over")
        self.names, self.seed, self.hp, self.goal = names, seed, hp, goal
        self.rng = np.random.default_rng(seed)
        self.baseline = (0, 0)  # (failures, trials) unperturbed, from the SearchContext
        # Held while the search changes what pi() reads (tell, a PPO update): the ROS service
        # reads pi from another thread.
        self.lock = threading.RLock()

    @classmethod
    def episode_images(cls, hp) -> bool:
        """Whether outcomes must carry the perturbed scene image (workers render it), given the
        searcher's resolved Hyperparameters."""
        return False

    def needs_reference_image(self) -> bool:
        return False

    def bind(self, run_folder, horizon: int) -> None:
        """Where this run's searcher state lives, and the scene's horizon (before search())."""

    def restore(self, outcomes: Sequence[EpisodeOutcome]) -> None:
        """Catches up with episodes of an interrupted run (resume) or of the run extended."""

    def continue_from(self, run_folder) -> None:
        """Takes up the state this searcher left in the folder of the finished run this one extends
        (after bind(), before search()), unless this run has its own already (a resumed extension)."""

    def search(self, ctx: SearchContext) -> None:
        raise NotImplementedError

    def pi(self) -> dict[str, float]:
        """The searcher's distribution over perturbations (sums to 1)."""
        raise NotImplementedError

    def pi_p_fail(self) -> dict[str, float] | None:
        """P(fail) of each perturbation read from pi, for searchers whose pi has that meaning."""
        return None

    def readings(self) -> tuple[dict[str, float], dict[str, float] | None]:
        """pi and pi_p_fail together, consistent with each other whichever thread asks."""
        with self.lock:
            return self.pi(), self.pi_p_fail()

    def close(self) -> None:
        pass


class AskTellSearcher(Searcher):
    """A searcher that proposes perturbations and is told their outcomes, one episode at a time
    (``outstanding``: perturbation sets asked for whose outcome it has not been told yet)."""

    def __init__(self, names, seed, hp, goal=None):
        super().__init__(names, seed, hp, goal or Goal())
        self.outstanding: collections.Counter = collections.Counter()

    def ask(self, n: int) -> list[tuple[str, ...]]:
        raise NotImplementedError

    def tell(self, outcomes: Sequence[EpisodeOutcome]) -> None:
        raise NotImplementedError

    def restore(self, outcomes):
        self.tell([o for o in outcomes if o.perturbations])

    def stop_reason(self) -> str | None:
        """Why ask() gave nothing (the search is complete before its budget)."""
        return None

    def search(self, ctx: SearchContext) -> None:
        self.baseline = ctx.baseline

        def ask_one():
            with self.lock:
                batch = self.ask(1)
                if not batch:
                    ctx.stop_reason = self.stop_reason()
                    return None
                self.outstanding[batch[0]] += 1
                return batch[0]

        def tell(outcomes):
            with self.lock:
                for o in outcomes:
                    self.outstanding[o.perturbations] -= 1
                self.tell(outcomes)
        ctx.stream(ask_one, tell)
