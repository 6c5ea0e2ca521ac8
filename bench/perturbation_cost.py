"""Perturbation cost and rendering speed, side by side in one run (issue: perturbable scenes).

    .venv/bin/python bench/perturbation_cost.py [--repeats 5] [--json out.json]

1. apply + reset time per factor type, in place (our Scene) vs a full XML reload
   (what the public RoboFail code does for every perturbation: env.reset_from_xml_string);
2. renders/s of an 84x84 agentview at default and at "fast" render quality.
Prints a table and the ratios; absolute times hold for this machine only.
"""
import argparse
import json
import time

import numpy as np

from robofail_ros.core.scenes import Scene

FACTOR_EXAMPLES = ["red_table", "dim_light", "camera_left", "heavy_cube", "large_cube", "object_far", "image_noise"]


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json")
    args = parser.parse_args()
    scene = Scene("Lift", cameras=("agentview",))
    xml = scene.env.sim.model.get_xml()
    reload_s = timed(lambda: scene.env.reset_from_xml_string(xml), max(2, args.repeats // 2))
    scene.close()
    scene = Scene("Lift", cameras=("agentview",))
    rows = []
    for name in FACTOR_EXAMPLES:
        in_place = timed(lambda: scene.reset([name], seed=0), args.repeats)
        rows.append({"perturbation": name, "factor": scene.catalog[name].factor_name, "in_place_s": in_place,
                     "xml_reload_s": reload_s, "ratio": reload_s / in_place})
    renders = {}
    for quality in ("default", "fast"):
        s = Scene("Lift", cameras=("agentview",), render_quality=quality)
        s.reset([], seed=0)
        n = 60
        start = time.perf_counter()
        for _ in range(n):
            s.env.sim.render(camera_name="agentview", width=84, height=84)
        renders[quality] = n / (time.perf_counter() - start)
        s.close()
    print(f"{'perturbation':<14} {'factor':<18} {'in place (s)':>12} {'XML reload (s)':>15} {'ratio':>7}")
    for r in rows:
        print(f"{r['perturbation']:<14} {r['factor']:<18} {r['in_place_s']:>12.4f} {r['xml_reload_s']:>15.3f} {r['ratio']:>7.1f}")
    print(f"renders/s at 84x84: default {renders['default']:.1f}, fast {renders['fast']:.1f} "
          f"({renders['fast'] / renders['default']:.2f}x)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "renders_per_s": renders}, f, indent=2)


if __name__ == "__main__":
    main()
