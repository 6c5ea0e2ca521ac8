"""Searchers that treat each perturbation as an arm: uniform, Thompson sampling, cross-entropy.

Each counts a policy failure as a hit; simulator errors are neither hits nor misses.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..stats import wilson_bounds
from ..errors import require
from .base import AskTellSearcher, register_searcher


class ArmCounts:
    """Failures, successes and simulator errors of every single-perturbation episode, per perturbation."""

    def __init__(self, names):
        self.index = {n: i for i, n in enumerate(names)}
        self.failures = np.zeros(len(names))
        self.successes = np.zeros(len(names))
        self.sim_errors = np.zeros(len(names))

    def add(self, outcomes):
        for o in outcomes:
            if len(o.perturbations) != 1 or o.perturbations[0] not in self.index:
                continue
            i = self.index[o.perturbations[0]]
            if o.sim_error:
                self.sim_errors[i] += 1
            elif o.success:
                self.successes[i] += 1
            else:
                self.failures[i] += 1


@register_searcher("uniform")
class UniformSearcher(AskTellSearcher):
    """The paper's "naive for-loop": every perturbation in turn (shuffled each sweep), equally often."""

    @dataclasses.dataclass(frozen=True)
    class Hyperparameters:
        pass

    def __init__(self, names, seed, hp, goal):
        super().__init__(names, seed, hp, goal)
        self._queue: list[str] = []

    def ask(self, n):
        out = []
        for _ in range(n):
            if not self._queue:
                self._queue = list(self.rng.permutation(self.names))
            out.append((self._queue.pop(),))
        return out

    def restore(self, outcomes):
        done = len([o for o in outcomes if o.perturbations])
        if done:
            self.ask(done)  # replay the same sequence of sweeps

    def tell(self, outcomes):
        pass

    def pi(self):
        return {n: 1.0 / len(self.names) for n in self.names}


@register_searcher("thompson")
class ThompsonSearcher(AskTellSearcher):
    """Beta-Bernoulli Thompson sampling: try the perturbation whose sampled failure rate is highest.

    pi is each perturbation's posterior probability of being the worst one.
    """

    @dataclasses.dataclass(frozen=True)
    class Hyperparameters:
        prior_failures: float = 1.0  # Beta prior alpha (pseudo-failures)
        prior_successes: float = 1.0  # Beta prior beta (pseudo-successes)

        def __post_init__(self):
            require("thompson", self, prior_failures="> 0", prior_successes="> 0")

    def __init__(self, names, seed, hp, goal):
        super().__init__(names, seed, hp, goal)
        self.counts = ArmCounts(names)

    def _sample(self, n):
        return self.rng.beta(self.hp.prior_failures + self.counts.failures,
                             self.hp.prior_successes + self.counts.successes, size=(n, len(self.names)))

    def ask(self, n):
        return [(self.names[i],) for i in self._sample(n).argmax(axis=1)]

    def tell(self, outcomes):
        self.counts.add(outcomes)

    def pi(self):
        # Its own generator: reading pi (from a service, say) must not change the search.
        rng = np.random.default_rng(self.seed)
        draws = rng.beta(self.hp.prior_failures + self.counts.failures,
                         self.hp.prior_successes + self.counts.successes, size=(4000, len(self.names)))
        wins = np.bincount(draws.argmax(axis=1), minlength=len(self.names)) / 4000
        return dict(zip(self.names, wins.tolist()))


@register_searcher("cross_entropy")
class CrossEntropySearcher(AskTellSearcher):
    """Cross-entropy method over a categorical distribution of perturbations.

    Each generation samples ``population`` perturbations from p; the elite are those whose
    episode failed; p moves towards the elite's frequencies by ``smoothing``. A floor keeps
    every perturbation possible.
    """

    @dataclasses.dataclass(frozen=True)
    class Hyperparameters:
        population: int = 20
        smoothing: float = 0.5
        floor: float = 0.01  # minimum probability of every perturbation, as a fraction of uniform

        def __post_init__(self):
            require("cross_entropy", self, population=">= 1", smoothing="in (0, 1]", floor="in [0, 1)")

    def __init__(self, names, seed, hp, goal):
        super().__init__(names, seed, hp, goal)
        self.p = np.full(len(names), 1.0 / len(names))
        self._generation: list = []
        self._index = {n: i for i, n in enumerate(names)}

    def ask(self, n):
        return [(self.names[i],) for i in self.rng.choice(len(self.names), size=n, p=self.p)]

    def tell(self, outcomes):
        self._generation.extend(o for o in outcomes if not o.sim_error and len(o.perturbations) == 1)
        while len(self._generation) >= self.hp.population:
            batch, self._generation = self._generation[: self.hp.population], self._generation[self.hp.population:]
            elite = [self._index[o.perturbations[0]] for o in batch if not o.success and o.perturbations[0] in self._index]
            if elite:
                freq = np.bincount(elite, minlength=len(self.names)) / len(elite)
                p = (1 - self.hp.smoothing) * self.p + self.hp.smoothing * freq
                p = np.maximum(p, self.hp.floor / len(self.names))
                self.p = p / p.sum()

    def pi(self):
        return dict(zip(self.names, self.p.tolist()))


@register_searcher("lucb")
class LUCBSearcher(AskTellSearcher):
    """LUCB top-k identification (Kalyanakrishnan et al., 2012): rank the goal's ``top_k`` worst
    perturbations with as few episodes as possible.

    After one episode of each perturbation, it alternates between the two perturbations whose
    order is least certain: the member of the current top-k with the lowest lower confidence
    bound, and the outsider with the highest upper bound (per-mode Wilson bounds at the goal's
    confidence: the classic algorithm, which never stops; ``identify`` is its anytime-valid heir).
    pi is the normalised posterior-mean failure rate (a ranking preference, like every pi).
    """

    @dataclasses.dataclass(frozen=True)
    class Hyperparameters:
        pass

    def __init__(self, names, seed, hp, goal):
        super().__init__(names, seed, hp, goal)
        self.counts = ArmCounts(names)
        self._untried = list(self.rng.permutation(len(names)))
        self._turn = 0

    def _bounds(self):
        # An arm with no counted episode yet (its first was a simulator error) is bounded as
        # one success: p = 0, a finite upper bound.
        trials = np.maximum(self.counts.failures + self.counts.successes, 1)
        low, high = wilson_bounds(self.counts.failures, trials, self.goal.confidence)
        return self.counts.failures / trials, low, high

    def ask(self, n):
        out = []
        for _ in range(n):
            trials = self.counts.failures + self.counts.successes
            while self._untried and trials[self._untried[0]] > 0:
                self._untried.pop(0)
            if self._untried:
                out.append(self._untried.pop(0))
                continue
            p, low, high = self._bounds()
            k = min(self.goal.top_k, len(self.names) - 1)
            if k < 1:
                out.append(0)
                continue
            order = np.argsort(-p, kind="stable")
            inside, outside = order[:k], order[k:]
            weakest_inside = inside[np.argmin(low[inside])]
            strongest_outside = outside[np.argmax(high[outside])]
            out.append(weakest_inside if self._turn % 2 == 0 else strongest_outside)
            self._turn += 1
        return [(self.names[i],) for i in out]

    def tell(self, outcomes):
        self.counts.add(outcomes)

    def pi(self):
        trials = self.counts.failures + self.counts.successes
        mean = (self.counts.failures + 0.5) / (trials + 1)
        return dict(zip(self.names, (mean / mean.sum()).tolist()))
