"""What the machine's cores give when nothing is shared: N independent copies of
bench/step_profile.py (one policy and one scene each, no worker pool, no IPC, no resets that
rebuild a model) run at once, and their control steps/s summed.

    python bench/cpu_ceiling.py [--copies 1 8 16] [--policy lift_bc_low_dim] [--steps 3000] [--json out.json]

The ratio of N copies' total to one copy's is the most any N workers can reach on this machine
for this workload (turbo clocks, shared caches and memory bandwidth included): bench/pool_scaling.py's
speed-ups are read against it. Each copy loads for some seconds before it steps; with 3,000 steps
(about half a minute) the copies' stepping overlaps almost entirely.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile


def run_copies(copies: int, policy: str, steps: int, folder: pathlib.Path) -> list[float]:
    script = pathlib.Path(__file__).with_name("step_profile.py")
    outputs = [folder / f"copies{copies}_{i}.json" for i in range(copies)]
    procs = [subprocess.Popen([sys.executable, str(script), "--policy", policy, "--steps", str(steps), "--json", str(out)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for out in outputs]
    if any(proc.wait() != 0 for proc in procs):
        raise SystemExit(f"a copy of {script.name} failed; run it alone to see why")
    return [json.loads(out.read_text())["control_steps_per_s"] for out in outputs]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--policy", default="lift_bc_low_dim")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--json")
    args = parser.parse_args()
    folder = pathlib.Path(tempfile.mkdtemp(prefix="robofail_ceiling_"))
    rows = []
    for copies in args.copies:
        rates = run_copies(copies, args.policy, args.steps, folder)
        rows.append({"copies": copies, "steps_per_s_per_copy": sum(rates) / copies, "steps_per_s_total": sum(rates)})
    base = rows[0]["steps_per_s_total"] / rows[0]["copies"]
    print(f"{os.cpu_count()} CPUs; policy {args.policy}; {args.steps} control steps per copy")
    print(f"{'copies':>6} {'steps/s per copy':>17} {'total':>8} {'ceiling':>8}")
    for row in rows:
        row["ceiling"] = row["steps_per_s_total"] / base
        print(f"{row['copies']:>6} {row['steps_per_s_per_copy']:>17.1f} {row['steps_per_s_total']:>8.0f} {row['ceiling']:>7.2f}x")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"cpus": os.cpu_count(), "policy": args.policy, "steps": args.steps,
                                                       "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
