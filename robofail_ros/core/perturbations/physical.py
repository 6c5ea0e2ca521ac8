"""Factor types that change the physics, the start state, or what passes between the policy
and the scene: object size/mass/friction/pose, table size, robot start noise, image noise and
blur, actuation noise and latency (the appearance factors are in factors.py)."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from ..errors import PerturbationError
from .factors import Factor, _number, _positive, _vector, _whole, register_factor


@register_factor("object_size")
@dataclasses.dataclass(frozen=True)
class ObjectSize(Factor):
    """Scales the task object's geoms (collision and visual) in place; its mass is unchanged.

    The object is lifted or lowered after reset so that it still rests on the table. Scales
    above 1.9 are refused: robosuite's Lift counts a cube whose centre is 4 cm above the table
    as lifted, which a cube that large is from the start.
    """
    scale: float

    def __post_init__(self):
        scale = _positive(self.scale, "object_size.scale")
        if not 0.25 <= scale <= 1.9:
            raise PerturbationError(f"object_size.scale must lie in [0.25, 1.9], got {scale}")
        object.__setattr__(self, "scale", scale)

    def check(self, scene):
        scene.object_geoms()

    def apply(self, scene):
        m = scene.model
        ids = scene.object_geoms()
        m.geom_size[ids] *= self.scale
        m.geom_rbound[ids] *= self.scale
        m.geom_aabb[ids] *= self.scale
        m.geom_pos[ids] *= self.scale

    def after_reset(self, scene, rng):
        scene.shift_object(dz=(self.scale - 1.0) * scene.object_half_height())


@register_factor("table_size")
@dataclasses.dataclass(frozen=True)
class TableSize(Factor):
    """Builds the scene with another table top (x, y, thickness in metres): a new model."""
    size: tuple

    def __post_init__(self):
        size = _vector(self.size, 3, "table_size.size")
        if not all(0.02 <= s <= 3.0 for s in size):
            raise PerturbationError(f"table_size.size values must lie in [0.02, 3] m, got {list(size)}")
        object.__setattr__(self, "size", size)

    def rebuild_kwargs(self):
        return {"table_full_size": self.size}

    def check(self, scene):
        if "table_full_size" not in scene.task.rebuildable:
            raise PerturbationError(f"task {scene.task.name} has no table whose size can change")


@register_factor("object_mass")
@dataclasses.dataclass(frozen=True)
class ObjectMass(Factor):
    """Scales the task object's mass and inertia."""
    scale: float

    def __post_init__(self):
        object.__setattr__(self, "scale", _positive(self.scale, "object_mass.scale"))

    def check(self, scene):
        scene.object_body()

    def apply(self, scene):
        body = scene.object_body()
        scene.model.body_mass[body] *= self.scale
        scene.model.body_inertia[body] *= self.scale


@register_factor("friction")
@dataclasses.dataclass(frozen=True)
class Friction(Factor):
    """Scales the sliding friction of the task object's collision geoms."""
    scale: float

    def __post_init__(self):
        object.__setattr__(self, "scale", _positive(self.scale, "friction.scale"))

    def check(self, scene):
        scene.object_geoms()

    def apply(self, scene):
        ids = scene.object_geoms()
        scene.model.geom_friction[ids, 0] *= self.scale


@register_factor("object_pose")
@dataclasses.dataclass(frozen=True)
class ObjectPose(Factor):
    """Moves the object's initial position by an offset (metres) plus uniform jitter, and turns it (degrees)."""
    offset: tuple = (0.0, 0.0)
    jitter: float = 0.0
    yaw: float = 0.0

    def __post_init__(self):
        offset = _vector(self.offset, 2, "object_pose.offset")
        jitter = _number(self.jitter, "object_pose.jitter")
        if max(abs(v) for v in offset) > 0.3 or not 0.0 <= jitter <= 0.2:
            raise PerturbationError("object_pose: |offset| must be <= 0.3 m and jitter in [0, 0.2] m "
                                    "so the object stays on the table")
        object.__setattr__(self, "offset", offset)
        object.__setattr__(self, "jitter", jitter)
        object.__setattr__(self, "yaw", _number(self.yaw, "object_pose.yaw"))

    def check(self, scene):
        scene.object_body()

    def after_reset(self, scene, rng):
        dx, dy = np.asarray(self.offset) + rng.uniform(-self.jitter, self.jitter, size=2)
        scene.shift_object(dx=dx, dy=dy, dyaw_degrees=self.yaw)


