"""When a searcher's estimates first get the true top-3 right, beside when they stay right (the
"reached" of search_efficiency.py), and what put them wrong in between.

    .venv/bin/python bench/top3_stability.py [--profiles recorded dominant close_top3 graded]
        [--searchers identify lucb uniform] [--repeats 150] [--json out.json]

The same repeats as search_efficiency.py (its seeds, its per-repeat listing of the modes, its
truths, and its test of a top-3, which also says why one is wrong). For each profile and searcher: the median episodes to the first
right top-3 and to the one that stays right; and, for the first searcher, each time a right top-3
went wrong again: why (an order the truth contradicts, a mode from outside the truth's top-3 and
its uncertainty, or one of the true top-2 out) and what the episode just before was (its mode,
failed or not).
"""
import argparse
import collections
import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import search_efficiency as efficiency  # noqa: E402 (a bench script beside this one)

from robofail_ros.core.config import load_search_config  # noqa: E402


def replay(names, history, rates, intervals):
    """(first right, stays right from, [(why, episode's mode, failed)] of each time it went wrong)."""
    top = sorted(rates, key=lambda n: -rates[n])[:3]
    index = {n: i for i, n in enumerate(names)}
    trials, failures = np.zeros(len(names)), np.zeros(len(names))
    first = since = None
    lost = []
    for k, o in enumerate(history, start=1):
        i = index[o.perturbations[0]]
        trials[i] += 1
        failures[i] += not o.success
        wrong = [why for t in efficiency.estimated_top3s(names, trials, failures)
                 if (why := efficiency.top3_wrong(t, top, rates, intervals))]
        if wrong and since:
            lost.append((wrong[0], o.perturbations[0], not o.success))
        since = None if wrong else since or k
        first = first or (None if wrong else k)
    return first, since, lost


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", default=["recorded", "dominant", "close_top3", "graded"],
                        choices=["recorded", *efficiency.SYNTHETIC])
    parser.add_argument("--searchers", nargs="+", default=["identify", "lucb", "uniform"])
    parser.add_argument("--repeats", type=int, default=150)
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--json")
    args = parser.parse_args()
    results = {}
    config = load_search_config()
    recorded, recorded_unperturbed = efficiency.load_ground_truth(efficiency.DEFAULT_TRUTH)
    for profile in args.profiles:
        rates, intervals, evaluator = efficiency.truth_of(profile, recorded)
        unperturbed = recorded_unperturbed if profile == "recorded" else efficiency.UNPERTURBED.get(profile, (0, 0))
        print(f"\n## {profile}\n{'searcher':<10} {'first right':>12} {'stays right':>12}  (median episodes; never: inf)")
        for spec in args.searchers:
            firsts, sinces, losses = [], [], collections.Counter()
            for seed in range(args.repeats):
                names = efficiency.listed(sorted(rates), seed)
                history, _, _ = efficiency.run_one(spec, evaluator, names, args.budget, seed, config, config.goal,
                                                   unperturbed=unperturbed)
                first, since, lost = replay(names, history, rates, intervals)
                firsts.append(first or np.inf)
                sinces.append(since or np.inf)
                losses.update(lost)
            print(f"{spec:<10} {np.median(firsts):>12} {np.median(sinces):>12}")
            results.setdefault(profile, {})[spec] = {
                "first_right_median": efficiency._finite(np.median(firsts)),  # None: never right
                "stays_right_median": efficiency._finite(np.median(sinces)),
                "went_wrong_again": [{"why": why, "episode_before": mode, "failed": failed, "times": count}
                                     for (why, mode, failed), count in losses.most_common()]}
            if spec == args.searchers[0]:
                print(f"  went wrong again {sum(losses.values())} times; why, and the episode just before:")
                for (why, mode, failed), count in losses.most_common():
                    print(f"  {count:>4}  {why}: {mode} {'failed' if failed else 'succeeded'}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"repeats": args.repeats, "budget": args.budget,
                                                       "profiles": results}, indent=1))


if __name__ == "__main__":
    main()
