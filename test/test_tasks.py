"""The tasks beyond Lift: Stack and PickPlaceCan (robosuite's), Reach and Push (ours, on Lift's
scene with a goal).

Each has a scripted expert that succeeds, a success check that a policy which does nothing
fails, and a goal that is seeded, observed and rendered. (That every catalog entry applies to
each of them: test_every_perturbation.py.)
"""
import numpy as np
import pytest

from robofail_ros.core.config import SearchConfig
from robofail_ros.core.episode import run_episode
from robofail_ros.core.errors import PolicyError
from robofail_ros.core.policies import load_policy
from robofail_ros.core.scenes import Scene
from robofail_ros.core.workers import WorkerSpec

pytestmark = [pytest.mark.render, pytest.mark.slow]
NEW_TASKS = ("Stack", "Reach", "Push", "PickPlaceCan")


class StandStill:
    name, cameras, observation_keys = "still", (), ()

    def start_episode(self, seed):
        pass

    def act(self, obs):
        return np.zeros(7)


@pytest.fixture(scope="module", params=NEW_TASKS)
def task_scene(request):
    scene = Scene(request.param, horizon=200)
    yield scene
    scene.close()


def test_the_scripted_expert_succeeds_in_at_least_9_of_10_seeded_episodes(task_scene):
    expert = load_policy("scripted", task=task_scene.task.name)
    outcomes = [run_episode(task_scene, expert, seed=seed) for seed in range(10)]
    assert sum(o.success for o in outcomes) >= 9, [(o.seed, o.steps) for o in outcomes]
    assert not any(o.sim_error for o in outcomes)


def test_a_policy_that_does_nothing_fails_so_success_means_the_task_was_done(task_scene):
    outcome = run_episode(task_scene.__class__(task_scene.task.name, horizon=30), StandStill(), seed=0)
    assert not outcome.success and outcome.steps == 30


class LateExpert(StandStill):
    """The scripted expert after 150 steps of standing still: a slow policy that still succeeds."""

    def __init__(self, task):
        self.expert, self.steps = load_policy("scripted", task=task), 0

    def start_episode(self, seed):
        self.steps = 0
        self.expert.start_episode(seed)

    def act(self, obs):
        self.steps += 1
        return super().act(obs) if self.steps <= 150 else self.expert.act(obs)


def test_a_slow_success_counts_within_the_task_s_own_horizon_and_the_config_can_shorten_it():
    """Stack's expert needs ~95 steps, so its horizon is robomimic's 400, not Lift's 200: a policy
    that succeeds at ~250 steps is not blamed for a failure it did not have."""
    assert SearchConfig(task="Stack").episode_horizon == 400 and SearchConfig(task="Lift").episode_horizon == 200
    assert SearchConfig(task="Stack", horizon=200).episode_horizon == 200
    assert WorkerSpec("Stack", "scripted", "catalog.yaml").horizon == 400  # a spec made by hand, as the scene
    slow = LateExpert("Stack")
    for horizon, succeeds in ((SearchConfig(task="Stack").episode_horizon, True), (200, False)):
        scene = Scene("Stack", horizon=None if succeeds else horizon)
        try:
            outcome = run_episode(scene, slow, seed=0)
        finally:
            scene.close()
        assert scene.horizon == horizon and outcome.success is succeeds, (horizon, outcome)
        assert outcome.steps > 200 if succeeds else outcome.steps == 200


@pytest.mark.parametrize("task", ["Reach", "Push"])
def test_the_goal_is_seeded_observed_and_drawn(task):
    scene = Scene(task, cameras=("agentview",))
    try:
        first, again, other = (scene.reset([], seed=s) for s in (4, 4, 5))
        assert np.array_equal(first["goal_pos"], again["goal_pos"]) and not np.allclose(first["goal_pos"], other["goal_pos"])
        assert first["object"].shape[0] == 13, "the object observation must carry the goal (cube 10 + goal 3)"
        np.testing.assert_allclose(first["object"][-3:], first["goal_pos"])
        scene.reset([], seed=4)
        marked = scene.render("agentview", 128).astype(int)
        scene.model.geom_rgba[scene.model.geom("goal_visual").id, 3] = 0.0  # hide the marker
        hidden = scene.render("agentview", 128).astype(int)
        greener = (marked[..., 1] - marked[..., 0]) - (hidden[..., 1] - hidden[..., 0])
        assert (greener > 40).sum() > 20, "the goal marker must show (green) in the agentview image"
    finally:
        scene.close()


def test_push_counts_only_a_cube_on_the_table_inside_the_goal():
    scene = Scene("Push")
    try:
        scene.reset([], seed=2)
        env = scene.env
        qpos = env.sim.data.get_joint_qpos(env.cube.joints[0]).copy()
        goal = env.goal_pos
        qpos[:2] = goal[:2]
        env.sim.data.set_joint_qpos(env.cube.joints[0], qpos)
        env.sim.forward()
        assert env._check_success()
        qpos[2] += 0.1  # held above the goal
        env.sim.data.set_joint_qpos(env.cube.joints[0], qpos)
        env.sim.forward()
        assert not env._check_success()
    finally:
        scene.close()


def test_a_task_without_an_expert_gets_a_clear_error():
    with pytest.raises(PolicyError, match="no scripted expert for task 'NutAssemblySquare'.*Lift"):
        load_policy("scripted", task="NutAssemblySquare")
