"""Scenes: the task registry and the perturbable robosuite scene."""
from .scene import Scene, keep_no_decoded_assets
from .tasks import TASKS, Task, get_task, register_task

__all__ = ["Scene", "keep_no_decoded_assets", "TASKS", "Task", "get_task", "register_task"]
