"""The paper's comparison on Lift with the bundled models, timed (issue 16's target: <= 30 minutes
on the 2-core machine at the default budget).

    .venv/bin/python bench/lift_comparison.py [--budget 240] [--models NAME ...] [--json out.json]

Runs `robofail compare`'s core (one search per bundled Lift model with config/search.yaml as
it is, then one report) in a scratch folder and prints each model's wall time, its search time
as the run store records it, and the total against the target.
"""
import argparse
import json
import pathlib
import sys
import tempfile
import time

TARGET_S = 30 * 60


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, help="default: config/search.yaml's")
    parser.add_argument("--models", nargs="+", help="bundled Lift models to compare (default: every one; "
                        "the target is for every one)")
    parser.add_argument("--json")
    args = parser.parse_args()
    from robofail_ros.core.config import load_search_config
    from robofail_ros.core.errors import UnknownNameError, lookup
    from robofail_ros.core.policies.bundled import bundled_policies
    from robofail_ros.core.report import write_report
    from robofail_ros.core.run import run_search
    lift = {p.name: p for p in bundled_policies() if p.task == "Lift"}
    try:
        models = [lookup(lift, "bundled Lift model", name).name for name in args.models or lift]
    except UnknownNameError as exc:
        parser.error(str(exc))
    rows, start = [], time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        folders = []
        for name in models:
            config = load_search_config().replace(policy=name, budget=args.budget, report=False)
            t = time.monotonic()
            result = run_search(config, pathlib.Path(tmp) / name)
            rows.append({"model": name, "searcher": config.searcher, "episodes": result.episodes,
                         "wall_s": round(time.monotonic() - t, 1), "search_s": result.search_seconds,
                         "stop_reason": result.stop_reason})
            folders.append(pathlib.Path(tmp) / name)
            print(f"{name:28s} {result.episodes:4d} episodes  {rows[-1]['wall_s']:7.1f} s", flush=True)
        t = time.monotonic()
        write_report(folders, pathlib.Path(tmp) / "report")
        report_s = round(time.monotonic() - t, 1)
    total = round(time.monotonic() - start, 1)
    verdict = ("met" if total <= TARGET_S else "MISSED") if set(models) == set(lift) else \
        f"not judged: {len(models)} of the {len(lift)} bundled Lift models"
    print(f"report {report_s} s; total {total / 60:.1f} min for {len(models)} model{'s' * (len(models) != 1)} "
          f"(target <= {TARGET_S / 60:.0f} min: {verdict})")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"models": rows, "report_s": report_s, "total_s": total,
                                                       "target_s": TARGET_S}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
