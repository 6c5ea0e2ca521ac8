"""Replaying a recorded episode from its seed: the same scene, perturbations and policy give
the same outcome, and the frames show how the policy failed.

    replay = replay_episode("runs/A", episode_id=37)
    replay.reproduced          # True when success and steps match the run store
    write_clip(replay.frames, "clip.mp4")
"""
from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

from .episode import EpisodeOutcome, run_episode
from .errors import ConfigError, PolicyError, check_new_output
from .files import written_whole
from .perturbations import DEFAULT_CATALOG, Catalog
from .policies import load_policy
from .scenes import Scene
from .store import RunStore, perturbation_differences


@dataclasses.dataclass
class Replay:
    recorded: EpisodeOutcome
    outcome: EpisodeOutcome
    frames: list  # RGB frames of the agentview camera, one every ``frame_every`` steps
    frame_steps: list  # the control step of each frame
    steps: list  # (what the policy saw, what it did) per control step

    @property
    def reproduced(self) -> bool:
        return (self.outcome.success, self.outcome.steps, self.outcome.sim_error is None) == \
               (self.recorded.success, self.recorded.steps, self.recorded.sim_error is None)


class _Recording:
    """The policy under test, with every observation it read and every action it took kept."""

    def __init__(self, policy):
        self.policy, self.name = policy, policy.name
        self.cameras, self.observation_keys = policy.cameras, policy.observation_keys
        self.steps: list = []

    def start_episode(self, seed: int) -> None:
        self.steps = []
        self.policy.start_episode(seed)

    def act(self, obs: dict):
        action = self.policy.act(obs)
        self.steps.append(({k: obs[k] for k in self.observation_keys}, np.asarray(action)))
        return action


def replay_command(run_folder, episode_id: int) -> str:
    return f"robofail replay {run_folder} --episode {episode_id} --out episode_{episode_id}.mp4"


class Replayer:
    """Replays episodes of one run: the policy is loaded and the scene built once for all of them
    (building a robosuite scene costs about a second; the report replays several episodes)."""

    def __init__(self, run_folder, camera: str = "agentview"):
        store = RunStore.open(run_folder)
        try:
            record = store.record
            self.recorded = {o.episode_id: o for o in store.outcomes()}
        finally:
            store.close()
        self.run_folder, self.camera = run_folder, camera
        config, recorded = record.search_config, record.policy
        self.policy = load_policy(recorded.spec, task=config.task, device=config.device)
        if recorded.sha256 and getattr(self.policy, "sha256", None) != recorded.sha256:
            raise PolicyError(f"policy {recorded.spec!r} now has sha256 {getattr(self.policy, 'sha256', None)}, but run "
                              f"{run_folder} used {recorded.sha256}; restore that checkpoint to replay its episodes")
        catalog = Catalog.load(config.catalog or DEFAULT_CATALOG)
        now = catalog.for_task(config.task).definitions()
        differences = perturbation_differences(record.perturbations,
                                               {name: now[name] for name in record.perturbations if name in now})
        if differences:  # the episode would run another scene than the one recorded
            raise ConfigError(f"run {run_folder}'s perturbations are defined otherwise now ({differences}); restore the "
                              f"catalog it ran ({catalog.path}) to replay its episodes")
        self.scene = Scene.for_policy(config.task, self.policy, catalog=catalog, horizon=config.episode_horizon,
                                      render_quality=config.render_quality)

    def replay(self, episode_id: int, frame_size: int = 256, frame_every: int = 4) -> Replay:
        """Runs episode ``episode_id`` again with its recorded seed and perturbations."""
        if episode_id not in self.recorded:
            ids = sorted(self.recorded)
            span = f"{ids[0]}..{ids[-1]}" if ids else "none yet"
            raise ConfigError(f"run {self.run_folder} has no episode {episode_id} (recorded ids: {span})")
        episode, scene, frames, frame_steps = self.recorded[episode_id], self.scene, [], []
        policy = _Recording(self.policy)

        def record(obs):
            if scene.steps % frame_every == 0:
                frames.append(scene.render(self.camera, frame_size))
                frame_steps.append(scene.steps)

        outcome = run_episode(scene, policy, episode.perturbations, episode.seed, on_step=record,
                              episode_id=episode_id, worker="replay")
        frames.append(scene.render(self.camera, frame_size))  # the final state
        frame_steps.append(scene.steps)
        return Replay(episode, outcome, frames, frame_steps, policy.steps)

    def close(self):
        self.scene.close()


def replay_episode(run_folder, episode_id: int, frame_size: int = 256, frame_every: int = 4) -> Replay:
    """Runs episode ``episode_id`` of a run again with its recorded seed and perturbations.

    The policy is loaded from the run's recorded spec and must have the recorded sha256.
    """
    replayer = Replayer(run_folder)
    try:
        return replayer.replay(episode_id, frame_size, frame_every)
    finally:
        replayer.close()


CLIP_FORMATS = (".mp4", ".gif", ".png", ".mcap")  # .mcap: mcap_record.write_mcap


def check_clip_out(out, formats=CLIP_FORMATS) -> None:
    """Refuses a clip path that exists, has a format no writer here knows, or cannot be written:
    before the episode is replayed, not after."""
    if pathlib.Path(out).suffix not in formats:
        raise ConfigError(f"unsupported clip format {pathlib.Path(out).suffix!r}; use "
                          f"{', '.join(formats)} (.png: a frame strip)")
    check_new_output(out)


def write_clip(frames, out, fps: int = 10) -> pathlib.Path:
    """Writes frames as a video (.mp4, .gif) or, for .png, as a strip of up to 6 frames."""
    import imageio.v2 as imageio
    out = pathlib.Path(out)
    check_clip_out(out, (".mp4", ".gif", ".png"))
    with written_whole(out) as partial:  # a Ctrl-C mid-write leaves no broken clip that "exists" refuses
        if out.suffix == ".png":
            imageio.imwrite(partial, frame_strip(frames))
        else:
            kwargs = {"fps": fps, "macro_block_size": 1} if out.suffix == ".mp4" else {"duration": 1000 / fps, "loop": 0}
            imageio.mimwrite(partial, [np.asarray(f) for f in frames], **kwargs)
    return out


def frame_strip(frames, count: int = 6) -> np.ndarray:
    """``count`` frames evenly spread over the episode (the last one included), side by side."""
    picks = np.linspace(0, len(frames) - 1, num=min(count, len(frames))).round().astype(int)
    return np.concatenate([frames[i] for i in picks], axis=1)
