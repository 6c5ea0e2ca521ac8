"""Random failure profiles: how often each searcher reaches the true top-3 on policies it was never
tuned on, drawn at random, not chosen.

    .venv/bin/python bench/random_profiles.py [--draws 150] [--repeats 30] [--searchers uniform identify lucb]
        [--processes N] [--json out.json]

The efficiency bench's profiles are few and hand-made; a rule that suits them may fail a shape
none of them has. Each draw (seeded by its number) picks a catalog size (6, 12, 25, 57 or 80
modes), an unperturbed failure rate (0, 0.05, 0.15 or 0.3; the searchers are told it as 20
unperturbed episodes) and a shape:
- ``sparse``: 3-7 modes at 0.2-1.0, the rest at or below the unperturbed rate;
- ``spread``: every mode drawn from Beta(0.5, 2) (most low, a long tail up to 1);
- ``many_mid``: 3-5 modes at 0.6-1.0, the rest at 0.1-0.5;
- ``certain_ties``: 1-3 modes that always fail, four at 0.3-0.9, the rest never.
No mode fails less often than half the unperturbed rate. Only draws with a clear top-3 are run:
the third mode at least 0.1 above the fourth and above the threshold of "fails" (the unperturbed
rate + the margin) by 0.1. Each is run ``--repeats`` times per searcher, scored as in
search_efficiency.py (reached: the three highest estimates stay the true top-3 from some budget
<= 1000 on; modes within 0.03 of the truth's may swap).
"""
import argparse
import dataclasses
import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import search_efficiency as efficiency  # noqa: E402 (a bench script beside this one)

from robofail_ros.core.config import load_search_config  # noqa: E402

SIZES = (6, 12, 25, 57, 80)
UNPERTURBED_RATES = (0.0, 0.05, 0.15, 0.3)
SHAPES = ("sparse", "spread", "many_mid", "certain_ties")
UNPERTURBED_EPISODES = 20


def draw_profile(number: int) -> tuple[str, dict[str, float], float]:
    """(shape, true rates by mode, unperturbed rate) of draw ``number``."""
    rng = np.random.default_rng([number, 77])
    size, base, shape = int(rng.choice(SIZES)), float(rng.choice(UNPERTURBED_RATES)), str(rng.choice(SHAPES))
    if shape == "sparse":
        top = rng.uniform(0.2, 1.0, rng.integers(3, 8))
        rates = np.concatenate([top, np.full(size, base * rng.uniform())])
    elif shape == "spread":
        rates = rng.beta(0.5, 2.0, size)
    elif shape == "many_mid":
        top = rng.uniform(0.6, 1.0, rng.integers(3, 6))
        rates = np.concatenate([top, rng.uniform(0.1, 0.5, size)])
    else:
        rates = np.concatenate([np.ones(rng.integers(1, 4)), rng.uniform(0.3, 0.9, 4), np.zeros(size)])
    rates = np.maximum(rates[:size], base / 2)
    return shape, {f"mode_{i:02d}": float(r) for i, r in enumerate(rates)}, base


def clear_top3(rates: dict[str, float], base: float, margin: float) -> bool:
    ordered = sorted(rates.values(), reverse=True)
    return len(ordered) > 3 and ordered[2] - ordered[3] >= 0.1 and ordered[2] >= base + margin + 0.1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=150, help="profiles drawn (those without a clear top-3 are skipped)")
    parser.add_argument("--repeats", type=int, default=30, help="runs per searcher and profile")
    parser.add_argument("--searchers", nargs="+", default=["uniform", "identify", "lucb"])
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--config", default=None, help="search config (default: config/search.yaml)")
    parser.add_argument("--json")
    args = parser.parse_args()
    for name in ("draws", "repeats", "processes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    config = load_search_config(args.config) if args.config else load_search_config()
    rows = []
    with efficiency.worker_pool(args.processes) as pool:
        for number in range(args.draws):
            shape, rates, base = draw_profile(number)
            if not clear_top3(rates, base, config.goal.margin):
                continue
            names, evaluator = sorted(rates), efficiency.RateEvaluator(rates)
            intervals = efficiency.synthetic_intervals(rates)
            unperturbed = (int(round(base * UNPERTURBED_EPISODES)), UNPERTURBED_EPISODES) if base else (0, 0)
            row = {"draw": number, "shape": shape, "modes": len(rates), "unperturbed_rate": base,
                   "top_6": sorted(rates.values(), reverse=True)[:6], "searchers": {}}
            for name in args.searchers:
                results = pool.starmap(efficiency.repeat_once, [(name, evaluator, names, rates, intervals, [240, 1000],
                                                                 seed, config, unperturbed) for seed in range(args.repeats)])
                hits = [since for since, *_ in results]
                row["searchers"][name] = {"reached": sum(h is not None for h in hits),
                                          "median_episodes_to_top3": efficiency._finite(np.median([h or np.inf for h in hits]))}
            print(f"draw {number:3d} {shape:<12} {len(rates):2d} modes, unperturbed {base:.2f}, top "
                  + " ".join(f"{r:.2f}" for r in row["top_6"][:4]) + " | "
                  + " | ".join(f"{n} {s['reached']}/{args.repeats} {s['median_episodes_to_top3'] or '>1000'}"
                               for n, s in row["searchers"].items()), flush=True)
            rows.append(row)
    print(f"\n{len(rows)} of {args.draws} draws have a clear top-3; {args.repeats} repeats each")
    print(f"{'searcher':<10} {'mean reached':>12} {'draws >= 95%':>13} " + " ".join(f"{f'{m} modes':>9}" for m in SIZES))
    for name in args.searchers:
        reached = np.array([r["searchers"][name]["reached"] / args.repeats for r in rows])
        sizes = np.array([r["modes"] for r in rows])
        by_size = " ".join(f"{reached[sizes == m].mean():>9.3f}" if (sizes == m).any() else f"{'-':>9}" for m in SIZES)
        print(f"{name:<10} {reached.mean():>12.3f} {int((reached >= 0.95).sum()):>6}/{len(rows):<6} {by_size}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"draws": args.draws, "repeats": args.repeats,
                                                       "goal": dataclasses.asdict(config.goal), "profiles": rows}, indent=2))


if __name__ == "__main__":
    main()
