"""The searcher interface, the registry, and the context a search runs in.

A searcher chooses which perturbations to try; the context runs the episodes (through an
evaluator: in this process, in worker processes, or on ROS workers), records them, and keeps
the budget. ``Searcher.search(ctx)`` runs until ``ctx.remaining == 0``.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, ClassVar, Sequence

import numpy as np

from ..episode import EpisodeOutcome
from ..errors import ConfigError, lookup
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
    hyperparameters = dict(hyperparameters or {})
    if "preset" in hyperparameters and hasattr(cls, "PRESETS"):
        preset = hyperparameters.pop("preset")
        hyperparameters = {**lookup(cls.PRESETS, f"{name} preset", preset), **hyperparameters}
    fields = {f.name for f in dataclasses.fields(cls.Hyperparameters)}
    unknown = sorted(set(hyperparameters) - fields)
    if unknown:
        raise ConfigError(f"searcher {name!r} has no hyperparameter(s) {unknown}; it takes {sorted(fields)}")
    if not names:
        raise ConfigError("the perturbation list is empty; give at least one perturbation to search over")
    if goal is None:
        goal = Goal(top_k=max(1, min(Goal.top_k, len(names))))
    goal.check_modes(len(names))
    try:
        hp = cls.Hyperparameters(**hyperparameters)
    except TypeError as exc:
        raise ConfigError(f"searcher {name!r}: {exc}") from None
    return cls(list(names), seed, hp, goal)


@dataclasses.dataclass(frozen=True)
class EpisodeRequest:
    episode_id: int
    perturbations: tuple[str, ...]
    seed: int


def episode_seed(run_seed: int, episode_id: int) -> int:
    """The scene seed of an episode: fixed by the run's seed and the episode id, whoever runs it."""
    return int(np.random.SeedSequence([run_seed, episode_id]).generate_state(1)[0])


class SearchContext:
    """Runs batches of episodes for a searcher and keeps the budget.

    Args:
        evaluate: runs a batch of EpisodeRequests, returns their outcomes (any order).
        budget: episodes the searcher may spend in all (episodes already done count).
        run_seed: the run's seed (episode seeds derive from it).
        num_workers: how many episodes the evaluator runs at once (the natural batch size).
        reference_image: the unperturbed scene as the searcher sees it (PPO's first observation).
        on_outcomes: called with every finished batch (store, progress).
        first_episode_id: the next free episode id (after a resume).
        spent: episodes of the budget already spent (after a resume).
        baseline: (failures, trials) of the unperturbed episodes.
    """

    def __init__(self, evaluate: Callable, budget: int, run_seed: int, num_workers: int = 1,
                 reference_image: np.ndarray | None = None, on_outcomes: Callable | None = None,
                 first_episode_id: int = 0, spent: int = 0, baseline: tuple[int, int] = (0, 0)):
        self._evaluate = evaluate
        self.budget, self.run_seed, self.num_workers = budget, run_seed, num_workers
        self.reference_image = reference_image
        self._on_outcomes = on_outcomes
        self.next_episode_id = first_episode_id
        self.spent = spent
        self.baseline = baseline
        self.stop_reason: str | None = None  # set by a searcher that stops before the budget is spent

    @property
    def remaining(self) -> int:
        return max(0, self.budget - self.spent)

    def run(self, batch: Sequence[Sequence[str]]) -> list[EpisodeOutcome]:
        """Runs one episode per perturbation set; returns outcomes in the batch's order."""
        requests = []
        for names in batch:
            eid = self.next_episode_id
            self.next_episode_id += 1
            requests.append(EpisodeRequest(eid, tuple(names), episode_seed(self.run_seed, eid)))
        outcomes = {o.episode_id: o for o in self._evaluate(requests)}
        ordered = [outcomes[r.episode_id] for r in requests]
        self.spent += len(ordered)
        if self._on_outcomes:
            self._on_outcomes(ordered)
        return ordered


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

    @classmethod
    def episode_images(cls, hyperparameters: dict) -> bool:
        """Whether outcomes must carry the perturbed scene image (workers render it)."""
        return False

    def needs_reference_image(self) -> bool:
        return False

    def bind(self, run_folder, horizon: int) -> None:
        """Where this run's searcher state lives, and the scene's horizon (before search())."""

    def restore(self, outcomes: Sequence[EpisodeOutcome]) -> None:
        """Catches up with episodes of an interrupted run (resume)."""

    def search(self, ctx: SearchContext) -> None:
        raise NotImplementedError

    def pi(self) -> dict[str, float]:
        """The searcher's distribution over perturbations (sums to 1)."""
        raise NotImplementedError

    def pi_p_fail(self) -> dict[str, float] | None:
        """P(fail) of each perturbation read from pi, for searchers whose pi has that meaning."""
        return None

    def close(self) -> None:
        pass


class AskTellSearcher(Searcher):
    """A searcher that proposes a batch, sees its outcomes, and proposes again."""

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
        while ctx.remaining:
            batch = self.ask(min(ctx.num_workers, ctx.remaining))
            if not batch:
                ctx.stop_reason = self.stop_reason()
                return
            self.tell(ctx.run(batch))
