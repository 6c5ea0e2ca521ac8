"""robomimic checkpoints as policies under test.

robomimic checkpoints are Python pickles. torch loads them with ``weights_only`` (tensors,
numbers, strings and containers; nothing that runs code), which robomimic's own checkpoints
satisfy; every result records the sha256 of the checkpoint that produced it.
"""
from __future__ import annotations

import collections
import contextlib
import json
import os
import pathlib
import re

import numpy as np

from .. import interrupts
from ..errors import PolicyError, WrongTaskError, not_a_file
from ..scenes import TASKS
from ..scenes.scene import ARM_CONTROLLER, CONTROL_FREQ, ROBOT
from .base import register_policy_loader
from .training import sha256_of


# What robomimic reads first from a checkpoint's dictionary.
_CHECKPOINT_KEYS = ("algo_name", "config", "env_metadata", "shape_metadata", "model")


class RobomimicPolicy:
    """A robomimic RolloutPolicy behind the PolicyUnderTest protocol."""

    def __init__(self, path, task: str, device: str = "cpu"):
        path = pathlib.Path(path)
        if problem := checkpoint_problem(path):
            raise PolicyError(problem)
        import robomimic.utils.file_utils as FileUtils
        import torch
        torch.set_num_threads(1)  # one small network per worker; threads would fight the simulator
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise PolicyError(f"device {device!r} asked for, but torch sees no GPU here (torch.cuda.is_available() is "
                              "False); use device: cpu, or run where a GPU is (`robofail doctor` says what it sees)")
        try:
            ckpt = FileUtils.load_dict_from_checkpoint(str(path))
            if not isinstance(ckpt, dict):  # robomimic would index it as one (a tensor: a torch warning, then an IndexError)
                raise PolicyError(f"policy checkpoint {path} is a PyTorch file but not a robomimic checkpoint (it holds a "
                                  f"{type(ckpt).__name__}, not a dictionary); train the policy with robomimic "
                                  "(`robofail train-policy`), or serve your own model to the ROS system as a policy node "
                                  "(policy: external)")
            _check_algorithm(path, ckpt.get("algo_name"))
            with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):  # robomimic prints its obs spec
                self._policy, ckpt = FileUtils.policy_from_checkpoint(
                    ckpt_dict=ckpt, device=torch.device(device), verbose=False)
        except PolicyError:
            raise
        except Exception as exc:
            interrupts.reraise(exc)  # a Ctrl-C while torch loads is no corrupt checkpoint
            missing = exc.args[0] if isinstance(exc, KeyError) and exc.args else None
            if missing in _CHECKPOINT_KEYS:  # it unpickled: a PyTorch file of another kind
                raise PolicyError(f"policy checkpoint {path} is a PyTorch file but not a robomimic checkpoint (it has no "
                                  f"{missing!r} entry: a bare state_dict, or another library's checkpoint?); train the "
                                  "policy with robomimic (`robofail train-policy`), or serve your own model to the ROS "
                                  "system as a policy node (policy: external)") from None
            raise PolicyError(_load_failure(path, exc)) from None
        env_kwargs = ckpt.get("env_metadata", {}).get("env_kwargs", {})
        trained_on = env_kwargs.get("robofail_task") or ckpt.get("env_metadata", {}).get("env_name")
        if trained_on != task:
            fix = (f"test it with --task {trained_on}" if trained_on in TASKS else
                   f"robofail has no scene for {trained_on!r} (its tasks: {', '.join(TASKS)}); train a policy on one "
                   "of them (`robofail demos`, then `robofail train-policy`), or add the task to the task registry")
            raise WrongTaskError(f"policy checkpoint {path} was trained on task {trained_on!r}, not {task!r}; {fix}",
                                 trained_on)
        _check_robot_and_controller(path, env_kwargs)
        self.path = str(path)
        self.sha256 = sha256_of(path)
        self.name = path.stem
        self.algo = ckpt.get("algo_name")
        self.observation_keys = tuple(ckpt["shape_metadata"]["all_obs_keys"])
        self.cameras = tuple(k[: -len("_image")] for k in self.observation_keys if k.endswith("_image"))
        self.image_size = _image_size(path, ckpt["shape_metadata"]["all_shapes"], self.cameras)
        self.modality = ("image_proprio" if self.cameras and len(self.cameras) < len(self.observation_keys)
                         else "image" if self.cameras else "low_dim")
        config = ckpt["config"]  # robomimic stores it as JSON
        train = (json.loads(config) if isinstance(config, str) else config).get("train", {})
        self.frame_stack = int(train.get("frame_stack") or 1)
        self._frames: dict[str, collections.deque] = {}
        self._torch = torch
        import robomimic.utils.obs_utils as ObsUtils
        self._obs_utils = ObsUtils

    def start_episode(self, seed: int) -> None:
        self._torch.manual_seed(seed)
        self._policy.start_episode()
        self._frames = {}

    def act(self, obs: dict) -> np.ndarray:
        # robomimic's own env wrappers turn HWC uint8 images into CHW floats before the policy.
        ob = {k: self._obs_utils.process_obs(obs[k], obs_key=k) for k in self.observation_keys}
        if self.frame_stack > 1:  # robomimic's FrameStackWrapper: the last n, the first repeated at the start
            if not self._frames:
                self._frames = {k: collections.deque([v] * self.frame_stack, maxlen=self.frame_stack) for k, v in ob.items()}
            else:
                for k, v in ob.items():
                    self._frames[k].append(v)
            ob = {k: np.stack(frames) for k, frames in self._frames.items()}
        # Its RolloutPolicy records autograd graphs (for BC-RNN one spans every step of the RNN
        # horizon through the hidden state); a rollout needs none.
        with self._torch.inference_mode():
            return np.asarray(self._policy(ob=ob))


