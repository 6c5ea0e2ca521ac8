"""Perturbation cost and rendering speed, side by side in one run (issue: perturbable scenes).

    .venv/bin/python bench/perturbation_cost.py [--repeats 5] [--json out.json]

1. apply + reset time for one perturbation of each factor type (and a plain reset), in place
   (our Scene; a factor that needs a rebuilt model uses the cached one) vs a full XML reload
   (what the public RoboFail code does for every perturbation: env.reset_from_xml_string);
   "apply" is the perturbation alone (restore the pristine model, edit it); "apply+reset" adds
   robosuite's reset and the first observation, which every episode pays with or without us;
2. renders/s of an 84x84 agentview at default and at "fast" render quality.
Prints a table and the ratios; absolute times hold for this machine only.
"""
import argparse
import json
import time

import numpy as np

from robofail_ros.core.scenes import Scene



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
    first_of_factor = {}
    for p in scene.catalog.for_task("Lift"):
        first_of_factor.setdefault(p.factor_name, p.name)
    for name in ["none", *first_of_factor.values()]:
        names = [] if name == "none" else [name]
        scene.reset(names, seed=0)  # a factor that needs a rebuilt model builds (and caches) it here
        in_place = timed(lambda: scene.reset(names, seed=0), args.repeats)
        apply_only = timed(lambda: scene.apply(names), args.repeats)
        factor = scene.catalog[name].factor_name if names else "(reset only)"
        rows.append({"perturbation": name, "factor": factor, "in_place_s": in_place, "apply_s": apply_only,
                     "xml_reload_s": reload_s, "ratio": reload_s / in_place, "apply_ratio": reload_s / apply_only})
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
    print(f"{'perturbation':<18} {'factor':<18} {'apply+reset (s)':>15} {'apply (s)':>10} {'XML reload (s)':>15} "
          f"{'ratio':>6} {'apply ratio':>11}")
    for r in rows:
        print(f"{r['perturbation']:<18} {r['factor']:<18} {r['in_place_s']:>15.4f} {r['apply_s']:>10.5f} "
              f"{r['xml_reload_s']:>15.3f} {r['ratio']:>6.1f} {r['apply_ratio']:>11.0f}")
    print(f"renders/s at 84x84: default {renders['default']:.1f}, fast {renders['fast']:.1f} "
          f"({renders['fast'] / renders['default']:.2f}x)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "renders_per_s": renders}, f, indent=2)


if __name__ == "__main__":
    main()
