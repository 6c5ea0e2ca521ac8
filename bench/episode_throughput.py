"""Episode throughput: control steps/s of raw robosuite env.step, of our in-process episode loop,
and of the ROS lock-step loop (sim_node <-> policy_node over DDS), side by side in one run
(issues 6 and 8). The same episodes (policy, seeds) run in each.

    .venv/bin/python bench/episode_throughput.py [--policies lift_bc_rnn_low_dim lift_bc_rnn_image_proprio]
        [--episodes 4] [--json out.json]

- raw: the actions our loop produced, replayed through robosuite's env.step alone (with the
  same cameras rendered): the simulator's limit; raw+policy adds the policy's own inference
  time (measured inside the loop), the limit for any loop that runs this policy;
- in-process: robofail_ros.core.episode.run_episode (scene + policy + perturbation hooks);
- ROS: real sim_node and policy_node processes of one worker; this script publishes the
  perturbation requests and times each episode until its EpisodeResult arrives.
Goals: in-process >= 0.95x raw; ROS >= 0.8x in-process.
"""
import argparse
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from robofail_ros.core.episode import run_episode
from robofail_ros.core.policies import load_policy
from robofail_ros.core.scenes import Scene

SEEDS_FROM = 100  # evaluation seeds the bundled policies were not trained on


def in_process(policy_spec, episodes):
    policy = load_policy(policy_spec)
    scene = Scene("Lift", cameras=policy.cameras)
    actions, steps, policy_seconds, start = [], 0, [0.0], time.perf_counter()
    act = policy.act

    def recording_act(obs):
        t = time.perf_counter()
        action = act(obs)
        policy_seconds[0] += time.perf_counter() - t
        actions[-1].append(action)
        return action
    policy.act = recording_act
    for i in range(episodes):
        actions.append([])
        steps += run_episode(scene, policy, (), SEEDS_FROM + i).steps
    seconds = time.perf_counter() - start
    # Raw: the same actions through env.step alone, after the same resets (not timed).
    raw_seconds = 0.0
    for i, episode in enumerate(actions):
        scene.reset((), seed=SEEDS_FROM + i)
        start = time.perf_counter()
        for action in episode:
            scene.env.step(action)
        raw_seconds += time.perf_counter() - start
    scene.close()
    return {"steps": steps, "in_process_steps_per_s": steps / seconds, "raw_steps_per_s": steps / raw_seconds,
            "raw_plus_policy_steps_per_s": steps / (raw_seconds + policy_seconds[0])}


def over_ros(policy_spec, episodes):
    import rclpy
    from std_msgs.msg import String
    from robofail_ros.msg import EpisodeResult, Perturbation
    from robofail_ros.nodes.common import READY_TOPIC, RESULTS_TOPIC

    params = pathlib.Path(tempfile.mkdtemp()) / "bench.yaml"
    params.write_text(f"/**:\n  ros__parameters:\n    policy: {policy_spec}\n    report: false\n")
    env = dict(os.environ, ROS_DOMAIN_ID=str(os.getpid() % 200 + 20), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    os.environ.update(ROS_DOMAIN_ID=env["ROS_DOMAIN_ID"], ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    procs = [subprocess.Popen([sys.executable, "-m", f"robofail_ros.nodes.{kind}", "--ros-args", "--params-file",
                               str(params), "-r", "__ns:=/worker_0"], env=env, stdout=subprocess.DEVNULL)
             for kind in ("sim_node", "policy_node")]
    rclpy.init()
    node = rclpy.create_node("bench_driver")
    ready, results = [], {}
    node.create_subscription(String, READY_TOPIC, lambda m: ready.append(m.data), 10)
    node.create_subscription(EpisodeResult, RESULTS_TOPIC, lambda m: results.setdefault(m.episode_id, (time.perf_counter(), m)), 10)
    requests = node.create_publisher(Perturbation, "/worker_0/perturbation", 10)
    try:
        deadline = time.monotonic() + 180
        while not ready and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.2)
        if not ready:
            raise RuntimeError("the worker never announced itself ready")
        steps, seconds = 0, 0.0
        for i in range(episodes):  # one at a time: the lock-step loop's own speed
            sent = time.perf_counter()
            requests.publish(Perturbation(run_id="bench", episode_id=i, names=[], seed=SEEDS_FROM + i))
            while i not in results:
                rclpy.spin_once(node, timeout_sec=0.05)
            done, msg = results[i]
            if msg.error:
                raise RuntimeError(msg.error)
            steps += msg.steps
            seconds += done - sent
        return {"ros_steps": steps, "ros_steps_per_s": steps / seconds}
    finally:
        node.destroy_node()
        rclpy.shutdown()
        for p in procs:
            p.terminate()
            p.wait(timeout=30)
        shutil.rmtree(params.parent)


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the node processes (finally) on a timeout too
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policies", nargs="+", default=["lift_bc_rnn_low_dim"])
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--json")
    args = parser.parse_args()
    rows = []
    for spec in args.policies:
        row = {"policy": spec, **in_process(spec, args.episodes), **over_ros(spec, args.episodes)}
        row["in_process_vs_raw"] = row["in_process_steps_per_s"] / row["raw_steps_per_s"]
        row["in_process_vs_raw_plus_policy"] = row["in_process_steps_per_s"] / row["raw_plus_policy_steps_per_s"]
        row["ros_vs_in_process"] = row["ros_steps_per_s"] / row["in_process_steps_per_s"]
        rows.append(row)
    print(f"{'policy':<28} {'steps':>6} {'raw/s':>8} {'raw+policy/s':>13} {'in-proc/s':>10} {'ROS/s':>8} "
          f"{'in-proc/raw':>12} {'in-proc/(raw+policy)':>21} {'ROS/in-proc':>12}")
    for r in rows:
        print(f"{r['policy']:<28} {r['steps']:>6} {r['raw_steps_per_s']:>8.1f} {r['raw_plus_policy_steps_per_s']:>13.1f} "
              f"{r['in_process_steps_per_s']:>10.1f} {r['ros_steps_per_s']:>8.1f} {r['in_process_vs_raw']:>12.2f} "
              f"{r['in_process_vs_raw_plus_policy']:>21.2f} {r['ros_vs_in_process']:>12.2f}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
