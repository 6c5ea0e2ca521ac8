"""The statistics every decision of a search rests on.

- ``wilson_bounds``: the 95% Wilson score interval, a per-mode descriptive number. It is not
  valid when a searcher decides how often to sample a mode from what it has seen, nor across
  sixty modes at once.
- ``confidence_sequence``: anytime-valid bounds (Robbins' Beta-binomial mixture martingale with a
  Jeffreys prior, cut by Ville's inequality), at level ``(1 - confidence) / m`` for ``m`` modes (a
  union bound). With probability >= ``confidence``, every mode's bounds contain its true failure
  rate at every moment of the search, whatever rule chose the episodes and whenever it stops.
- ``assess``: what the bounds decide. A mode *fails* when its lower bound is above the threshold
  (the unperturbed failure rate + ``margin``), is *safe* when its upper bound is below it, and is
  *undecided* otherwise (*untried* with no episode). The top-k failing modes are *settled* when
  each of them has a lower bound above the upper bound of every other candidate (to within
  ``tolerance``): then, at the stated confidence, they fail more often than every other mode.
  Their *order* is settled when each one's lower bound is above the next one's upper bound (to
  within ``tolerance``).
"""
from __future__ import annotations

import dataclasses
import math
from statistics import NormalDist

import numpy as np
from scipy.special import betaln  # scipy.stats would add ~50 MB to every node and worker

from .errors import ConfigError

FAILS, SAFE, UNDECIDED, UNTRIED = "fails", "safe", "undecided", "untried"
LEFT_OUT = "left out"  # a searcher samples it no more (see assess)
# The highest threshold: a policy that fails unperturbed at >= this minus the margin leaves no mode
# that could be shown to fail more often (no failure rate exceeds 1).
MAX_THRESHOLD = 0.999
_PRIOR = 0.5  # Beta(1/2, 1/2), Jeffreys' prior, mixes the likelihood ratios


