"""Breadth of long searches: after 500, 1000, 2000 episodes, how many episodes the never-failing
modes have had, and in how many repeats every mode with P(fail) >= 0.2 has failed at least once
(been found). A searcher that keeps ranking two close top modes must not leave a failing mode
that has not failed yet at its first few episodes for good.

    .venv/bin/python bench/search_breadth.py [--profiles lifelike graded dominant close_top3]
        [--searchers uniform identify] [--budget 2000] [--repeats 150] [--processes N] [--json out.json]

Profiles (57 modes each): ``lifelike`` is the real Lift scene as a 16-worker, 2000-episode
identify run measured it on the GPU machine (BENCHMARKS.md 4: small_table 0.95 and shaky_arm
0.86 on top, which takes the ranking thousands of episodes to order; large_table 0.65,
object_left 0.48, robot_start_noise 0.40, huge_cube 0.23, the rest never fail); the others are
search_efficiency.py's synthetic profiles. Each repeat lists the modes in a seeded order of its own.
"""
import argparse
import dataclasses
import json
import pathlib
import time

import numpy as np
from search_efficiency import SYNTHETIC, RateEvaluator, listed, run_one, worker_pool

from robofail_ros.core.config import load_search_config

PROFILES = {
    "lifelike": [0.95, 0.86, 0.65, 0.48, 0.40, 0.23] + [0.0] * 51,
    **{name: SYNTHETIC[name] for name in ("graded", "dominant", "close_top3")},
}
FOUND = 0.2  # a mode at least this likely to fail must have failed once


def breadth_once(searcher, rates, marks, seed, config):
    """{mark: (fewest episodes of a never-failing mode, their mean, every P >= FOUND mode found)}."""
    names = listed(sorted(rates), seed)
    history, _, _ = run_one(searcher, RateEvaluator(rates), names, max(marks), seed, config, config.goal)
    trials, failures = dict.fromkeys(names, 0), dict.fromkeys(names, 0)
    never = [n for n in names if rates[n] == 0]
    likely = [n for n in names if rates[n] >= FOUND]
    out = {}
    for k, outcome in enumerate(history, start=1):
        name = outcome.perturbations[0]
        trials[name] += 1
        failures[name] += not outcome.success
        if k in marks:
            out[k] = (min(trials[n] for n in never), float(np.mean([trials[n] for n in never])),
                      all(failures[n] for n in likely))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", default=list(PROFILES), choices=list(PROFILES))
    parser.add_argument("--searchers", nargs="+", default=["uniform", "identify"])
    parser.add_argument("--budget", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=150, help="at 50 the found shares scatter by ~0.07 between seed sets")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--config", default=None, help="search config (default: config/search.yaml)")
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.processes < 1 or args.repeats < 1 or args.budget < 500:
        parser.error("--processes and --repeats must be >= 1, --budget >= 500")
    config = load_search_config(args.config) if args.config else load_search_config()
    marks = [m for m in (500, 1000, 2000, 4000) if m < args.budget] + [args.budget]
    rows = []
    print(f"{'profile':<11} {'searcher':<9} {'episodes':>8} {'never-failing: fewest':>22} {'mean':>6} "
          f"{f'all P>={FOUND} found':>17}")
    with worker_pool(args.processes) as pool:
        for profile in args.profiles:
            rates = {f"mode_{i:02d}": float(r) for i, r in enumerate(PROFILES[profile])}
            for searcher in args.searchers:
                start = time.perf_counter()
                runs = pool.starmap(breadth_once, [(searcher, rates, marks, seed, config) for seed in range(args.repeats)])
                seconds = round(time.perf_counter() - start, 1)
                for mark in marks:
                    at = [run[mark] for run in runs if mark in run]  # a run that stopped early has no later marks
                    row = {"profile": profile, "searcher": searcher, "episodes": mark, "runs": len(at),
                           "never_failing_fewest": float(np.mean([a[0] for a in at])) if at else None,
                           "never_failing_mean": float(np.mean([a[1] for a in at])) if at else None,
                           "all_found": float(np.mean([a[2] for a in at])) if at else None,
                           "seconds": seconds}
                    rows.append(row)
                    if at:
                        print(f"{profile:<11} {searcher:<9} {mark:>8} {row['never_failing_fewest']:>22.1f} "
                              f"{row['never_failing_mean']:>6.1f} {row['all_found']:>17.2f}"
                              + (f"  ({len(at)} of {args.repeats} runs got this far)" if len(at) < args.repeats else ""))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"goal": dataclasses.asdict(config.goal), "repeats": args.repeats,
                                                       "found_at": FOUND, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
