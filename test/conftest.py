"""Shared fixtures. Every test session gets its own ROS domain, discovered on localhost only,
so parallel runs (and other ROS systems on the machine) never see each other."""
import os
import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
# 1-100 for this session; the tests take more ids above it, up to 230 (232 is the highest Fast DDS takes:
# a higher one fails at start-up with "Calculated port number is too high").
os.environ["ROS_DOMAIN_ID"] = str(os.getpid() % 100 + 1)
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")


@pytest.fixture(scope="session")
def lift_scene():
    """A low-dim Lift scene with the agentview camera (one per session: building one takes seconds)."""
    from robofail_ros.core.scenes import Scene
    scene = Scene("Lift", cameras=("agentview",))
    yield scene
    scene.close()


@pytest.fixture(scope="session")
def lift_lowdim():
    """A Lift scene that renders no camera: for whole episodes of state-based policies."""
    from robofail_ros.core.scenes import Scene
    scene = Scene("Lift")
    yield scene
    scene.close()


@pytest.fixture(scope="session")
def python():
    return sys.executable