def checkpoint_problem(path) -> str | None:
    """What is wrong with a checkpoint path before it is read, or None."""
    problem = not_a_file(path, "checkpoint file")
    if problem is None:
        return None
    return (f"policy checkpoint {path} {problem}; give a .pth written by `robofail train-policy`, or a bundled "
            "name from `robofail policies`")


def _check_algorithm(path, algo) -> None:
    """A checkpoint of an algorithm this robomimic lacks (a newer one's diffusion policy, say) is no
    corrupt file: say so, and what to do instead."""
    import robomimic
    from robomimic.algo.algo import REGISTERED_ALGO_FACTORY_FUNCS as known  # filled by robomimic.algo's __init__
    if algo is not None and algo not in known:
        raise PolicyError(f"policy checkpoint {path} is of the robomimic algorithm {algo!r}, which robomimic "
                          f"{robomimic.__version__}, the version installed, does not have (it has {', '.join(sorted(known))}); "
                          "it was written by another robomimic: serve it to the ROS system from your own policy node "
                          "(policy: external), or retrain it here with `robofail train-policy`")


def _load_failure(path, exc: Exception) -> str:
    """What went wrong loading a checkpoint, in one line: torch's own message is a page of advice
    that ends in turning its safe loader off."""
    text = str(exc)
    refused = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if refused:
        return (f"policy checkpoint {path} holds a Python object ({refused.group(1)}) that torch will not load from "
                "a file, as loading it could run code (torch.load's weights_only); robomimic's checkpoints hold only "
                "tensors, numbers, strings and containers: save it again with that object converted (a numpy array "
                "with .tolist()), or retrain it with `robofail train-policy`")
    unpickler = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)  # bytes that are no pickle
    reason = unpickler.group(1) if unpickler else (text.strip().splitlines() or ["no message"])[0].split(". ")[0]
    return (f"policy checkpoint {path} could not be loaded as a robomimic checkpoint ({type(exc).__name__}: "
            f"{reason[:200]}); it may be truncated or corrupt, or not a checkpoint at all: re-download or retrain it")


def _check_robot_and_controller(path, env_kwargs: dict) -> None:
    """A policy trained on another robot, arm controller or control rate would run here without an
    error, its actions meaning something else: refused, naming what it was trained on."""
    robots = env_kwargs.get("robots", [ROBOT])
    robots = [robots] if isinstance(robots, str) else list(robots)
    controller = env_kwargs.get("controller_configs") or {}
    # robosuite 1.5 nests the arm's controller in a composite one; earlier versions do not.
    arm = (controller.get("body_parts") or {}).get("right", {}).get("type", controller.get("type", ARM_CONTROLLER))
    rate = env_kwargs.get("control_freq", CONTROL_FREQ)
    if robots != [ROBOT] or arm != ARM_CONTROLLER or rate != CONTROL_FREQ:
        raise PolicyError(f"policy checkpoint {path} was trained on {'+'.join(map(str, robots))} (arm controller {arm}, "
                          f"{rate} Hz); robofail's scenes run a {ROBOT} ({ARM_CONTROLLER}, {CONTROL_FREQ} Hz), where its "
                          "actions would mean something else: retrain it on demos from `robofail demos`")


def _image_size(path, shapes: dict, cameras) -> int | None:
    """The side of the square images the policy was trained on (robomimic records them CHW)."""
    sizes = {tuple(shapes[f"{camera}_image"][-2:]) for camera in cameras}
    if not sizes:
        return None
    if len(sizes) > 1 or any(h != w for h, w in sizes):
        raise PolicyError(f"policy checkpoint {path} reads camera images of {sorted(sizes)} (height, width) pixels; "
                          "robofail renders every camera at one square size: retrain on square images of one size")
    return int(sizes.pop()[0])


@register_policy_loader("robomimic")
def load_robomimic(path, task: str, device: str = "cpu"):
    if path is None:
        raise PolicyError("policy 'robomimic' needs its checkpoint: give robomimic:/path/model.pth or the .pth path itself")
    return RobomimicPolicy(path, task=task, device=device)
