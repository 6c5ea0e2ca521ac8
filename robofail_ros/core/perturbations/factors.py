"""Factor types: what a perturbation changes and how, one class per kind, in a registry.

A catalog entry (config/perturbations/*.yaml) names a factor and gives its parameters; the
factor's dataclass fields are the parameters it accepts, and __post_init__ rejects impossible
magnitudes. A factor changes the scene through the hooks it overrides:

- ``rebuild_kwargs()``: robosuite constructor arguments; only factors that need a new MuJoCo
  model use it (the scene then builds, and caches, a second model).
- ``apply(scene)``: edits the loaded model in place (colours, lights, cameras, masses...). The
  scene restores every edited array from a pristine copy before the next episode, so edits
  never leak.
- ``after_reset(scene, rng)``: edits the initial state (object pose, size correction).
- ``observe(images, rng, memory)`` / ``act(action, rng, memory)``: transform what the policy
  sees or does, each step. ``memory`` is a dict kept for the episode.

Adding a factor type is adding a class here or in physical.py with ``@register_factor``; adding a perturbation
of an existing type is adding YAML.
"""
from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np

from ..errors import PerturbationError

FACTORS: dict[str, type["Factor"]] = {}


def register_factor(name: str):
    def wrap(cls):
        if name in FACTORS:
            raise ValueError(f"factor {name!r} registered twice")
        cls.NAME = name
        FACTORS[name] = cls
        return cls
    return wrap


def _vector(value, length: int, what: str) -> tuple[float, ...]:
    try:
        if isinstance(value, str):  # a colour name: its letters are no numbers
            raise TypeError
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise PerturbationError(f"{what} must be a list of {length} numbers, got {value!r}") from None
    if len(out) != length or not all(math.isfinite(v) for v in out):
        raise PerturbationError(f"{what} must be a list of {length} finite numbers, got {value!r}")
    return out


def _number(value, what: str) -> float:
    try:
        if isinstance(value, (bool, str)):  # float("1e3") and float(True) would pass
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        raise PerturbationError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise PerturbationError(f"{what} must be a finite number, got {value!r}")
    return number


def _whole(value, what: str) -> int:
    number = _number(value, what)
    if number != int(number):
        raise PerturbationError(f"{what} must be a whole number, got {value!r}")
    return int(number)


def _positive(value, what: str) -> float:
    value = _number(value, what)
    if not value > 0:
        raise PerturbationError(f"{what} must be a positive number, got {value!r}")
    return value


def _rgba(value, what: str) -> tuple[float, ...]:
    if isinstance(value, (list, tuple)) and len(value) == 3:  # opaque
        value = list(value) + [1.0]
    rgba = _vector(value, 4, what)
    if not all(0.0 <= c <= 1.0 for c in rgba):
        raise PerturbationError(f"{what} components must lie in [0, 1], got {list(rgba)}")
    return rgba


@dataclasses.dataclass(frozen=True)
class Factor:
    NAME: ClassVar[str] = ""
    # Changes only what a camera sees, never the scene's state or dynamics, so a policy that reads
    # no camera cannot notice it (test_every_perturbation checks both ways); the paper's table
    # counts the failures under these apart.
    APPEARANCE: ClassVar[bool] = False

    def rebuild_kwargs(self) -> dict:
        return {}

    def check(self, scene) -> None:
        """Raise PerturbationError if this scene cannot take the perturbation."""

    def apply(self, scene) -> None:
        pass

    def after_reset(self, scene, rng: np.random.Generator) -> None:
        pass

    def observe(self, images: dict, rng: np.random.Generator, memory: dict) -> None:
        pass

    def act(self, action: np.ndarray, rng: np.random.Generator, memory: dict) -> np.ndarray:
        return action


