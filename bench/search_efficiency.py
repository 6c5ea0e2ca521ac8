"""Search efficiency: how many episodes each searcher needs to rank the true top-3 failure modes,
and how far its P(fail) estimates are from the truth at fixed budgets (issues 5 and 8).

    .venv/bin/python bench/search_efficiency.py --ground-truth runs/gt_lift_bc_rnn_low_dim_40 \\
        [--budgets 100 300 1000] [--repeats 10] [--json out.json]

The ground truth is a `robofail evaluate` run (every perturbation tried N times). Searchers are
then run against the *recorded* episodes of that run: when a searcher asks for perturbation a,
it gets one of a's recorded real outcomes, drawn with replacement by the episode's seed. This
replays real robosuite outcomes thousands of times at no simulation cost, so every searcher sees
the same policy, side by side in one run; each repeat uses another run seed.

- episodes to top-3: the first budget from which the searcher's three highest estimates stay,
  to the end of its budget, the true top-3 (ties in the truth, i.e. overlapping 95% intervals,
  may come in either order); "never" if not reached.
- MAE: mean over every perturbation of |estimate - true rate|, estimate = (failures + 0.5) /
  (trials + 1) (so an untried perturbation counts as 0.5: a searcher is charged for what it skipped).
"""
import argparse
import json
import pathlib
import sys
import time

import numpy as np

from robofail_ros.core.analysis import wilson_interval
from robofail_ros.core.config import load_search_config
from robofail_ros.core.episode import EpisodeOutcome
from robofail_ros.core.search import SEARCHERS, SearchContext, make_searcher
from robofail_ros.core.store import RunStore

# Every registered searcher, the uniform baseline first (a new searcher is benchmarked without edits here).
SEARCHER_ORDER = ["uniform"] + sorted(set(SEARCHERS) - {"uniform"})


class RecordedEvaluator:
    """Answers episode requests with recorded real outcomes of the same perturbation."""
    num_workers = 1

    def __init__(self, outcomes_by_name: dict[str, list[bool]]):
        self.outcomes = outcomes_by_name

    def reference_image(self):
        return np.full((84, 84, 3), 128, dtype=np.uint8)  # PPO's observation is constant with one perturbation

    def evaluate(self, requests):
        out = []
        for r in requests:
            recorded = self.outcomes[r.perturbations[0]]
            success = recorded[np.random.default_rng(r.seed).integers(len(recorded))]
            out.append(EpisodeOutcome(r.perturbations, r.seed, success, 0, None, r.episode_id, "recorded"))
        return out


def load_ground_truth(folder) -> dict[str, list[bool]]:
    store = RunStore.open(folder)
    truth: dict[str, list[bool]] = {}
    for o in store.outcomes():
        if len(o.perturbations) == 1 and o.sim_error is None:
            truth.setdefault(o.perturbations[0], []).append(o.success)
    store.close()
    if not truth:
        sys.exit(f"{folder} holds no single-perturbation episodes; make it with `robofail evaluate`")
    return truth


def true_top3(truth):
    rates = {n: 1 - np.mean(s) for n, s in truth.items()}
    intervals = {n: wilson_interval(int(round(rates[n] * len(s))), len(s)) for n, s in truth.items()}
    return sorted(rates, key=lambda n: -rates[n])[:3], rates, intervals


def top3_correct(estimate_top, top, rates, intervals) -> bool:
    """Same three modes, and no pair in an order the truth contradicts significantly."""
    third = rates[top[-1]]
    # Modes tied with the true third (overlapping intervals) may stand in for it.
    tied = {n for n in rates if intervals[n][1] >= intervals[top[-1]][0] and rates[n] <= third}
    if not set(top[:2]) <= set(estimate_top) or not set(estimate_top) <= set(top) | tied:
        return False
    for i in range(3):
        for j in range(i + 1, 3):
            a, b = estimate_top[i], estimate_top[j]
            if intervals[b][0] > intervals[a][1]:  # b truly fails more often than a, beyond doubt
                return False
    return True