@dataclasses.dataclass(frozen=True)
class Goal:
    """What a search decides, and how sure it must be (the run-level keys of config/search.yaml).

    Args:
        top_k: how many of the worst failure modes to rank.
        margin: a mode fails when its failure rate is above the unperturbed rate plus this.
        confidence: of the anytime-valid bounds, simultaneously over every mode.
        tolerance: two modes closer than this need not be ordered (exact ties would never settle).
    """
    top_k: int = 3
    margin: float = 0.1
    confidence: float = 0.95
    tolerance: float = 0.05

    def __post_init__(self):
        for name, kind in (("top_k", int), ("margin", float), ("confidence", float), ("tolerance", float)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
                raise ConfigError(f"{name} must be a {'whole ' if kind is int else ''}number, got {value!r}")
        if self.top_k < 1:
            raise ConfigError(f"top_k must be >= 1 (how many of the worst modes to rank), got {self.top_k}")
        if not 0 <= self.margin < 1:
            raise ConfigError(f"margin must be in [0, 1) (a failure rate above the unperturbed one), got {self.margin}")
        if not 0 < self.confidence < 1:
            raise ConfigError(f"confidence must be in (0, 1), e.g. 0.95, got {self.confidence}")
        if not 0 <= self.tolerance < 1:
            raise ConfigError(f"tolerance must be in [0, 1), e.g. 0.05, got {self.tolerance}")

    def check_modes(self, count: int) -> None:
        if self.top_k > count:
            raise ConfigError(f"top_k is {self.top_k} but only {count} perturbation(s) are searched; "
                              f"set top_k to at most {count}")


def wilson_bounds(failures, trials, confidence: float = 0.95):
    """Wilson score interval of failures/trials, elementwise over arrays (the closed form of
    scipy's ``binomtest(...).proportion_ci(method="wilson")``); (0, 1) where trials is 0."""
    failures, trials = np.asarray(failures, dtype=float), np.asarray(trials, dtype=float)
    z2 = NormalDist().inv_cdf(0.5 + confidence / 2) ** 2
    n = np.maximum(trials, 1)
    p = failures / n
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = np.sqrt(z2 * (p * (1 - p) / n + z2 / (4 * n * n))) / (1 + z2 / n)
    tried = trials > 0
    return np.where(tried, np.clip(centre - half, 0, 1), 0.0), np.where(tried, np.clip(centre + half, 0, 1), 1.0)


def wilson_interval(failures: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    low, high = wilson_bounds(failures, trials, confidence)
    return float(low), float(high)


# (failures, trials, log(1/alpha)) -> (low, high). A search recomputes every mode's bounds after
# each episode, of which one changed: without the memo the bisection was 3/4 of identify's time.
_BOUNDS: dict[tuple[float, float, float], tuple[float, float]] = {}
_BOUNDS_MAX = 200_000  # entries (~40 MB) before the memo starts again


def confidence_sequence(failures, trials, confidence: float = 0.95, modes: int = 1):
    """Anytime-valid bounds of each failure rate, simultaneously over ``modes`` modes.

    For a rate p the mixture likelihood ratio m_n(p) = B(a + f, a + n - f) / B(a, a) / (p^f (1 - p)^(n - f))
    is a nonnegative martingale with m_0 = 1 under p, so P(ever m_n(p) >= 1/alpha) <= alpha (Ville);
    the bounds are {p : m_n(p) < 1/alpha} with alpha = (1 - confidence) / modes. Elementwise; (0, 1)
    where trials is 0.
    """
    f = np.asarray(failures, dtype=float)
    n = np.asarray(trials, dtype=float)
    log_bar = float(np.log(modes / (1 - confidence)))
    keys = [(*key, log_bar) for key in zip(f.ravel().tolist(), n.ravel().tolist())]
    # Read into a dict of this call's own: another thread's clear() cannot take its entries away.
    known = {key: _BOUNDS.get(key) for key in keys}
    new = {key: _bisect_bounds(*key) for key, bounds in known.items() if bounds is None}
    if new:
        if len(_BOUNDS) + len(new) > _BOUNDS_MAX:
            _BOUNDS.clear()
        _BOUNDS.update(new)
        known.update(new)
    bounds = np.array([known[key] for key in keys], dtype=float).reshape(f.shape + (2,))
    return bounds[..., 0], bounds[..., 1]


def episodes_to_show_safe(threshold: float, confidence: float = 0.95, modes: int = 1) -> int | None:
    """How many episodes without a failure bring a mode's anytime-valid upper bound below
    ``threshold`` (``modes`` as in confidence_sequence); None at a threshold of 0, which none do."""
    if threshold <= 0:
        return None

    def safe(n):
        return confidence_sequence(0, n, confidence, modes)[1] < threshold
    high = 1
    while not safe(high):
        high *= 2
    low = high // 2  # not safe (or 0)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if safe(mid) else (mid, high)
    return high


def _bisect_bounds(f: float, n: float, log_bar: float) -> tuple[float, float]:
    """One mode's bounds: where log m_n(p) crosses log(1/alpha), by bisection to 2^-32 (log m_n
    is convex in p with its minimum at f / n). Scalar: numpy's per-call cost was 3/4 of a search."""
    if n <= 0:
        return 0.0, 1.0
    s = n - f
    log_mix = float(betaln(_PRIOR + f, _PRIOR + s) - betaln(_PRIOR, _PRIOR))

    def outside(p):  # log m_n(p) >= log(1/alpha)
        nll = -(f * math.log(p) if f > 0 else 0.0) - (s * math.log1p(-p) if s > 0 else 0.0)
        return log_mix + nll >= log_bar

    p_hat = f / n
    lo_a, lo_b, hi_a, hi_b = 0.0, p_hat, p_hat, 1.0  # low bound in [lo_a, lo_b], high in [hi_a, hi_b]
    for _ in range(32):
        mid = (lo_a + lo_b) / 2
        lo_a, lo_b = (mid, lo_b) if outside(mid) else (lo_a, mid)
        mid = (hi_a + hi_b) / 2
        hi_a, hi_b = (hi_a, mid) if outside(mid) else (mid, hi_b)
    return (lo_a if f > 0 else 0.0), (hi_b if s > 0 else 1.0)


@dataclasses.dataclass(frozen=True)
class Assessment:
    """What the anytime-valid bounds decide about each mode (arrays in the modes' order)."""
    threshold: float
    p_hat: np.ndarray
    low: np.ndarray
    high: np.ndarray
    status: tuple[str, ...]
    top: tuple[int, ...]  # the top-k failing modes (indices), worst first
    top_settled: bool  # the top-k are known to fail more often than every other mode
    unordered: tuple[tuple[int, int], ...]  # neighbours in the top-k whose order is not settled yet
    rest: tuple[int, ...]  # modes that could still be among the top-k (not safe, not in top)
    tied: tuple[int, ...]  # failing outsiders with the last member's estimate: no order to find


def assess(failures, trials, goal: Goal, nominal_failures: int = 0, nominal_trials: int = 0,
           tiebreak=None, left_out=None) -> Assessment:
    """Classifies every mode and settles the top-k from failure counts (see the module docstring).

    ``tiebreak`` (one number per mode, lower first) orders modes with equal estimates and trials;
    by default the listing order. A searcher passes a seeded permutation, so that which of two
    equal modes it treats as the top-k member does not depend on how the catalog lists them.
    ``left_out`` (a mask) marks modes a searcher samples no more (they break the simulator): status
    LEFT_OUT, in neither the top-k nor the rest, so they hold no decision open; the bounds still
    count them."""
    failures, trials = np.asarray(failures, dtype=float), np.asarray(trials, dtype=float)
    count = len(trials)
    threshold = min(MAX_THRESHOLD, (nominal_failures / nominal_trials if nominal_trials else 0.0) + goal.margin)
    low, high = confidence_sequence(failures, trials, goal.confidence, count + 1)  # + the unperturbed scene
    p_hat = np.where(trials > 0, failures / np.maximum(trials, 1), np.nan)
    status = np.full(count, UNDECIDED, dtype=object)
    status[low > threshold] = FAILS
    status[high < threshold] = SAFE
    status[trials == 0] = UNTRIED
    if left_out is not None:
        status[np.asarray(left_out, dtype=bool)] = LEFT_OUT
    candidates = [i for i in range(count) if status[i] not in (SAFE, LEFT_OUT)]
    position = np.arange(count) if tiebreak is None else tiebreak
    # Worst first; an untried mode ranks last among candidates.
    ordered = sorted(candidates, key=lambda i: (-(p_hat[i] if trials[i] else -1), -trials[i], position[i]))
    top, rest = ordered[:goal.top_k], ordered[goal.top_k:]
    ceiling = max((high[i] for i in rest), default=0.0)  # the best an outsider could be
    floor = min((low[i] for i in top), default=1.0)  # the worst a member could be
    top_settled = all(status[i] == FAILS for i in top) and floor > ceiling - goal.tolerance
    unordered = tuple((a, b) for a, b in zip(top, top[1:]) if not low[a] > high[b] - goal.tolerance)
    tied = tuple(i for i in rest if status[i] == FAILS and p_hat[i] == p_hat[top[-1]]) if top else ()
    return Assessment(threshold, p_hat, low, high, tuple(status), tuple(top), top_settled, unordered, tuple(rest), tied)
