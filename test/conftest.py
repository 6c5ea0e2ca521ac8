"""Shared fixtures. Every test session gets its own ROS domain, discovered on localhost only,
so parallel runs (and other ROS systems on the machine) never see each other."""
import faulthandler
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
HANG_LIMIT_S = 600  # the slowest test takes ~90 s


@pytest.fixture(scope="session", autouse=True)
def _ros_home(tmp_path_factory):
    """ROS's logs and the ROS systems' parameter overrides (bringup.overrides_file) go to the
    session's own folder, not the user's ~/.ros."""
    os.environ["ROS_HOME"] = str(tmp_path_factory.mktemp("ros_home"))


@pytest.fixture(scope="session")
def _terminal_stderr(pytestconfig):
    """The terminal's stderr: pytest captures fd 2 during each test, and a dump written there would
    vanish with the process. pytest keeps a copy of the original (a private attribute: fd 2 if gone)."""
    capturing = getattr(pytestconfig.pluginmanager.getplugin("capturemanager"), "_global_capturing", None)
    saved = getattr(getattr(capturing, "err", None), "targetfd_save", None)
    with os.fdopen(os.dup(saved if saved is not None else 2), "w") as stream:
        yield stream


@pytest.fixture(autouse=True)
def _hang_guard(_terminal_stderr):
    """A test that hangs (a deadlock in DDS teardown, say) ends the session after HANG_LIMIT_S
    with every thread's traceback, instead of holding CI until its own limit."""
    faulthandler.dump_traceback_later(HANG_LIMIT_S, exit=True, file=_terminal_stderr)
    yield
    faulthandler.cancel_dump_traceback_later()


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


@pytest.fixture(scope="session")
def lost_ctrl_c():
    """The start of a script in which a Ctrl-C arrives and is lost: it lands in a finaliser, where
    Python can only print it ("Exception ignored in") and goes on, as a library's catch-all would."""
    return ("import os, signal, sys\n"
            "from robofail_ros.core import interrupts\n"
            "interrupts.install()\n"
            "class Finaliser:\n"
            "    def __del__(self):\n"
            "        os.kill(os.getpid(), signal.SIGINT)\n"
            "Finaliser()\n")


@pytest.fixture
def efficiency_bench(monkeypatch):
    """bench/search_efficiency.py as a module (the benches are scripts, not part of the package)."""
    monkeypatch.syspath_prepend(str(REPO / "bench"))
    import search_efficiency
    return search_efficiency
