"""Scaling and memory of the ROS system: episodes/s with 1, 2, ... worker pairs, and the peak
RSS of each node kind (issue 8).

    .venv/bin/python bench/scaling.py [--workers 1 2] [--episodes 40] [--policy lift_bc_rnn_low_dim] [--json out.json]

Each setting runs `robofail ros-run` (real node processes over DDS) on the same uniform search
over a fixed perturbation list, and reads the search time the run store records (start-up of
the nodes excluded). Peak RSS (VmHWM) and private memory (see private_mb) of every node process
are read before it is stopped.
Goals: >= 6.5x episodes/s at 8 workers (on a 16-core machine); <= 1.5 GB per worker pair.
"""
import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time

PERTURBATIONS = "[red_table, heavy_cube, dim_light, camera_left]"  # the policy mostly succeeds: steady episode lengths


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def private_mb(pid: int) -> float | None:
    """Memory only this process maps now (smaps_rollup Private_Clean + Private_Dirty). With two or
    more workers that is what one more adds: the rest of its RSS is library pages they share (with
    one worker those pages are its own and count here too)."""
    try:
        fields = dict(line.split(":", 1) for line in pathlib.Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:])
    except OSError:
        return None
    return sum(int(fields[k].split()[0]) for k in ("Private_Clean", "Private_Dirty")) / 1024


def node_processes(root: int) -> dict[int, str]:
    """Descendant node processes of ``root``: pid -> node kind."""
    out = subprocess.run(["ps", "-eo", "pid,ppid,args"], capture_output=True, text=True).stdout.splitlines()[1:]
    children: dict[int, list] = {}
    args = {}
    for line in out:
        pid, ppid, cmd = line.strip().split(None, 2)
        children.setdefault(int(ppid), []).append(int(pid))
        args[int(pid)] = cmd
    found, stack = {}, [root]
    while stack:
        pid = stack.pop()
        for child in children.get(pid, []):
            stack.append(child)
            for kind in ("search_node", "sim_node", "policy_node"):
                if f"robofail_ros.nodes.{kind}" in args[child]:
                    found[child] = kind
    return found


def run(workers: int, episodes: int, policy: str, folder: pathlib.Path) -> dict:
    params = folder / f"w{workers}.yaml"
    params.write_text(f"/**:\n  ros__parameters:\n    policy: {policy}\n    searcher: uniform\n    budget: {episodes}\n"
                      f"    nominal_episodes: 0\n    num_workers: {workers}\n    report: false\n"
                      f"    perturbations: {PERTURBATIONS}\n    output_dir: {folder}\n")
    out = folder / f"run_w{workers}"
    env = dict(os.environ, ROS_DOMAIN_ID=str(os.getpid() % 100 + 100 + workers), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    proc = subprocess.Popen([sys.executable, "-m", "robofail_ros.cli", "ros-run", "--params-file", str(params),
                             "--out", str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 3600
        while not (out / "summary.json").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ros-run with {workers} workers stopped before finishing; run it by hand to see why")
            time.sleep(0.5)
        rss: dict[str, list] = {}
        private: dict[str, list] = {}
        for pid, kind in node_processes(proc.pid).items():
            value, own = peak_rss_mb(pid), private_mb(pid)
            if value is not None and own is not None:
                rss.setdefault(kind, []).append(value)
                private.setdefault(kind, []).append(own)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
    summary = json.loads((out / "summary.json").read_text())
    return {"workers": workers, "episodes": summary["episodes"], "search_seconds": summary["search_seconds"],
            "episodes_per_s": summary["episodes"] / summary["search_seconds"],
            "peak_rss_mb": {k: round(max(v)) for k, v in rss.items()},
            "private_mb": {k: round(max(v)) for k, v in private.items()}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--policy", default="lift_bc_rnn_low_dim")
    parser.add_argument("--json")
    args = parser.parse_args()
    folder = pathlib.Path(tempfile.mkdtemp(prefix="robofail_scaling_"))
    rows = [run(w, args.episodes, args.policy, folder) for w in args.workers]
    base = rows[0]["episodes_per_s"] / rows[0]["workers"]
    print(f"{os.cpu_count()} CPUs; policy {args.policy}; {args.episodes} episodes per setting")
    print("memory per node: peak RSS MB (private MB at the end)")
    print(f"{'workers':>7} {'episodes/s':>11} {'speed-up':>9} {'sim_node':>13} {'policy_node':>13} {'search_node':>13}")
    for r in rows:
        r["speedup"] = r["episodes_per_s"] / base
        mb = {k: f"{v} ({r['private_mb'][k]})" for k, v in r["peak_rss_mb"].items()}
        print(f"{r['workers']:>7} {r['episodes_per_s']:>11.2f} {r['speedup']:>8.2f}x {mb.get('sim_node', '-'):>13} "
              f"{mb.get('policy_node', '-'):>13} {mb.get('search_node', '-'):>13}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"cpus": os.cpu_count(), "policy": args.policy, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
