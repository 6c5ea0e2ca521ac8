"""Between core objects and ROS messages. No logic lives here but the mapping itself."""
from __future__ import annotations

import json

import numpy as np
from sensor_msgs.msg import Image
from visualization_msgs.msg import Marker, MarkerArray

from ..core.episode import EpisodeOutcome
from ..core.stats import UNDECIDED, UNTRIED
from ..msg import EpisodeResult, FailureMode, Observation


def _load_bridge():
    """cv_bridge where it is installed (the ROS distribution's, or the package index's copy in the
    venv); None otherwise, and the hand-written rgb8/bgr8 conversion below is used."""
    try:
        from cv_bridge import CvBridge
        return CvBridge()
    except ImportError:
        return None


BRIDGE = _load_bridge()


def image_to_msg(img: np.ndarray, frame_id: str = "robofail", bridge=BRIDGE) -> Image:
    """An upright HxWx3 uint8 array as an rgb8 Image."""
    img = np.ascontiguousarray(img, dtype=np.uint8)
    if bridge is not None:
        msg = bridge.cv2_to_imgmsg(img, "rgb8")
    else:
        msg = Image(height=img.shape[0], width=img.shape[1], encoding="rgb8", is_bigendian=0, step=img.shape[1] * 3)
        msg.data = img.tobytes()
    msg.header.frame_id = frame_id
    return msg


def msg_to_image(msg: Image, bridge=BRIDGE) -> np.ndarray:
    """An Image as an HxWx3 uint8 RGB array (cv_bridge converts any colour encoding it knows).
    A malformed one (data that does not fill height x width) is a ValueError saying so."""
    if bridge is not None:
        try:
            return np.asarray(bridge.imgmsg_to_cv2(msg, "rgb8"))
        except Exception as exc:  # CvBridgeError, or numpy's own on a short buffer
            raise ValueError(f"cannot read a {msg.width}x{msg.height} {msg.encoding!r} image of {len(msg.data)} "
                             f"bytes: {exc}") from None
    if msg.encoding not in ("rgb8", "bgr8"):
        raise ValueError(f"expected an rgb8 or bgr8 image, got {msg.encoding!r} (install cv_bridge for other encodings)")
    if len(msg.data) != msg.height * msg.width * 3:
        raise ValueError(f"a {msg.width}x{msg.height} {msg.encoding} image needs {msg.height * msg.width * 3} bytes, "
                         f"got {len(msg.data)}")
    img = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(msg.height, msg.width, 3)
    return img[..., ::-1] if msg.encoding == "bgr8" else img


def obs_to_msg(obs: dict, keys, episode_id: int, step: int, seed: int) -> Observation:
    msg = Observation(episode_id=episode_id, step=step, seed=seed)
    low = [k for k in keys if not k.endswith("_image")]
    msg.low_dim_keys = low
    values = [np.asarray(obs[k], dtype=float).reshape(-1) for k in low]
    msg.low_dim_sizes = [len(v) for v in values]
    msg.low_dim = np.concatenate(values).tolist() if values else []
    msg.image_keys = [k for k in keys if k.endswith("_image")]
    msg.images = [image_to_msg(obs[k]) for k in msg.image_keys]
    return msg


def msg_to_obs(msg: Observation) -> dict:
    """The observation dict; a message whose parts do not add up is a ValueError saying how."""
    sizes = list(msg.low_dim_sizes)
    if len(msg.low_dim_keys) != len(sizes) or sum(sizes) != len(msg.low_dim) or len(msg.image_keys) != len(msg.images):
        raise ValueError(f"malformed observation: {len(msg.low_dim_keys)} low-dim keys with {len(sizes)} sizes summing "
                         f"to {sum(sizes)} for {len(msg.low_dim)} values, {len(msg.image_keys)} image keys for "
                         f"{len(msg.images)} images")
    obs, start = {}, 0
    values = np.asarray(msg.low_dim, dtype=float)
    for key, size in zip(msg.low_dim_keys, msg.low_dim_sizes):
        obs[key] = values[start:start + size]
        start += size
    for key, img in zip(msg.image_keys, msg.images):
        try:
            obs[key] = msg_to_image(img)
        except ValueError as exc:
            raise ValueError(f"malformed observation: {key}: {exc}") from None
    return obs


