"""Scripted demonstrations written in robomimic's hdf5 dataset format.

Layout (what robomimic's SequenceDataset reads)::

    data                 attrs: total (samples), env_args (JSON)
    data/demo_<i>        attrs: num_samples
        obs/<key>, next_obs/<key>, actions, rewards, dones, states
    mask/train, mask/valid   demo names

Images are stored losslessly with gzip, one chunk per demo and key (30% smaller than h5py's
automatic chunks; robomimic reads them unchanged). ``next_obs`` can be left out, as robomimic's
``dataset_states_to_obs.py --exclude-next-obs`` does: BC and BC-RNN never read it, BCQ does.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np

from .. import interrupts
from ..errors import ConfigError, check_writable
from ..files import written_whole
from ..episode import run_episode

# Low-dim keys every dataset carries (robomimic's names); images are added per camera.
LOW_DIM_KEYS = ("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "object")


@dataclasses.dataclass(frozen=True)
class DemoReport:
    path: str
    attempted: int
    kept: int  # successful demonstrations written
    samples: int

    @property
    def expert_success_rate(self) -> float:
        return self.kept / self.attempted if self.attempted else 0.0


def check_demo_request(out, episodes: int, seed: int = 0) -> None:
    """Refuses a demo file that exists (demos are never overwritten), one that cannot be written
    (found before the episodes run, not after), a count below one, and seeds out of range."""
    out = pathlib.Path(out)
    if out.exists():
        raise ConfigError(f"{out} exists; demos are never overwritten. Choose another --out or delete it")
    if episodes <= 0:
        raise ConfigError(f"--episodes must be positive, got {episodes}")
    if not 0 <= seed <= 2**32 - episodes:  # episode i runs with seed + i
        raise ConfigError(f"--seed must be in [0, {2**32 - episodes}] for {episodes} episodes (seeds seed .. "
                          f"seed + {episodes - 1}), got {seed}")
    check_writable(out)


def write_demos(scene, expert, episodes: int, out, seed: int = 0, valid_fraction: float = 0.1,
                exclude_next_obs: bool = False, progress=None) -> DemoReport:
    """Runs ``expert`` for ``episodes`` unperturbed episodes and writes the successful ones.

    Seeds are ``seed, seed+1, ...``; failed attempts are counted (the expert's success rate)
    and left out of the dataset.
    """
    out = pathlib.Path(out)
    check_demo_request(out, episodes, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    with written_whole(out) as partial:  # no half-written file is left to be taken for a dataset
        report = _record_demos(scene, expert, episodes, partial, seed, valid_fraction, exclude_next_obs, progress)
        interrupts.check()  # a Ctrl-C that a library swallowed on the way leaves no dataset either
    return dataclasses.replace(report, path=str(out))


def _record_demos(scene, expert, episodes, tmp, seed, valid_fraction, exclude_next_obs, progress) -> DemoReport:
    import h5py
    keys = list(LOW_DIM_KEYS) + [f"{cam}_image" for cam in scene.cameras]
    kept, samples = [], 0
    with h5py.File(tmp, "w") as f:
        data = f.create_group("data")
        for attempt in range(episodes):
            frames, actions, states = [], [], []

            def record(obs):
                frames.append({k: np.array(obs[k]) for k in keys})
                states.append(scene.env.sim.get_state().flatten())

            recording = _Recorder(expert, actions)
            outcome = run_episode(scene, recording, [], seed=seed + attempt, on_step=record)
            if progress:
                progress(attempt + 1, len(kept) + outcome.success)
            if not outcome.success:
                continue
            final = scene.env._get_observations(force_update=True)
            final = scene._observe(final)
            frames.append({k: np.array(final[k]) for k in keys})
            n = len(actions)
            demo = data.create_group(f"demo_{len(kept)}")
            demo.attrs["num_samples"] = n
            demo.attrs["seed"] = seed + attempt
            groups = (("obs", slice(0, n)),) + (() if exclude_next_obs else (("next_obs", slice(1, n + 1)),))
            for group, sl in groups:
                g = demo.create_group(group)
                for k in keys:
                    arr = np.stack([fr[k] for fr in frames[sl]])
                    if arr.dtype == np.uint8:
                        g.create_dataset(k, data=arr, compression="gzip", compression_opts=9, chunks=arr.shape)
                    else:
                        g.create_dataset(k, data=arr)
            demo.create_dataset("actions", data=np.array(actions))
            demo.create_dataset("states", data=np.array(states))
            rewards = np.zeros(n)
            rewards[-1] = 1.0
            demo.create_dataset("rewards", data=rewards)
            demo.create_dataset("dones", data=rewards.astype(int))
            kept.append(demo.name.split("/")[-1])
            samples += n
        data.attrs["total"] = samples
        data.attrs["env_args"] = json.dumps({
            "env_name": scene.task.env_name, "type": 1,
            "env_kwargs": {"robots": ["Panda"], "control_freq": scene.control_freq, "camera_names": list(scene.cameras),
                           "camera_heights": scene.image_size, "camera_widths": scene.image_size,
                           "has_offscreen_renderer": bool(scene.cameras), "use_camera_obs": bool(scene.cameras),
                           "reward_shaping": False, "robofail_task": scene.task.name}})
        n_valid = max(1, int(round(valid_fraction * len(kept)))) if len(kept) > 1 else 0
        f.create_dataset("mask/valid", data=np.array(kept[:n_valid], dtype="S"))
        f.create_dataset("mask/train", data=np.array(kept[n_valid:], dtype="S"))
    return DemoReport(str(tmp), episodes, len(kept), samples)


class _Recorder:
    """Wraps a policy and keeps every action it takes."""

    def __init__(self, policy, actions: list):
        self.policy, self.actions = policy, actions
        self.name, self.cameras = policy.name, policy.cameras
        self.observation_keys = policy.observation_keys

    def start_episode(self, seed):
        self.policy.start_episode(seed)

    def act(self, obs):
        action = self.policy.act(obs)
        self.actions.append(np.array(action))
        return action
