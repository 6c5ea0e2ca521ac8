"""Versions of every component, recorded with every run and printed by `robofail doctor`."""
from __future__ import annotations

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


def component_versions() -> dict[str, str | None]:
    """{distribution: version or None when it is not installed}, plus python and platform."""
    out: dict[str, str | None] = {"python": sys.version.split()[0], "platform": platform.platform()}
    for dist in COMPONENTS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out