# ---------------------------------------------------------------------------- appearance
@dataclasses.dataclass(frozen=True)
class _Color(Factor):
    """Paints every visual geom of a role one colour (the texture is removed)."""
    rgba: tuple
    ROLE: ClassVar[str] = ""
    APPEARANCE: ClassVar[bool] = True

    def __post_init__(self):
        object.__setattr__(self, "rgba", _rgba(self.rgba, f"{self.NAME}.rgba"))

    def check(self, scene):
        scene.visual_geoms(self.ROLE)

    def apply(self, scene):
        ids = scene.visual_geoms(self.ROLE)
        scene.model.geom_rgba[ids] = self.rgba
        scene.model.geom_matid[ids] = -1


for _factor, _role in [("object_color", "object"), ("table_color", "table"), ("robot_color", "robot"),
                       ("floor_color", "floor"), ("wall_color", "walls")]:
    register_factor(_factor)(type(f"{_role.title()}Color", (_Color,), {"ROLE": _role, "__doc__": f"Colour of the {_role}."}))


@dataclasses.dataclass(frozen=True)
class _Texture(Factor):
    """Gives every visual geom of a role another material (texture) of the loaded model."""
    material: str
    ROLE: ClassVar[str] = ""
    APPEARANCE: ClassVar[bool] = True

    def __post_init__(self):
        if not isinstance(self.material, str) or not self.material:
            raise PerturbationError(f"{self.NAME}.material must be the name of a material of the scene, "
                                    f"got {self.material!r}")

    def check(self, scene):
        scene.visual_geoms(self.ROLE)
        scene.material_id(self.material)

    def apply(self, scene):
        ids = scene.visual_geoms(self.ROLE)
        scene.model.geom_matid[ids] = scene.material_id(self.material)
        scene.model.geom_rgba[ids] = (1.0, 1.0, 1.0, 1.0)


for _factor, _role in [("object_texture", "object"), ("table_texture", "table")]:
    register_factor(_factor)(type(f"{_role.title()}Texture", (_Texture,), {"ROLE": _role, "__doc__": f"Texture of the {_role}."}))


@register_factor("light_color")
@dataclasses.dataclass(frozen=True)
class LightColor(Factor):
    """Tints the scene lights (diffuse and headlight) by an RGB multiplier."""
    rgb: tuple
    APPEARANCE: ClassVar[bool] = True

    def __post_init__(self):
        rgb = _vector(self.rgb, 3, "light_color.rgb")
        if not all(0.0 <= c <= 1.0 for c in rgb):
            raise PerturbationError(f"light_color.rgb components must lie in [0, 1], got {list(rgb)}")
        object.__setattr__(self, "rgb", rgb)

    def apply(self, scene):
        m = scene.model
        m.light_diffuse[:] *= self.rgb
        m.light_specular[:] *= self.rgb
        m.vis.headlight.diffuse[:] = np.asarray(m.vis.headlight.diffuse) * self.rgb
        m.vis.headlight.ambient[:] = np.asarray(m.vis.headlight.ambient) * self.rgb


@register_factor("light_intensity")
@dataclasses.dataclass(frozen=True)
class LightIntensity(Factor):
    """Scales every light (diffuse, specular, ambient, headlight): < 1 dims, > 1 brightens."""
    scale: float
    APPEARANCE: ClassVar[bool] = True

    def __post_init__(self):
        object.__setattr__(self, "scale", _positive(self.scale, "light_intensity.scale"))

    def apply(self, scene):
        m = scene.model
        for arr in (m.light_diffuse, m.light_specular, m.light_ambient):
            arr[:] = np.clip(arr * self.scale, 0.0, 1.0)
        for name in ("diffuse", "ambient", "specular"):
            v = getattr(m.vis.headlight, name)
            v[:] = np.clip(np.asarray(v) * self.scale, 0.0, 1.0)


