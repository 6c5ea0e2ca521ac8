"""Where robofail_ros's data lives (config/: parameter files and the perturbation catalog;
data/policies/: the bundled checkpoints), found the way its install put it there:

1. a ROS install (colcon build; CMakeLists.txt installs config/ and data/): the ament index's
   share/robofail_ros;
2. a pip install: <prefix>/share/robofail_ros (setup.py's data_files);
3. an editable install (the venv route): the source tree that the distribution records (PEP 610).
"""
from __future__ import annotations

import functools
import importlib.metadata
import json
import pathlib
import sys
import urllib.parse

from .errors import ConfigError

PACKAGE = "robofail_ros"
_MARKER = pathlib.Path("config", "search.yaml")


def _candidates():
    try:
        from ament_index_python.packages import get_package_share_directory
        yield pathlib.Path(get_package_share_directory(PACKAGE))
    except Exception:  # not a ROS install, or no AMENT_PREFIX_PATH: the next places
        pass
    yield pathlib.Path(sys.prefix) / "share" / PACKAGE
    for dist in importlib.metadata.distributions(name=PACKAGE):  # an egg-info in a build folder may come first
        direct = dist.read_text("direct_url.json")
        url = json.loads(direct).get("url", "") if direct else ""
        if url.startswith("file://"):
            yield pathlib.Path(urllib.parse.unquote(urllib.parse.urlparse(url).path))


@functools.cache
def share_dir() -> pathlib.Path:
    """The folder holding config/ and data/."""
    tried = []
    for candidate in _candidates():
        if (candidate / _MARKER).is_file():
            return candidate
        tried.append(str(candidate))
    raise ConfigError(f"robofail_ros's data (config/, data/) is not installed where it was looked for ({', '.join(tried)}); "
                      "install the package (bash tools/setup.sh, pip install ., or colcon build)")


def path(*parts: str) -> pathlib.Path:
    return share_dir().joinpath(*parts)
