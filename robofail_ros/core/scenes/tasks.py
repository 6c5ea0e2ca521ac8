"""Task registry: the robosuite environments a scene can host, and where their parts are."""
from __future__ import annotations

import dataclasses
from typing import Callable

from ..errors import lookup


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    env_name: str  # robosuite environment
    manipulated_object: Callable  # env -> the MujocoObject the task is about
    object_key: str  # robosuite observation prefix of that object (e.g. "cube" -> cube_pos)
    # Regexes over geom names for the roles a perturbation can target.
    role_patterns: dict
    # robosuite constructor arguments a perturbation may change (each needs a new model).
    rebuildable: frozenset = frozenset()
    env_kwargs: dict = dataclasses.field(default_factory=dict)
    # Control steps (20 Hz) an episode gets unless the config names a horizon: robomimic's rollout
    # horizon, 400, where the scripted expert needs 60 steps or more; 200 where it needs under 45.
    horizon: int = 400


_COMMON_ROLES = {
    "robot": r"^(robot0_g\d+_vis|gripper0_.*visual)$",
    "floor": r"^floor$",
    "walls": r"^wall_.*_visual$",
}

TASKS: dict[str, Task] = {}


def _in_use(objects: Callable) -> Callable:
    """The one object of a multi-object robosuite scene that the task uses (``obj_to_use``): the
    others are parked out of sight (robosuite's single-object mode), so perturbing them does nothing."""
    return lambda env: next(o for o in objects(env) if o.name == env.obj_to_use)


def register_task(task: Task) -> Task:
    TASKS[task.name] = task
    return task


register_task(Task("Lift", "Lift", lambda env: env.cube, "cube",
                   {**_COMMON_ROLES, "table": r"^table_visual$"}, frozenset({"table_full_size"}), horizon=200))
register_task(Task("Stack", "Stack", lambda env: env.cubeA, "cubeA",
                   {**_COMMON_ROLES, "table": r"^table_visual$"}, frozenset({"table_full_size"})))
register_task(Task("Reach", "Reach", lambda env: env.cube, "cube",
                   {**_COMMON_ROLES, "table": r"^table_visual$"}, frozenset({"table_full_size"}), horizon=200))
register_task(Task("Push", "Push", lambda env: env.cube, "cube",
                   {**_COMMON_ROLES, "table": r"^table_visual$"}, frozenset({"table_full_size"})))
register_task(Task("PickPlaceCan", "PickPlaceCanTarget", _in_use(lambda env: env.objects), "Can",
                   {**_COMMON_ROLES, "table": r"^bin\d(_leg\d_visual)?$"}))
register_task(Task("NutAssemblySquare", "NutAssemblySquare", _in_use(lambda env: env.nuts), "SquareNut",
                   {**_COMMON_ROLES, "table": r"^table_visual$"}, frozenset({"table_full_size"})))


def get_task(name: str) -> Task:
    return lookup(TASKS, "task", name)
