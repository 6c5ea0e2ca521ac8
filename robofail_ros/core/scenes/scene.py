"""A perturbable robosuite scene with an episode API a policy loop drives.

    scene = Scene("Lift", cameras=("agentview",))
    obs = scene.reset(["red_table", "heavy_cube"], seed=3)
    while not scene.done:
        obs = scene.step(policy(obs))
    scene.success, scene.steps, scene.sim_error

Perturbations are applied in place on the loaded MuJoCo model (colours, lights, cameras, masses,
sizes...) and restored from a pristine copy before every reset, so they persist for exactly one
episode. Only factors that need another model (table size) build one, and that model is cached.
"""
from __future__ import annotations

import ctypes
import logging
import os
import re
from typing import Sequence

import numpy as np

from .. import interrupts
from ..errors import ConfigError, PerturbationError, PolicyError, lookup
from ..perturbations import Catalog, Perturbation
from .tasks import get_task


def _return_freed_heap() -> None:
    """Gives the heap that building a model freed back to the OS (glibc keeps it otherwise):
    MuJoCo's compiler frees ~130 MB of its working memory for the Panda scenes, which a worker
    would hold for its whole life."""
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # this process's C library (glibc has it)
    if trim is not None:
        trim(0)


def keep_no_decoded_assets() -> None:
    """For a process that builds each model once (a worker, a sim node): MuJoCo keeps every
    mesh and texture it decodes in a process-wide cache (512 MB at most) to speed up compiling the
    same assets again; for the Panda scenes that is ~105 MB held for the process's life and part
    of its peak while compiling. A rebuild then decodes again (~1.5 s more per model variant here)."""
    import mujoco
    # One byte: nothing fits. (A capacity of 0 crashed MuJoCo 3.3.7's compiler here.)
    mujoco.mj_setCacheCapacity(mujoco.mj_getCache(), 1)


def _import_robosuite():
    """Imports robosuite with headless rendering and upright (OpenCV-convention) images."""
    if "MUJOCO_GL" not in os.environ:
        # EGL drives a GPU where there is one; Mesa's OSMesa is the faster of the two on a CPU.
        os.environ["MUJOCO_GL"] = "egl" if os.path.exists("/dev/nvidia0") else "osmesa"
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
    import robosuite
    from robosuite import macros

    macros.IMAGE_CONVENTION = "opencv"
    logging.getLogger("robosuite_logs").setLevel(logging.ERROR)
    import mujoco
    # MuJoCo prints each warning and appends it to MUJOCO_LOG.TXT in the current folder: a
    # perturbation that blew up the simulation left that file in the user's folder and its text
    # across the progress bar. The scene counts the warnings in its data (the episode's simulator
    # error names them); their text goes to this logger.
    mujoco.set_mju_user_warning(logging.getLogger("robofail.mujoco").debug)
    from . import goal_tasks  # noqa: F401  (registers Reach, Push and PickPlaceCanTarget with robosuite)
    return robosuite


IMAGE_SIZE = 84  # side of the camera images, in pixels, when the policy does not say (robomimic's datasets use 84)
IMAGE_SIZES = range(16, 2049)  # what MuJoCo's offscreen buffer renders (it fails on 0 and on huge sizes)
ROBOT = "Panda"  # every scene's robot
ARM_CONTROLLER = "OSC_POSE"  # its arm controller: 6 end-effector deltas, then the gripper
CONTROL_FREQ = 20  # control steps per simulated second (robomimic's datasets use 20)
# Model arrays any factor may edit; the scene restores them before each episode.
_MODEL_ARRAYS = ("geom_rgba", "geom_matid", "geom_size", "geom_rbound", "geom_aabb", "geom_pos",
                 "geom_friction", "body_mass", "body_inertia", "light_diffuse", "light_specular",
                 "light_ambient", "light_dir", "cam_pos", "cam_quat", "cam_fovy")
_HEADLIGHT = ("diffuse", "ambient", "specular")
_SIM_WARNINGS = ("mjWARN_BADQACC", "mjWARN_BADQVEL", "mjWARN_BADQPOS", "mjWARN_BADCTRL")