@register_factor("light_direction")
@dataclasses.dataclass(frozen=True)
class LightDirection(Factor):
    """Points the scene's lights along a new direction (world frame; normalised)."""
    direction: tuple
    APPEARANCE: ClassVar[bool] = True

    def __post_init__(self):
        x, y, z = _vector(self.direction, 3, "light_direction.direction")
        # In plain float arithmetic, not np.linalg.norm: BLAS's norm differs in the last bit between
        # CPUs, and the normalised direction is part of the catalog's definitions and digest, which a
        # run, a worker or a recorded ground truth made on another machine must match.
        norm = math.sqrt(x * x + y * y + z * z)
        if norm < 1e-9 or not math.isfinite(norm):
            raise PerturbationError(f"light_direction.direction must be a direction of about unit length (not zero, "
                                    f"nor so long its length overflows), got {self.direction!r}")
        object.__setattr__(self, "direction", (x / norm, y / norm, z / norm))

    def apply(self, scene):
        scene.model.light_dir[:] = self.direction


# ---------------------------------------------------------------------------------- camera
def _quat_mul(a, b):
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])


def _axis_quat(axis, degrees):
    half = math.radians(degrees) / 2
    return np.array([math.cos(half), *(math.sin(half) * np.asarray(axis, float))])


@register_factor("camera_position")
@dataclasses.dataclass(frozen=True)
class CameraPosition(Factor):
    """Moves a camera by an offset in metres (world frame)."""
    offset: tuple
    camera: str = "agentview"
    APPEARANCE: ClassVar[bool] = True

    def __post_init__(self):
        offset = _vector(self.offset, 3, "camera_position.offset")
        if np.linalg.norm(offset) > 1.0:
            raise PerturbationError(f"camera_position.offset {list(offset)} moves the camera more than 1 m; "
                                    "the scene would leave the frame")
        object.__setattr__(self, "offset", offset)

    def check(self, scene):
        cam = scene.camera_id(self.camera)
        body = scene.model.cam_bodyid[cam]
        if body != 0:
            return  # a camera on a moving body (eye-in-hand): offset is in that body's frame
        new_pos = scene.model.cam_pos[cam] + self.offset
        if scene.inside_table(new_pos):
            raise PerturbationError(f"camera_position {list(self.offset)} puts camera {self.camera!r} inside "
                                    f"the table (at {np.round(new_pos, 3).tolist()}); use a smaller offset")

    def apply(self, scene):
        scene.model.cam_pos[scene.camera_id(self.camera)] += self.offset


@register_factor("camera_orientation")
@dataclasses.dataclass(frozen=True)
class CameraOrientation(Factor):
    """Turns a camera about its own axes: yaw (about its up axis), pitch, roll, in degrees."""
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    camera: str = "agentview"
    APPEARANCE: ClassVar[bool] = True

    def __post_init__(self):
        for name in ("yaw", "pitch", "roll"):
            value = _number(getattr(self, name), f"camera_orientation.{name}")
            if not -90.0 <= value <= 90.0:
                raise PerturbationError(f"camera_orientation.{name} must lie in [-90, 90] degrees, got {value}")
            object.__setattr__(self, name, value)

    def check(self, scene):
        scene.camera_id(self.camera)

    def apply(self, scene):
        cam = scene.camera_id(self.camera)
        # MuJoCo cameras look along -z with y up: yaw about y, pitch about x, roll about z.
        q = _quat_mul(_axis_quat((0, 1, 0), self.yaw), _axis_quat((1, 0, 0), self.pitch))
        q = _quat_mul(q, _axis_quat((0, 0, 1), self.roll))
        scene.model.cam_quat[cam] = _quat_mul(scene.model.cam_quat[cam], q)


@register_factor("camera_fov")
@dataclasses.dataclass(frozen=True)
class CameraFov(Factor):
    """Sets a camera's vertical field of view (degrees)."""
    fovy: float
    camera: str = "agentview"
    APPEARANCE: ClassVar[bool] = True

    def __post_init__(self):
        fovy = _number(self.fovy, "camera_fov.fovy")
        if not 5.0 <= fovy <= 160.0:
            raise PerturbationError(f"camera_fov.fovy must lie in [5, 160] degrees, got {fovy}")
        object.__setattr__(self, "fovy", fovy)

    def check(self, scene):
        scene.camera_id(self.camera)

    def apply(self, scene):
        scene.model.cam_fovy[scene.camera_id(self.camera)] = self.fovy


# ------------------------------------------------------------------------- geometry/physics