@register_factor("robot_init_noise")
@dataclasses.dataclass(frozen=True)
class RobotInitNoise(Factor):
    """Gaussian noise (radians) on the robot's initial joint positions."""
    magnitude: float

    def __post_init__(self):
        value = _number(self.magnitude, "robot_init_noise.magnitude")
        if not 0.0 <= value <= 0.5:
            raise PerturbationError(f"robot_init_noise.magnitude must lie in [0, 0.5] rad, got {value}")
        object.__setattr__(self, "magnitude", value)

    def apply(self, scene):
        for robot in scene.env.robots:
            robot.initialization_noise = {"magnitude": self.magnitude, "type": "gaussian"}


# ------------------------------------------------------------------------ sensing / acting
@register_factor("image_noise")
@dataclasses.dataclass(frozen=True)
class ImageNoise(Factor):
    """Adds Gaussian pixel noise (std in 0-255 units) to every camera image the policy sees."""
    std: float
    APPEARANCE: ClassVar[bool] = True

    def __post_init__(self):
        object.__setattr__(self, "std", _positive(self.std, "image_noise.std"))

    def observe(self, images, rng, memory):
        for key, img in images.items():
            noisy = img.astype(np.float32) + rng.normal(0.0, self.std, size=img.shape)
            images[key] = np.clip(noisy, 0, 255).astype(np.uint8)


@register_factor("image_blur")
@dataclasses.dataclass(frozen=True)
class ImageBlur(Factor):
    """Box-blurs every camera image the policy sees (odd kernel size in pixels)."""
    kernel: int
    APPEARANCE: ClassVar[bool] = True

    def __post_init__(self):
        k = _whole(self.kernel, "image_blur.kernel")
        if k < 3 or k % 2 == 0 or k > 31:
            raise PerturbationError(f"image_blur.kernel must be odd and in [3, 31], got {self.kernel}")
        object.__setattr__(self, "kernel", k)

    def observe(self, images, rng, memory):
        import cv2  # comes with robosuite
        for key, img in images.items():
            images[key] = cv2.blur(img, (self.kernel, self.kernel))


@register_factor("actuation_noise")
@dataclasses.dataclass(frozen=True)
class ActuationNoise(Factor):
    """Adds Gaussian noise (in normalised action units) to the arm part of every action."""
    std: float

    def __post_init__(self):
        object.__setattr__(self, "std", _positive(self.std, "actuation_noise.std"))

    def act(self, action, rng, memory):
        noisy = action.copy()
        noisy[:-1] += rng.normal(0.0, self.std, size=len(action) - 1)  # the last entry is the gripper
        return np.clip(noisy, -1.0, 1.0)


@register_factor("actuation_latency")
@dataclasses.dataclass(frozen=True)
class ActuationLatency(Factor):
    """Delays every action by a number of control steps (zero actions fill the gap)."""
    steps: int

    def __post_init__(self):
        steps = _whole(self.steps, "actuation_latency.steps")
        if not 1 <= steps <= 20:
            raise PerturbationError(f"actuation_latency.steps must lie in [1, 20], got {self.steps}")
        object.__setattr__(self, "steps", steps)

    def act(self, action, rng, memory):
        queue = memory.setdefault("queue", [np.zeros_like(action)] * self.steps)
        queue.append(action)
        return queue.pop(0)
