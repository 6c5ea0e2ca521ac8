"""`robofail doctor`: checks every component and names the fix for what is broken.

Each check yields (label, ok, detail, fix)."""
from __future__ import annotations

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


def _check_device():
    import os
    try:
        import torch
        if torch.cuda.is_available():
            names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
            yield ("policy device: cuda available (device: cuda runs the policy under test there)", True,
                   f"torch {torch.__version__}, {names}", "")
        else:
            yield ("policy device: cpu (no GPU seen by torch; device: cuda would be refused)", True,
                   f"torch {torch.__version__}", "")
    except Exception as exc:
        yield ("policy device", False, f"{type(exc).__name__}: {exc}", "run: bash tools/setup.sh")
    renderer = os.environ.get("MUJOCO_GL") or ("egl (auto: a GPU is present)" if os.path.exists("/dev/nvidia0")
                                               else "osmesa (auto: no GPU)")
    yield ("scene renderer (MUJOCO_GL; set it to override)", True, renderer, "")


def _check_learning():
    try:
        import robomimic.utils.file_utils  # noqa: F401
        import stable_baselines3  # noqa: F401
        yield ("robomimic + stable-baselines3 import beside robosuite", True, "ok", "")
    except Exception as exc:
        yield ("robomimic + stable-baselines3 import beside robosuite", False, f"{type(exc).__name__}: {exc}",
               "run: bash tools/setup.sh")


CHECKS = (_check_components, _check_triton, _check_ros, _check_device, _check_render, _check_learning)
