"""A replayed episode as an MCAP file with ROS 2 message schemas, for a ROS user's own tools
(Foxglove, `ros2 bag` with the MCAP storage plugin). Topics, one message per control step
unless said otherwise:

- ``/robofail/observation`` (robofail_ros/msg/Observation): what the policy saw;
- ``/robofail/action`` (robofail_ros/msg/Action): what it answered;
- ``/robofail/scene_image`` (sensor_msgs/msg/Image): the scene from ``camera``, every frame;
- ``/robofail/episode_result`` (robofail_ros/msg/EpisodeResult): once, at the end.

Written with the package index's ``mcap`` and ``mcap-ros2-support`` (no ROS installation needed);
the schemas are the .msg definitions of this package and of the ROS packages it uses.
"""
from __future__ import annotations

import pathlib
import sys

import numpy as np

from . import resources
from .errors import ConfigError, check_new_output
from .files import written_whole

STEP_NS = 50_000_000  # 20 Hz control: one step every 50 ms
_DEPENDENCIES = {"robofail_ros/Observation": ["sensor_msgs/Image", "std_msgs/Header", "builtin_interfaces/Time"],
                 "robofail_ros/EpisodeResult": ["sensor_msgs/Image", "std_msgs/Header", "builtin_interfaces/Time"],
                 "sensor_msgs/Image": ["std_msgs/Header", "builtin_interfaces/Time"],
                 "robofail_ros/Action": []}


def _definition(datatype: str) -> str:
    package, name = datatype.split("/")
    if package == "robofail_ros":
        path = resources.path("msg", f"{name}.msg")
    else:
        path = pathlib.Path(sys.prefix) / "share" / package / "msg" / f"{name}.msg"
    if not path.is_file():
        raise ConfigError(f"the message definition {datatype} ({path}) is not installed; run bash tools/setup.sh")
    return path.read_text()


def schema_text(datatype: str) -> str:
    """A ros2msg schema: the type's definition, then each type it uses (the MCAP convention)."""
    parts = [_definition(datatype)]
    for dependency in _DEPENDENCIES[datatype]:
        parts.append("=" * 80 + f"\nMSG: {dependency}\n" + _definition(dependency))
    return "\n".join(parts)


def _image(img: np.ndarray, stamp_ns: int) -> dict:
    img = np.ascontiguousarray(img, dtype=np.uint8)
    return {"header": {"stamp": {"sec": stamp_ns // 1_000_000_000, "nanosec": stamp_ns % 1_000_000_000},
                       "frame_id": "robofail"},
            "height": img.shape[0], "width": img.shape[1], "encoding": "rgb8", "is_bigendian": 0,
            "step": img.shape[1] * 3, "data": img.tobytes()}


def write_mcap(out, steps, frames, outcome, run_id: str) -> pathlib.Path:
    """``steps``: (observation dict, action) per control step; ``frames``: (step, image) pairs."""
    from mcap_ros2.writer import Writer
    out = pathlib.Path(out)
    check_new_output(out)
    with written_whole(out) as partial, open(partial, "wb") as stream:  # a Ctrl-C leaves no truncated file
        writer = Writer(stream)
        schemas = {t: writer.register_msgdef(t, schema_text(t)) for t in _DEPENDENCIES if "/" in t}
        for step, (obs, action) in enumerate(steps):
            t = step * STEP_NS
            low = sorted(k for k in obs if not k.endswith("_image"))
            images = sorted(k for k in obs if k.endswith("_image"))
            values = [np.asarray(obs[k], dtype=float).reshape(-1) for k in low]
            writer.write_message("/robofail/observation", schemas["robofail_ros/Observation"], {
                "episode_id": outcome.episode_id, "step": step, "seed": outcome.seed, "low_dim_keys": low,
                "low_dim_sizes": [len(v) for v in values],
                "low_dim": np.concatenate(values).tolist() if values else [],
                "image_keys": images, "images": [_image(obs[k], t) for k in images]}, log_time=t, publish_time=t)
            writer.write_message("/robofail/action", schemas["robofail_ros/Action"], {
                "episode_id": outcome.episode_id, "step": step, "action": [float(a) for a in action], "error": ""},
                log_time=t + 1, publish_time=t + 1)
        for step, frame in frames:
            t = step * STEP_NS
            writer.write_message("/robofail/scene_image", schemas["sensor_msgs/Image"], _image(frame, t),
                                 log_time=t, publish_time=t)
        end = len(steps) * STEP_NS
        writer.write_message("/robofail/episode_result", schemas["robofail_ros/EpisodeResult"], {
            "run_id": run_id, "episode_id": outcome.episode_id, "names": list(outcome.perturbations),
            "seed": outcome.seed, "success": outcome.success, "steps": outcome.steps,
            "sim_error": outcome.sim_error is not None, "sim_error_message": outcome.sim_error or "",
            "worker": outcome.worker, "error": "", "image": _image(np.zeros((0, 0, 3), np.uint8), end)},
            log_time=end, publish_time=end)
        writer.finish()
    return out
