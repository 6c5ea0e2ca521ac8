"""Scaling of the core's asynchronous worker processes: episodes/s and control steps/s with
1, 2, 4, ... workers on one mixed workload, and the peak memory of a worker.

    python bench/pool_scaling.py [--workers 1 2 4 8 16] [--episodes 96] [--policy lift_bc_low_dim]
        [--device cpu|cuda] [--json out.json]

Every setting runs the same episodes (a uniform mix over the Lift catalog, episode i takes
perturbation i mod K and the seed of episode i) through workers.Evaluator over a
ProcessTransport; the clock starts when every worker has announced itself (start-up excluded).
Mixed on purpose: failing episodes run the full horizon, successes ~45 steps, so a batch
barrier would leave workers idle. Peak RSS is each worker process's VmHWM; private MB what it
alone maps at the end (scaling.private_mb: with 2+ workers, what one more adds).
Goals (issue 15, 16-core machine): >= 6.5x at 8 workers and >= 11x at 16 over 1 worker; image
policy >= 60 control steps/s per worker on the GPU and >= 5x total at 8 workers; <= 1.5 GB per
worker. On 2 cores: 2 workers >= 1.7x one.
"""
import argparse
import json
import os
import pathlib
import time

from scaling import peak_rss_mb, private_mb  # bench/ is this script's folder


def measure(spec, workers, episodes, names):
    from robofail_ros.core.search import EpisodeRequest, episode_seed
    from robofail_ros.core.workers import Evaluator, ProcessTransport

    transport = ProcessTransport(spec, workers)
    evaluator = Evaluator(transport, workers)
    try:
        if not evaluator.scheduler.wait_for_workers(workers, timeout=600):
            raise SystemExit(f"only some of {workers} workers started within 600 s")
        warm = [EpisodeRequest(10_000 + i, (), episode_seed(1, 10_000 + i)) for i in range(workers)]
        evaluator.evaluate(warm)  # first episodes pay one-off costs (model compile, CUDA init)
        requests = [EpisodeRequest(i, (names[i % len(names)],), episode_seed(0, i)) for i in range(episodes)]
        start = time.perf_counter()
        outcomes = evaluator.evaluate(requests)
        seconds = time.perf_counter() - start
        rss = [peak_rss_mb(p.pid) for p, _ in transport._processes.values()]
        private = [private_mb(p.pid) for p, _ in transport._processes.values()]
    finally:
        evaluator.close()
    steps = sum(o.steps for o in outcomes)
    return {"workers": workers, "episodes": episodes, "seconds": round(seconds, 2),
            "episodes_per_s": round(episodes / seconds, 3), "steps_per_s": round(steps / seconds, 1),
            "steps_per_s_per_worker": round(steps / seconds / workers, 1),
            "failures": sum(not o.success for o in outcomes), "sim_errors": sum(bool(o.sim_error) for o in outcomes),
            "peak_rss_mb_max": round(max(r for r in rss if r), 0) if any(rss) else None,
            "private_mb_max": round(max(r for r in private if r), 0) if any(private) else None}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--episodes", type=int, default=48)
    parser.add_argument("--policy", default="lift_bc_low_dim")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--perturbations", nargs="*", help="default: the whole Lift catalog")
    parser.add_argument("--json")
    args = parser.parse_args()
    from robofail_ros.core.perturbations import DEFAULT_CATALOG, Catalog
    from robofail_ros.core.workers import WorkerSpec
    names = args.perturbations or Catalog.load(DEFAULT_CATALOG).for_task("Lift").names
    spec = WorkerSpec(task="Lift", policy=args.policy, catalog=str(DEFAULT_CATALOG), device=args.device)
    print(f"policy {args.policy} on {args.device}, MUJOCO_GL={os.environ.get('MUJOCO_GL', 'auto')}, "
          f"{os.cpu_count()} CPUs, {len(names)} perturbations, {args.episodes} episodes per setting", flush=True)
    rows = []
    for workers in args.workers:
        row = measure(spec, workers, args.episodes, names)
        row["speedup"] = round(row["episodes_per_s"] / rows[0]["episodes_per_s"], 2) if rows else 1.0
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"{'workers':>7} {'episodes/s':>10} {'speed-up':>8} {'steps/s':>8} {'steps/s/worker':>14} {'peak RSS MB':>11} {'private MB':>10}")
    for r in rows:
        print(f"{r['workers']:>7} {r['episodes_per_s']:>10} {r['speedup']:>7}x {r['steps_per_s']:>8} "
              f"{r['steps_per_s_per_worker']:>14} {r['peak_rss_mb_max']:>11} {r['private_mb_max']:>10}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"policy": args.policy, "device": args.device,
                                                       "cpus": os.cpu_count(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
