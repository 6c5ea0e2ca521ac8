"""The benchmark suite: every bench/ script, one after another, each printing its table and
writing JSON under --out (what `robofail bench` runs).

    .venv/bin/python bench/run_all.py [--quick] [--out bench/results/NAME]

--quick (about 5 minutes on 2 cores): fewer repeats and episodes; the numbers are noisier but
measured the same way. The full suite (over an hour on 2 cores, ~40 min of it the search-efficiency
bench's 150 repeats) is what BENCHMARKS.md reports.
The search-efficiency bench replays the committed ground truth (bench/data/) unless given another.
"""
import argparse
import datetime
import os
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent


def step(title, argv):
    print(f"\n== {title}\n$ {' '.join(str(a) for a in argv)}", flush=True)
    start = time.monotonic()
    result = subprocess.run([str(a) for a in argv])
    print(f"({time.monotonic() - start:.0f} s)", flush=True)
    return result.returncode


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", help="folder for the JSON results (default: bench/results/<time>)")
    parser.add_argument("--ground-truth", help="a ground-truth CSV or `robofail evaluate` run for the search-efficiency "
                                               "bench (default: the committed bench/data CSV)")
    args = parser.parse_args()
    out = pathlib.Path(args.out or HERE / "results" / datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    out.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    quick = args.quick
    failed = 0
    failed += step("perturbation cost and rendering", [py, HERE / "perturbation_cost.py", "--repeats", 3 if quick else 7,
                                                       "--json", out / "perturbation_cost.json"])
    failed += step("episode throughput: raw vs in-process vs ROS", [py, HERE / "episode_throughput.py", "--episodes",
                                                                     2 if quick else 6, "--json", out / "episode_throughput.json"])
    truth = args.ground_truth or HERE / "data" / "ground_truth_lift_bc_rnn_low_dim.csv"
    failed += step("search efficiency", [py, HERE / "search_efficiency.py", "--ground-truth", truth,
                                         "--repeats", 3 if quick else 150, "--coverage-runs", 50 if quick else 500,
                                         "--processes", os.cpu_count() or 1,  # seeded repeats: same numbers, sooner
                                         "--json", out / "search_efficiency.json"])
    failed += step("top-3 first right vs right from then on", [py, HERE / "top3_stability.py", "--repeats",
                                                                3 if quick else 150, "--json", out / "top3_stability.json"])
    failed += step("breadth of long searches", [py, HERE / "search_breadth.py", "--repeats", 5 if quick else 150,
                                                "--processes", os.cpu_count() or 1, "--json", out / "search_breadth.json"])
    failed += step("classification within a budget", [py, HERE / "classification.py", "--repeats", 5 if quick else 50,
                                                      "--processes", os.cpu_count() or 1, "--json", out / "classification.json"])
    failed += step("random failure profiles", [py, HERE / "random_profiles.py", "--draws", 10 if quick else 150,
                                               "--repeats", 3 if quick else 30, "--processes", os.cpu_count() or 1,
                                               "--json", out / "random_profiles.json"])
    failed += step("scaling and memory", [py, HERE / "scaling.py", "--workers", 1, 2, "--episodes", 12 if quick else 40,
                                          "--json", out / "scaling.json"])
    failed += step("worker processes", [py, HERE / "pool_scaling.py", "--workers", 1, 2, "--episodes", 12 if quick else 40,
                                        "--json", out / "pool_scaling.json"])
    failed += step("what the cores allow: independent copies", [py, HERE / "cpu_ceiling.py", "--copies", 1, 2,
                                                                "--steps", 500 if quick else 3000,
                                                                "--json", out / "cpu_ceiling.json"])
    failed += step("where a control step goes", [py, HERE / "step_profile.py", "--steps", 100 if quick else 300,
                                                 "--json", out / "step_profile.json"])
    # Quick: the low-dim models only (the image one runs ~100 ms a step on a CPU: 6 of a quick run's minutes).
    failed += step("the paper's comparison of the bundled Lift models", [py, HERE / "lift_comparison.py", *(
        ["--budget", 40, "--models", "lift_bc_rnn_low_dim", "lift_bc_low_dim"] if quick else []),
        "--json", out / "lift_comparison.json"])
    print(f"\nresults in {out}" + (f"; {failed} benchmark(s) failed" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
