"""Versions of every component, recorded with every run and printed by `robofail doctor`."""
from __future__ import annotations

import importlib
import importlib.util
import platform
import sys
from importlib import metadata

# distribution name -> what users call it
COMPONENTS = {
    "robofail_ros": "robofail_ros",
    "ros-rclpy": "rclpy (ROS 2 Kilted)",
    "ros-rmw-fastrtps-cpp": "Fast DDS RMW",
    "robosuite": "robosuite",
    "mujoco": "MuJoCo",
    "robomimic": "robomimic",
    "torch": "torch",
    "torchvision": "torchvision",
    "stable_baselines3": "stable-baselines3",
    "gymnasium": "gymnasium",
    "numpy": "numpy",
    "scipy": "scipy",
}
# The module of a distribution whose name differs (None: no Python module to ask).
MODULES = {"ros-rclpy": "rclpy", "ros-rmw-fastrtps-cpp": None}


def component_versions() -> dict[str, str | None]:
    """{distribution: version or None when it is not there}, plus python and platform."""
    out: dict[str, str | None] = {"python": sys.version.split()[0], "platform": platform.platform()}
    for dist in COMPONENTS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = module_version(MODULES.get(dist, dist))
    return out


def module_version(name: str | None) -> str | None:
    """The ``__version__`` of a module importable without an installed distribution (a source
    checkout on PYTHONPATH, a trimmed copy of a package): a run that used it must not record it
    as absent, or a resume under another version of it would pass unnoticed."""
    if name is None or importlib.util.find_spec(name) is None:
        return None
    try:
        version = importlib.import_module(name).__version__
    except (ImportError, AttributeError):  # there but unusable, or it states no version
        return None
    return str(version)