def run_one(name, truth, budget, seed, hyperparameters):
    names = sorted(truth)
    searcher = make_searcher(name, names, seed, hyperparameters)
    evaluator = RecordedEvaluator(truth)
    history = []
    ctx = SearchContext(evaluator.evaluate, budget, seed, 1, evaluator.reference_image(), history.extend)
    searcher.search(ctx)
    searcher.close()
    return names, history


def score(names, history, top, rates, intervals, budgets):
    trials = {n: 0 for n in names}
    failures = {n: 0 for n in names}
    correct_since, mae = None, {}
    for k, o in enumerate(history, start=1):
        n = o.perturbations[0]
        trials[n] += 1
        failures[n] += not o.success
        estimate = {m: (failures[m] + 0.5) / (trials[m] + 1) for m in names}
        ranked = sorted(names, key=lambda m: (-estimate[m], -trials[m]))[:3]
        if top3_correct(ranked, top, rates, intervals):
            correct_since = correct_since or k
        else:
            correct_since = None
        if k in budgets:
            mae[k] = float(np.mean([abs(estimate[m] - rates[m]) for m in names]))
    return correct_since, mae


def _finite(x):
    return float(x) if np.isfinite(x) else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ground-truth", required=True, help="a `robofail evaluate` run folder")
    parser.add_argument("--budgets", type=int, nargs="+", default=[100, 300, 1000])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--searchers", nargs="+", default=SEARCHER_ORDER, choices=sorted(SEARCHERS))
    parser.add_argument("--config", default=None, help="searcher hyperparameters (default: config/search.yaml)")
    parser.add_argument("--json")
    args = parser.parse_args()
    truth = load_ground_truth(args.ground_truth)
    top, rates, intervals = true_top3(truth)
    config = load_search_config(args.config) if args.config else load_search_config()
    budget = max(args.budgets)
    episodes = sum(len(v) for v in truth.values())
    print(f"ground truth: {args.ground_truth}, {len(truth)} perturbations, {episodes} real episodes; "
          f"true top-3: " + ", ".join(f"{n} {rates[n]:.2f} [{intervals[n][0]:.2f}, {intervals[n][1]:.2f}]" for n in top))
    rows = []
    for name in args.searchers:
        hits, maes, start = [], {b: [] for b in args.budgets}, time.perf_counter()
        for repeat in range(args.repeats):
            names, history = run_one(name, truth, budget, repeat, config.searchers.get(name))
            since, mae = score(names, history, top, rates, intervals, set(args.budgets))
            hits.append(since)
            for b in args.budgets:
                maes[b].append(mae.get(b, np.nan))
        reached = [h for h in hits if h is not None]
        rows.append({"searcher": name, "reached": len(reached), "repeats": args.repeats,
                     # a repeat that never got there counts as infinitely many episodes
                     "median_episodes_to_top3": _finite(np.median([h or np.inf for h in hits])),
                     "episodes_to_top3": hits, "mae": {b: float(np.nanmean(v)) for b, v in maes.items()},
                     "seconds": round(time.perf_counter() - start, 1)})
    uniform = next((r["median_episodes_to_top3"] for r in rows if r["searcher"] == "uniform"), None)
    print(f"{'searcher':<14} {'top-3 reached':>13} {'median episodes':>16} {'vs uniform':>10} "
          + " ".join(f"{'MAE@' + str(b):>9}" for b in args.budgets) + f" {'seconds':>8}")
    for r in rows:
        med = r["median_episodes_to_top3"]
        ratio = f"{med / uniform:.2f}" if med and uniform else "-"
        r["ratio_to_uniform"] = med / uniform if med and uniform else None
        print(f"{r['searcher']:<14} {r['reached']:>6}/{r['repeats']:<6} {med if med else f'>{budget}':>16} {ratio:>10} "
              + " ".join(f"{r['mae'][b]:>9.3f}" for b in args.budgets) + f" {r['seconds']:>8}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"ground_truth": str(args.ground_truth), "true_top3": top,
                                                       "true_rates": rates, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
