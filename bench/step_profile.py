"""Where one worker's control step and memory go: the policy's act(), the scene's step (robosuite's
controller and MuJoCo physics, camera observations included), one camera render, and the
process's resident memory after each thing it loads.

    python bench/step_profile.py [--policy lift_bc_rnn_image_proprio] [--device cpu|cuda] [--steps 300] [--json out.json]

One process, unperturbed Lift episodes (seed 1, 2, ... until --steps control steps have run),
timed with perf_counter around each call. "physics + controller" is a step minus its camera
renders (each camera rendered again on its own, 100 times, at the policy's image size).
Target it explains (issue 15): an image+proprio policy at >= 60 control steps/s per worker on
the GPU machine; <= 1.5 GB per worker.
"""
import argparse
import json
import os
import pathlib
import time


def rss_mb() -> float:
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="lift_bc_rnn_image_proprio")
    parser.add_argument("--task", default="Lift")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--json")
    args = parser.parse_args()

    memory = {"python": rss_mb()}
    import torch  # noqa: F401  (what torch alone costs)
    memory["+ torch"] = rss_mb()
    from robofail_ros.core.policies import load_policy
    from robofail_ros.core.scenes import Scene
    policy = load_policy(args.policy, task=args.task, device=args.device)
    memory["+ policy"] = rss_mb()
    scene = Scene(args.task, cameras=policy.cameras)
    memory["+ scene"] = rss_mb()

    act, step, steps, episode = [], [], 0, 0
    while steps < args.steps + 20:
        episode += 1
        policy.start_episode(episode)
        obs = scene.reset([], seed=episode)
        while not scene.done and steps < args.steps + 20:
            t0 = time.perf_counter()
            action = policy.act(obs)
            t1 = time.perf_counter()
            obs = scene.step(action)
            t2 = time.perf_counter()
            steps += 1
            if steps > 20:  # the first steps pay one-off costs (CUDA kernels, GL buffers)
                act.append(t1 - t0)
                step.append(t2 - t1)
    memory["after episodes"] = rss_mb()
    render = {}
    for camera in policy.cameras:
        t0 = time.perf_counter()
        for _ in range(100):
            scene.env.sim.render(camera_name=camera, width=scene.image_size, height=scene.image_size)
        render[camera] = (time.perf_counter() - t0) / 100
    ms = lambda xs: 1000 * sum(xs) / len(xs)  # noqa: E731
    result = {
        "policy": args.policy, "device": args.device, "renderer": os.environ.get("MUJOCO_GL"), "steps": len(act),
        "control_steps_per_s": len(act) / (sum(act) + sum(step)),
        "act_ms": ms(act), "scene_step_ms": ms(step),
        "render_ms": {c: 1000 * s for c, s in render.items()},
        "physics_and_controller_ms": ms(step) - 1000 * sum(render.values()),
        "rss_mb": memory,
    }
    print(f"{args.policy} on {args.device} ({result['renderer']}): {result['control_steps_per_s']:.1f} control steps/s; "
          f"per step: act {result['act_ms']:.2f} ms, scene step {result['scene_step_ms']:.2f} ms "
          f"(renders {', '.join(f'{c} {v:.2f} ms' for c, v in result['render_ms'].items()) or 'none'}; "
          f"physics + controller {result['physics_and_controller_ms']:.2f} ms)")
    print("resident memory: " + ", ".join(f"{k} {v:.0f} MB" for k, v in memory.items()))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
