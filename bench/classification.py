"""Classification within a budget: after 240 and 400 episodes, what share of the modes that fail
well above the threshold each searcher has shown to fail (class "fails" by the anytime-valid
bounds, as the table reports it), and how many modes it called failing that do not.

    .venv/bin/python bench/classification.py [--profiles brittle all_certain ...]
        [--searchers uniform identify] [--budgets 240 400] [--repeats 50] [--processes N] [--json out.json]

Profiles (57 modes, a policy that never fails unperturbed: the threshold is the margin, 0.1):
``brittle``, 30 modes fail every episode and 27 never (a top-3 among 30 tied modes, which no budget
settles: the search must still classify them all); ``all_certain``, every mode fails every
episode; ``many_high``, 20 modes at 0.7; and search_efficiency.py's dominant, graded and close_top3.
"Failing" modes are those at least 0.3 above the threshold, which 240 episodes can show: uniform
sampling's 4 episodes a mode show a certain one. Each repeat lists the modes in a seeded order of its own.
"""
import argparse
import dataclasses
import json
import pathlib
import time

import numpy as np
from search_efficiency import SYNTHETIC, RateEvaluator, listed, run_one, worker_pool

from robofail_ros.core.config import load_search_config
from robofail_ros.core.stats import FAILS, assess

PROFILES = {
    "brittle": [1.0] * 30 + [0.0] * 27,
    "all_certain": [1.0] * 57,
    "many_high": [0.7] * 20 + [0.0] * 37,
    **{name: SYNTHETIC[name] for name in ("dominant", "graded", "close_top3")},
}
CLEAR = 0.3  # above the threshold: a mode this far above it counts as one to classify


def classify_once(searcher, rates, budgets, seed, config):
    """{budget: (failing modes classified as such, other modes classified as failing)}."""
    names = listed(sorted(rates), seed)
    history, _, _ = run_one(searcher, RateEvaluator(rates), names, max(budgets), seed, config, config.goal)
    failures, trials = np.zeros(len(names)), np.zeros(len(names))
    index = {name: i for i, name in enumerate(names)}
    failing = np.array([rates[n] >= config.goal.margin + CLEAR for n in names])
    not_failing = np.array([rates[n] <= config.goal.margin for n in names])

    def classified():
        fails = np.array(assess(failures, trials, config.goal).status) == FAILS
        return int((fails & failing).sum()), int((fails & not_failing).sum())

    out = {}
    for k, outcome in enumerate(history, start=1):
        i = index[outcome.perturbations[0]]
        trials[i] += 1
        failures[i] += not outcome.success
        if k in budgets:
            out[k] = classified()
    # a search that stopped before a budget (everything settled) answers there as it stopped
    return out | {budget: classified() for budget in budgets if budget > len(history)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", default=list(PROFILES), choices=list(PROFILES))
    parser.add_argument("--searchers", nargs="+", default=["uniform", "identify"])
    parser.add_argument("--budgets", nargs="+", type=int, default=[240, 400])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--config", default=None, help="search config (default: config/search.yaml)")
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.processes < 1 or args.repeats < 1 or min(args.budgets) < 1:
        parser.error("--processes, --repeats and --budgets must be >= 1")
    config = load_search_config(args.config) if args.config else load_search_config()
    budgets = sorted(set(args.budgets))
    rows = []
    print(f"{'profile':<12} {'searcher':<9} {'episodes':>8} {'failing modes classified':>25} {'wrongly failing':>16}")
    with worker_pool(args.processes) as pool:
        for profile in args.profiles:
            rates = {f"mode_{i:02d}": float(r) for i, r in enumerate(PROFILES[profile])}
            failing = sum(r >= config.goal.margin + CLEAR for r in rates.values())  # every profile has some
            for searcher in args.searchers:
                start = time.perf_counter()
                runs = pool.starmap(classify_once, [(searcher, rates, budgets, seed, config) for seed in range(args.repeats)])
                seconds = round(time.perf_counter() - start, 1)
                for budget in budgets:
                    at = [run[budget] for run in runs]
                    row = {"profile": profile, "searcher": searcher, "episodes": budget, "failing_modes": failing,
                           "classified_share": float(np.mean([a[0] for a in at])) / failing,
                           "wrongly_failing": float(np.mean([a[1] for a in at])), "seconds": seconds}
                    rows.append(row)
                    print(f"{profile:<12} {searcher:<9} {budget:>8} {row['classified_share']:>19.2f} of {failing:<3} "
                          f"{row['wrongly_failing']:>16.2f}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"goal": dataclasses.asdict(config.goal), "repeats": args.repeats,
                                                       "clear_above_threshold": CLEAR, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