def outcome_to_msg(outcome: EpisodeOutcome, run_id: str, error: str = "") -> EpisodeResult:
    msg = EpisodeResult(run_id=run_id, episode_id=outcome.episode_id, names=list(outcome.perturbations),
                        seed=outcome.seed, success=outcome.success, steps=outcome.steps,
                        sim_error=outcome.sim_error is not None, sim_error_message=outcome.sim_error or "",
                        worker=outcome.worker, error=error)
    if outcome.image is not None:
        msg.image = image_to_msg(outcome.image)
    return msg


def msg_to_outcome(msg: EpisodeResult) -> EpisodeOutcome:
    return EpisodeOutcome(tuple(msg.names), msg.seed, msg.success, msg.steps,
                          (msg.sim_error_message or "simulator error") if msg.sim_error else None,
                          msg.episode_id, msg.worker, msg_to_image(msg.image) if msg.image.height else None)


def mode_to_msg(mode, method: str) -> FailureMode:
    """One core FailureMode as a message; ``method`` "pi" reports pi, "empirical" P(fail) and its interval."""
    if method == "pi":
        p = mode.pi if mode.pi is not None else 0.0
        low = high = p
    else:
        p = mode.p_fail if mode.trials else 0.0
        low, high = mode.ci_low, mode.ci_high
    return FailureMode(name=mode.name, factor=mode.factor, probability=float(p), ci_low=float(low),
                       ci_high=float(high), trials=mode.trials, failures=mode.failures, sim_errors=mode.sim_errors,
                       status=mode.status, cs_low=float(mode.cs_low), cs_high=float(mode.cs_high), rank=mode.rank or 0,
                       pi_p_fail=float("nan") if mode.pi_p_fail is None else float(mode.pi_p_fail))


def modes_to_markers(modes: list[FailureMode], frame_id: str = "robofail", top: int = 15) -> MarkerArray:
    """A bar chart for RViz: one bar per failure mode along x, height = probability (1 m = 1.0),
    with a label of its name, value, class and rank above it (an untried mode shows no value, and
    an undecided one is grey, so no bar reads as a finding it is not)."""
    array = MarkerArray()
    array.markers.append(Marker(action=Marker.DELETEALL))
    for i, mode in enumerate(modes[:top]):
        height = max(mode.probability, 0.005)
        bar = Marker(ns="bars", id=i, type=Marker.CUBE, action=Marker.ADD)
        bar.header.frame_id = frame_id
        bar.pose.position.x, bar.pose.position.z = 0.3 * i, height / 2
        bar.pose.orientation.w = 1.0
        bar.scale.x, bar.scale.y, bar.scale.z = 0.2, 0.2, height
        if mode.status in (UNDECIDED, UNTRIED):
            bar.color.r = bar.color.g = bar.color.b = 0.6
        else:
            bar.color.r, bar.color.g, bar.color.b = 0.85, 0.2 + 0.6 * (1 - mode.probability), 0.15
        bar.color.a = 1.0
        label = Marker(ns="labels", id=i, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD)
        label.header.frame_id = frame_id
        label.pose.position.x, label.pose.position.z = 0.3 * i, height + 0.08
        label.pose.orientation.w = 1.0
        label.scale.z = 0.06
        label.color.r = label.color.g = label.color.b = label.color.a = 1.0
        value = "" if mode.status == UNTRIED else f" {mode.probability:.2f}"
        label.text = f"{mode.name}{value} {mode.status}" + (f" #{mode.rank}" if mode.rank else "")
        array.markers.extend([bar, label])
    return array


# Parameters every rclpy node declares itself.
ROS_BUILTIN_PARAMETERS = {"use_sim_time", "start_type_description_service"}


def params_to_dict(node) -> dict:
    """All parameters of a node (declared from overrides) as a nested dict: 'identify.min_trials' -> {'identify': {'min_trials'}}."""
    nested: dict = {}
    for name, param in node.get_parameters_by_prefix("").items():
        if name in ROS_BUILTIN_PARAMETERS:
            continue
        target = nested
        *parents, leaf = name.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = param.value
    return nested


def dumps(data) -> str:
    return json.dumps(data, default=str)
