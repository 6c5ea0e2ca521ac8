"""`robofail`: every capability of robofail_ros from the command line.

Each subcommand is a function ``cmd_<name>(args)``, registered with its arguments in
``_parser()``. Errors that are the user's to fix (RoboFailError) print one clear message and
exit with status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys

from .core.errors import RoboFailError


# ------------------------------------------------------------------------------- doctor
def _check_components():
    from .core.versions import COMPONENTS, component_versions
    versions = component_versions()
    for dist, label in COMPONENTS.items():
        version = versions[dist]
        yield (label, version is not None, version or "not installed", "run: bash tools/setup.sh")
    mujoco = versions.get("mujoco") or "0"
    yield ("MuJoCo < 4 (robosuite 1.5.2 breaks on 4.x)", mujoco.split(".")[0] == "3", mujoco,
           "pip install mujoco==3.3.7")


def _check_triton():
    import importlib.util
    present = importlib.util.find_spec("triton") is not None
    yield ("triton absent (it segfaults beside MuJoCo's GL libraries)", not present,
           "installed" if present else "absent", "pip uninstall -y triton")


def _check_ros():
    try:
        import rclpy
        from .msg import EpisodeResult  # noqa: F401  (built by tools/setup.sh)
        from .srv import GetFailureProbabilities  # noqa: F401
        rclpy.init(args=[])
        try:
            node = rclpy.create_node("robofail_doctor")
            node.create_publisher(EpisodeResult, "robofail_doctor_check", 1)
            node.destroy_node()
        finally:
            rclpy.shutdown()
        yield ("ROS 2: rclpy + Fast DDS + robofail_ros interfaces", True, "node created, publisher made", "")
    except Exception as exc:  # report, don't crash: this is a diagnosis
        yield ("ROS 2: rclpy + Fast DDS + robofail_ros interfaces", False, f"{type(exc).__name__}: {exc}",
               "run: bash tools/setup.sh (it builds msg/ and srv/ into .venv)")


def _check_render():
    try:
        import os
        from .core.scenes import Scene
        scene = Scene("Lift", cameras=("agentview",))
        img = scene.reset([], seed=0)["agentview_image"]
        scene.close()
        ok = img.shape == (84, 84, 3) and img.std() > 5
        yield (f"robosuite Lift renders offscreen (MUJOCO_GL={os.environ.get('MUJOCO_GL')})", ok,
               f"84x84 image, pixel std {img.std():.1f}", "apt-get install libosmesa6 libegl1 libegl-mesa0")
    except Exception as exc:
        yield ("robosuite Lift renders offscreen", False, f"{type(exc).__name__}: {exc}",
               "apt-get install libosmesa6 libegl1 libegl-mesa0; bash tools/setup.sh")


def _check_learning():
    try:
        import robomimic.utils.file_utils  # noqa: F401
        import stable_baselines3  # noqa: F401
        yield ("robomimic + stable-baselines3 import beside robosuite", True, "ok", "")
    except Exception as exc:
        yield ("robomimic + stable-baselines3 import beside robosuite", False, f"{type(exc).__name__}: {exc}",
               "run: bash tools/setup.sh")


def cmd_doctor(args) -> int:
    failed = 0
    for check in (_check_components, _check_triton, _check_ros, _check_render, _check_learning):
        for label, ok, detail, fix in check():
            print(f"[{'ok' if ok else 'FAIL':>4}] {label}: {detail}" + ("" if ok else f"\n       fix: {fix}"))
            failed += not ok
    print("all components work" if not failed else f"{failed} problem(s) found")
    return 1 if failed else 0


# ------------------------------------------------------------------------ perturbations
def cmd_perturbations(args) -> int:
    from .core.perturbations import FACTORS, Catalog
    from .core.scenes import get_task
    if args.factors:
        rows = [{"factor": name, "parameters": [f.name for f in __import__("dataclasses").fields(cls)],
                 "doc": (cls.__doc__ or "").strip().splitlines()[0]} for name, cls in sorted(FACTORS.items())]
        print(json.dumps(rows, indent=2) if args.json else
              "\n".join(f"{r['factor']:<20} {', '.join(r['parameters']):<28} {r['doc']}" for r in rows))
        return 0
    task = get_task(args.task)
    catalog = Catalog.load(args.catalog).for_task(task.name)
    rows = [{"name": p.name, "label": p.label, "factor": p.factor_name,
             "params": {k: v for k, v in p.factor.__dict__.items()}} for p in catalog]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{len(rows)} perturbations over {len(catalog.factors())} factors for {task.name} ({catalog.path})")
        for r in rows:
            params = ", ".join(f"{k}={v}" for k, v in r["params"].items())
            print(f"  {r['name']:<20} {r['factor']:<20} {params}")
    return 0


def cmd_render(args) -> int:
    from PIL import Image
    from .core.perturbations import Catalog
    from .core.scenes import Scene
    scene = Scene(args.task, catalog=Catalog.load(args.catalog))
    scene.reset(args.perturbation or [], seed=args.seed)
    Image.fromarray(scene.render(args.camera, args.size)).save(args.out)
    print(f"wrote {args.out} ({args.task}, perturbations: {', '.join(scene.applied) or 'none'}, seed {args.seed})")
    return 0


# ------------------------------------------------------------------------------ parser
def _parser() -> argparse.ArgumentParser:
    from .core.perturbations import DEFAULT_CATALOG
    parser = argparse.ArgumentParser(prog="robofail", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("doctor", help="check every component and say how to fix what is broken")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("perturbations", help="list the perturbation catalog of a task")
    p.add_argument("--task", default="Lift")
    p.add_argument("--catalog", default=str(DEFAULT_CATALOG), help="perturbation catalog YAML")
    p.add_argument("--factors", action="store_true", help="list the factor types and their parameters instead")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_perturbations)

    p = sub.add_parser("render", help="render what a perturbation looks like")
    p.add_argument("--task", default="Lift")
    p.add_argument("--perturbation", action="append", help="catalog name; repeat to compose")
    p.add_argument("--catalog", default=str(DEFAULT_CATALOG))
    p.add_argument("--camera", default="agentview")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="PNG file to write")
    p.set_defaults(func=cmd_render)
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except RoboFailError as exc:
        print(f"robofail {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
