"""Failure-mode analysis: the paper's pi(a|o) and the calibrated empirical failure rates.

- ``pi``: the searcher's distribution over perturbations (for PPO, the softmax of its policy
  logits, Eq. 5-8 of the paper). A search preference, not a failure probability: a policy
  that never fails still gets a near-uniform pi.
- ``p_fail``: failures / trials under each perturbation, with a 95% Wilson score interval.
  Simulator errors are counted apart and are neither trials' successes nor failures.
- ``severity``: (p_fail - p_fail_nominal) / (1 - p_fail_nominal), clipped at 0: the share of
  the policy's unperturbed successes that the perturbation turns into failures.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Iterable, Sequence

import numpy as np

NOMINAL = "none"  # the name under which unperturbed episodes are reported


@dataclasses.dataclass(frozen=True)
class FailureMode:
    name: str
    label: str
    factor: str
    trials: int  # episodes with a policy outcome (simulator errors excluded)
    failures: int
    sim_errors: int
    p_fail: float  # nan when there are no trials
    ci_low: float
    ci_high: float
    pi: float | None  # the searcher's preference, when it has one
    severity: float


def wilson_bounds(failures, trials, confidence: float = 0.95):
    """Wilson score interval of failures/trials, elementwise over arrays (the closed form of
    scipy's ``binomtest(...).proportion_ci(method="wilson")``); (0, 1) where trials is 0."""
    from scipy.stats import norm
    failures, trials = np.asarray(failures, dtype=float), np.asarray(trials, dtype=float)
    z2 = norm.ppf(0.5 + confidence / 2) ** 2
    n = np.maximum(trials, 1)
    p = failures / n
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = np.sqrt(z2 * (p * (1 - p) / n + z2 / (4 * n * n))) / (1 + z2 / n)
    tried = trials > 0
    return np.where(tried, np.clip(centre - half, 0, 1), 0.0), np.where(tried, np.clip(centre + half, 0, 1), 1.0)


def wilson_interval(failures: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    low, high = wilson_bounds(failures, trials, confidence)
    return float(low), float(high)


def entropy(p: Sequence[float]) -> float:
    """Shannon entropy in nats of a distribution (normalised first; zeros ignored)."""
    p = np.asarray(p, dtype=float)
    if p.sum() <= 0:
        return 0.0
    p = p / p.sum()
    nz = p[p > 0]
    return max(0.0, float(-(nz * np.log(nz)).sum()))  # max: no "-0.000" for a one-mode distribution


def failure_modes(outcomes: Iterable, catalog, pi: dict | None = None) -> list[FailureMode]:
    """Per-perturbation statistics, ranked: highest failure rate first (ties: more trials first).

    Episodes with several perturbations count towards each of them; unperturbed episodes are
    reported as ``none``.
    """
    counts: dict[str, list[int]] = {}
    for o in outcomes:
        for name in (o.perturbations or (NOMINAL,)):
            c = counts.setdefault(name, [0, 0, 0])
            if o.sim_error:
                c[2] += 1
            else:
                c[0] += 1
                c[1] += not o.success
    nominal = counts.get(NOMINAL, [0, 0, 0])
    p_nominal = nominal[1] / nominal[0] if nominal[0] else 0.0
    names = ([NOMINAL] if NOMINAL in counts else []) + [p.name for p in catalog]
    modes = []
    for name in names:
        trials, failures, sim_errors = counts.get(name, [0, 0, 0])
        p = failures / trials if trials else math.nan
        low, high = wilson_interval(failures, trials)
        severity = (max(0.0, (p - p_nominal) / (1 - p_nominal)) if trials and p_nominal < 1 else 0.0)
        entry = catalog[name] if name != NOMINAL else None
        modes.append(FailureMode(name, entry.label if entry else "No perturbation", entry.factor_name if entry else NOMINAL,
                                 trials, failures, sim_errors, p, low, high,
                                 None if pi is None or entry is None else float(pi.get(name, 0.0)), severity))
    return sorted(modes, key=lambda m: (-(m.p_fail if m.trials else -1), -m.trials, m.name))


def summary(modes: list[FailureMode], outcomes: Sequence) -> dict:
    """Entropies of a ranked failure-mode list, and the counts of the episodes behind it."""
    perturbed = [m for m in modes if m.name != NOMINAL]
    pi = [m.pi for m in perturbed if m.pi is not None]
    rates = [m.p_fail for m in perturbed if m.trials]
    return {
        "pi_entropy": entropy(pi) if pi else None,
        "p_fail_entropy": entropy(rates) if rates else None,
        "episodes": len(outcomes),
        "failures": sum(o.failure for o in outcomes),
        "sim_errors": sum(bool(o.sim_error) for o in outcomes),
    }


def format_table(result: dict) -> str:
    """The failure-mode table of a run result, as printed at the end of a search."""
    lines = [f"{'failure mode':<20} {'factor':<18} {'pi':>6} {'P(fail)':>8} {'95% CI':>15} {'trials':>7} "
             f"{'fails':>6} {'sim err':>7} {'severity':>8}"]
    for m in result["modes"]:
        pi = "" if m["pi"] is None else f"{m['pi']:.3f}"
        p = "   -" if not m["trials"] else f"{m['p_fail']:.3f}"
        ci = f"[{m['ci_low']:.2f}, {m['ci_high']:.2f}]"
        lines.append(f"{m['name']:<20} {m['factor']:<18} {pi:>6} {p:>8} {ci:>15} "
                     f"{m['trials']:>7} {m['failures']:>6} {m['sim_errors']:>7} {m['severity']:>8.2f}")
    pe = result.get("pi_entropy")
    lines.append(f"{result['episodes']} episodes, {result['failures']} policy failures, {result['sim_errors']} simulator "
                 f"errors; entropy of pi: {'-' if pe is None else f'{pe:.3f}'} nats; run folder: {result['run']}")
    if result.get("report"):
        lines.append(f"report: {result['report']}")
    return "\n".join(lines)
