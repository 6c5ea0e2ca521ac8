"""Scenes: the task registry and the perturbable robosuite scene."""
from .scene import Scene
from .tasks import TASKS, Task, get_task, register_task

__all__ = ["Scene", "TASKS", "Task", "get_task", "register_task"]