class _LoadedModel:
    """One robosuite environment and a pristine copy of every array a factor may edit."""

    def __init__(self, env):
        self.env = env
        m = env.sim.model._model
        self.pristine = {name: getattr(m, name).copy() for name in _MODEL_ARRAYS}
        self.pristine_headlight = {n: np.array(getattr(m.vis.headlight, n)) for n in _HEADLIGHT}
        self.pristine_init_noise = [dict(r.initialization_noise) for r in env.robots]

    def restore(self):
        m = self.env.sim.model._model
        for name, value in self.pristine.items():
            getattr(m, name)[...] = value
        for name, value in self.pristine_headlight.items():
            getattr(m.vis.headlight, name)[:] = value
        for robot, noise in zip(self.env.robots, self.pristine_init_noise):
            robot.initialization_noise = dict(noise)


class Scene:
    """A robosuite task whose model perturbations can change between episodes.

    Args:
        task: a name from ``TASKS`` (Lift, Stack, PickPlaceCan, NutAssemblySquare).
        catalog: the perturbations this scene offers (default: the bundled catalog for the task).
        cameras: cameras rendered into every observation (``<camera>_image``); empty for
            low-dim policies, which makes stepping several times faster.
        image_size: side of the square camera images, in pixels.
        horizon: control steps after which an episode ends unsuccessfully (default: the task's own).
        stop_at_success: end the episode at the first successful step (the default for search).
        render_quality: "default", or "fast" (no shadows or reflections: about 2x the renders/s).
        control_freq: control steps per simulated second.
    """

    @classmethod
    def for_policy(cls, task: str, policy, **kwargs) -> "Scene":
        """The scene a policy under test sees: its cameras, at the image size it was trained on."""
        return cls(task, cameras=policy.cameras, image_size=getattr(policy, "image_size", None) or IMAGE_SIZE, **kwargs)

    def __init__(self, task: str, catalog: Catalog | None = None, cameras: Sequence[str] = (),
                 image_size: int = IMAGE_SIZE, horizon: int | None = None, stop_at_success: bool = True,
                 render_quality: str = "default", control_freq: int = CONTROL_FREQ):
        self.task = get_task(task)
        self.catalog = (catalog or Catalog.load()).for_task(self.task.name)
        if render_quality not in ("default", "fast"):
            raise PerturbationError(f"render_quality must be 'default' or 'fast', got {render_quality!r}")
        horizon = self.task.horizon if horizon is None else horizon
        if horizon <= 0:
            raise PerturbationError(f"horizon must be positive, got {horizon}")
        if image_size not in IMAGE_SIZES:
            raise PerturbationError(f"camera images must be {IMAGE_SIZES.start} to {IMAGE_SIZES[-1]} pixels wide, "
                                    f"got {image_size}")
        self.cameras = tuple(cameras)
        self.image_size = image_size
        self.horizon = horizon
        self.stop_at_success = stop_at_success
        self.render_quality = render_quality
        self.control_freq = control_freq
        self._robosuite = _import_robosuite()
        self._models: dict[tuple, _LoadedModel] = {}
        self._loaded = self._model_for({})
        self.applied: tuple[str, ...] = ()
        self.steps = 0
        self.success = False
        self.sim_error: str | None = None
        self._rng = np.random.default_rng(0)
        self._memories: list[dict] = []
        self._active: list[Perturbation] = []
        for p in self.catalog:  # every offered perturbation must fit this scene, before anything runs
            self._check(p)

    # ------------------------------------------------------------------ model access (factors)
    @property
    def env(self):
        return self._loaded.env

    @property
    def model(self):
        return self.env.sim.model._model

    @property
    def data(self):
        return self.env.sim.data._data

    def _geoms_matching(self, pattern: str) -> np.ndarray:
        """Geoms whose name matches; an unnamed visual-only geom matches by its body's name
        (robosuite leaves some surfaces, like PickPlace's bins, unnamed)."""
        import mujoco
        m, rx = self.model, re.compile(pattern)
        ids = []
        for i in range(m.ngeom):
            name = mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_GEOM, i)
            if name is None and m.geom_contype[i] == 0 and m.geom_conaffinity[i] == 0:
                name = mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_BODY, m.geom_bodyid[i]) or ""
            if name and rx.match(name):
                ids.append(i)
        return np.array(ids, dtype=int)

    def visual_geoms(self, role: str) -> np.ndarray:
        """Geom ids a colour/texture of ``role`` (object, table, robot, floor, walls) changes."""
        if role == "object":
            obj = self.task.manipulated_object(self.env)
            ids = np.array([self.env.sim.model.geom_name2id(g) for g in obj.visual_geoms], dtype=int)
        else:
            ids = self._geoms_matching(lookup(self.task.role_patterns, "scene role", role))
        if ids.size == 0:
            raise PerturbationError(f"task {self.task.name} has no {role} geoms to perturb")
        return ids

    def object_geoms(self) -> np.ndarray:
        """All geoms (collision and visual) of the task's manipulated object."""
        obj = self.task.manipulated_object(self.env)
        return np.array([self.env.sim.model.geom_name2id(g) for g in obj.contact_geoms + obj.visual_geoms], dtype=int)

    def object_body(self) -> int:
        return self.env.sim.model.body_name2id(self.task.manipulated_object(self.env).root_body)

    def object_half_height(self) -> float:
        """Half height of the unperturbed object (from its collision geoms' bounding boxes)."""
        obj = self.task.manipulated_object(self.env)
        ids = [self.env.sim.model.geom_name2id(g) for g in obj.contact_geoms]
        aabb, pos = self._loaded.pristine["geom_aabb"], self._loaded.pristine["geom_pos"]
        return float(max(pos[i, 2] + aabb[i, 5] for i in ids))

    def shift_object(self, dx: float = 0.0, dy: float = 0.0, dz: float = 0.0, dyaw_degrees: float = 0.0):
        """Moves the object's free joint (after reset) and recomputes the derived state."""
        import mujoco
        joint = self.task.manipulated_object(self.env).joints[0]
        qpos = np.array(self.env.sim.data.get_joint_qpos(joint), dtype=float)
        qpos[:3] += (dx, dy, dz)
        if dyaw_degrees:
            half = np.radians(dyaw_degrees) / 2
            turned = np.empty(4)
            mujoco.mju_mulQuat(turned, np.array([np.cos(half), 0, 0, np.sin(half)]), qpos[3:7])
            qpos[3:7] = turned
        self.env.sim.data.set_joint_qpos(joint, qpos)
        self.env.sim.forward()

    def material_id(self, name: str) -> int:
        import mujoco
        mid = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_MATERIAL, name)
        if mid < 0:
            names = [mujoco.mj_id2name(self.model, mujoco.mjtObj.mjOBJ_MATERIAL, i) for i in range(self.model.nmat)]
            lookup({n: n for n in names if not n.startswith("robot0_")}, f"material of task {self.task.name}", name)
        return mid

    def camera_id(self, name: str) -> int:
        import mujoco
        cid = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, name)
        if cid < 0:
            names = [mujoco.mj_id2name(self.model, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in range(self.model.ncam)]
            lookup({n: n for n in names}, f"camera of task {self.task.name}", name)
        return cid

    def inside_table(self, point) -> bool:
        """Whether a world point lies within the table top or below it, inside its footprint."""
        ids = self._geoms_matching(r"^table_collision$")
        if ids.size == 0:
            return False
        centre, half = self.data.geom_xpos[ids[0]], self.model.geom_size[ids[0]]
        p = np.asarray(point)
        return bool(abs(p[0] - centre[0]) <= half[0] and abs(p[1] - centre[1]) <= half[1] and p[2] <= centre[2] + half[2])

    # ---------------------------------------------------------------------------- episodes
    def _model_for(self, rebuild: dict) -> _LoadedModel:
        key = tuple(sorted(rebuild.items()))
        if key not in self._models:
            with interrupts.deferred():  # a model half-built by a Ctrl-C fails in robosuite's finalisers
                try:
                    env = self._make_env(rebuild, self.cameras)
                except ValueError as exc:  # robosuite: "Current sensor for observable <camera>_image is invalid."
                    if self.cameras and "_image is invalid" in str(exc):
                        self._refuse_unknown_cameras(rebuild)
                    raise
                env.reset()  # creates the render context of a scene with cameras
                self._models[key] = _LoadedModel(env)
                if self.cameras:
                    self._set_quality(env.sim._render_context_offscreen)
            _return_freed_heap()
        return self._models[key]

    def _make_env(self, rebuild: dict, cameras):
        # A scene without cameras renders only when asked (a report's gallery, a searcher's
        # image): its GL context, ~0.5 GB with the robot's meshes on a software renderer, is
        # made then (_render_context), not here.
        return self._robosuite.make(
            self.task.env_name, robots=ROBOT, has_renderer=False, has_offscreen_renderer=bool(cameras),
            use_camera_obs=bool(cameras), camera_names=list(cameras) or "agentview",
            camera_heights=self.image_size, camera_widths=self.image_size,
            control_freq=self.control_freq, horizon=self.horizon, ignore_done=True, hard_reset=False,
            reward_shaping=False, seed=0, **self.task.env_kwargs, **rebuild)

    def _refuse_unknown_cameras(self, rebuild: dict):
        """Names the camera the task's scene lacks, and the ones it has (a camera-less build lists them)."""
        env = self._make_env(rebuild, ())
        names = list(env.sim.model.camera_names)
        env.close()
        for camera in self.cameras:
            lookup({n: n for n in names}, f"camera of task {self.task.name}", camera)

    def _check(self, p: Perturbation):
        try:
            p.factor.check(self)
        except PerturbationError as exc:
            raise PerturbationError(f"{p.source}: perturbation {p.name!r}: {exc}") from None

    def resolve(self, names: Sequence[str]) -> list[Perturbation]:
        """The catalog entries for these names, checked to be applicable together."""
        if isinstance(names, str):
            names = [names]
        chosen = [self.catalog[n] for n in names]
        if len(set(names)) != len(names):
            raise PerturbationError(f"perturbation list {list(names)} names one perturbation twice")
        rebuild: dict = {}
        for p in chosen:
            for key, value in p.factor.rebuild_kwargs().items():
                if key in rebuild and rebuild[key] != value:
                    raise PerturbationError(f"perturbations {list(names)} set {key} twice; apply one of them")
                rebuild[key] = value
        return chosen

    def apply(self, perturbations: Sequence[str]) -> list[Perturbation]:
        """Restores the pristine model (rebuilt, and cached, when a factor needs another model) and
        applies these perturbations to it in place; reset() does this before starting an episode."""
        chosen = self.resolve(perturbations)
        rebuild = {}
        for p in chosen:
            rebuild.update(p.factor.rebuild_kwargs())
        self._loaded = self._model_for(rebuild)
        self._loaded.restore()
        for p in chosen:
            p.factor.apply(self)
        return chosen

    def reset(self, perturbations: Sequence[str] = (), seed: int = 0) -> dict:
        """Starts an episode with these perturbations (catalog names) applied; returns the first observation."""
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"an episode's seed must be a whole number >= 0, got {seed!r}")
        chosen = self.apply(perturbations)
        if self.cameras:  # camera observations render at reset; other scenes make no context until render()
            self._make_current()
        # One seed fixes everything random: robosuite's placement and robot-noise generator
        # (shared by reference, so it is re-seeded in place) and our factors' generator.
        self.env.rng.bit_generator.state = np.random.default_rng(seed).bit_generator.state
        self._rng = np.random.default_rng([seed, 1])
        obs = self.env.reset()
        shifted = False
        for p in chosen:
            before = self.data.qpos.copy()
            p.factor.after_reset(self, self._rng)
            shifted |= not np.array_equal(before, self.data.qpos)
        if shifted:
            obs = self.env._get_observations(force_update=True)
        self._active = chosen
        self._memories = [{} for _ in chosen]
        self.applied = tuple(p.name for p in chosen)
        self.steps, self.success, self.sim_error = 0, False, None
        self._warnings = self._warning_counts()
        return self._observe(obs)

    @property
    def action_dim(self) -> int:
        return int(self.env.action_spec[0].shape[0])

    @property
    def done(self) -> bool:
        return (self.sim_error is not None or self.steps >= self.horizon
                or (self.stop_at_success and self.success))

    def step(self, action) -> dict:
        """Applies one action (after the active actuation perturbations); returns the next observation."""
        action = np.asarray(action, dtype=float).reshape(-1)
        if action.shape[0] != self.action_dim:
            raise PolicyError(f"action has {action.shape[0]} entries but task {self.task.name} "
                              f"({ROBOT}, {ARM_CONTROLLER} + gripper) takes {self.action_dim}")
        if not np.all(np.isfinite(action)):  # the policy's fault, not the simulator's: never a sim error
            raise PolicyError(f"the policy's action at step {self.steps} is not finite ({action.tolist()}); "
                              "the policy under test is broken (check its checkpoint and observation normalisation)")
        if self.done:
            raise RuntimeError("step() after the episode ended; call reset() first")
        for p, memory in zip(self._active, self._memories):
            action = p.factor.act(action, self._rng, memory)
        if self.cameras:  # a step renders only camera observations: low-dim scenes skip the GL switch
            self._make_current()
        try:
            obs, _, _, _ = self.env.step(action)
        except Exception as exc:  # MuJoCo raises on unrecoverable states
            interrupts.reraise(exc)
            self.sim_error = f"{type(exc).__name__}: {exc}"
            obs = {}
        self.steps += 1
        if self.sim_error is None:
            self.sim_error = self._health()
        if self.sim_error is None:
            self.success = bool(self.env._check_success())
        return self._observe(obs) if obs else obs

    def _set_quality(self, context):
        if self.render_quality == "fast":
            import mujoco
            context.scn.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            context.scn.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0

    def _render_context(self):
        """The loaded model's offscreen GL context, made on first use as robosuite makes it at reset."""
        sim = self.env.sim
        if sim._render_context_offscreen is None:
            from robosuite.utils.binding_utils import MjRenderContextOffscreen
            with interrupts.deferred():  # one half-made by a Ctrl-C fails in its finaliser at exit
                MjRenderContextOffscreen(sim, device_id=-1)  # registers itself with sim
            sim._render_context_offscreen.vopt.geomgroup[0] = 0  # collision meshes hidden, visual shown
            sim._render_context_offscreen.vopt.geomgroup[1] = 1
            self._set_quality(sim._render_context_offscreen)
        return sim._render_context_offscreen

    def _make_current(self):
        """Makes this scene's GL context the current one: robosuite renders into whichever context
        is current, which after another scene (or another model of this one) was built is not ours."""
        self._render_context().gl_ctx.make_current()

    def _warning_counts(self) -> np.ndarray:
        import mujoco
        return np.array([self.data.warning[getattr(mujoco.mjtWarning, w)].number for w in _SIM_WARNINGS])

    def _health(self) -> str | None:
        if not (np.all(np.isfinite(self.data.qpos)) and np.all(np.isfinite(self.data.qvel))):
            return "simulator state became NaN/inf"
        new = self._warning_counts() - self._warnings
        if new.any():
            return "MuJoCo instability warnings: " + ", ".join(
                f"{w} x{n}" for w, n in zip(_SIM_WARNINGS, new) if n)
        return None

    def _observe(self, obs: dict) -> dict:
        obs = dict(obs)
        key = self.task.object_key
        if "object-state" in obs:
            obs["object"] = obs["object-state"]  # robomimic's name for it
        images = {k: v for k, v in obs.items() if k.endswith("_image")}
        for p, memory in zip(self._active, self._memories):
            p.factor.observe(images, self._rng, memory)
        obs.update(images)
        obs.setdefault(f"{key}_pos", obs.get(f"{key}_pos"))
        return obs

    def render(self, camera: str = "agentview", size: int = 256) -> np.ndarray:
        """An RGB image (size x size, upright) of the current state, with image perturbations applied."""
        self.camera_id(camera)
        self._make_current()
        img = self.env.sim.render(camera_name=camera, width=size, height=size)[::-1].copy()
        images = {camera: img}
        for p in self._active:
            p.factor.observe(images, np.random.default_rng(0), {})
        return images[camera]

    def close(self):
        for loaded in self._models.values():
            context = loaded.env.sim._render_context_offscreen
            if context is not None:
                # MuJoCo frees a render context's textures and meshes in whichever GL context is
                # current (robosuite does it when the context is collected): another scene's, if
                # that one rendered last, and its renders come out garbled from then on.
                context.gl_ctx.make_current()
                context.con.free()
            loaded.env.close()
        self._models.clear()
