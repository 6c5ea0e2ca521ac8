"""A synthetic policy under test whose true failure rates are known: for checking searchers
and statistics quickly (tests, bench). It has the evaluator interface, so every searcher runs
on it unchanged; each episode fails with its perturbations' highest rate, decided by the
episode's own seed (the same request gives the same outcome). ``sim_error_rates`` makes some
perturbations break the simulator that often (a simulator error: neither success nor failure)."""
from __future__ import annotations

import numpy as np

from ..episode import EpisodeOutcome
from ..scheduler import SynchronousEvaluator


class SyntheticEvaluator(SynchronousEvaluator):

    def __init__(self, failure_rates: dict, nominal_rate: float = 0.0, image_shape=(84, 84, 3),
                 sim_error_rates: dict | None = None):
        self.failure_rates, self.nominal_rate = dict(failure_rates), nominal_rate
        self.sim_error_rates = dict(sim_error_rates or {})
        self._image = np.full(image_shape, 128, dtype=np.uint8)

    def reference_image(self):
        return self._image

    def answer(self, requests):
        out = []
        for r in requests:
            rate = max((self.failure_rates[n] for n in r.perturbations), default=self.nominal_rate)
            draws = np.random.default_rng(r.seed).random(2)
            broken = draws[1] < max((self.sim_error_rates.get(n, 0.0) for n in r.perturbations), default=0.0)
            out.append(EpisodeOutcome(r.perturbations, r.seed, bool(draws[0] >= rate and not broken), 10,
                                      "synthetic simulator error" if broken else None, r.episode_id, "synthetic"))
        return out
