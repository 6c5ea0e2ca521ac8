"""Every entry of the bundled catalog, on every task with a scripted expert, checked the same way: it applies, it changes what its
factor is for (and, for appearance factors, nothing of the scene's state), the next episode
without it is the pristine scene again, and the same seed gives the same scene."""
import numpy as np
import pytest

from robofail_ros.core.perturbations import FACTORS, Catalog

pytestmark = [pytest.mark.render]
TASKS = ("Lift", "Stack", "Reach", "Push", "PickPlaceCan")
# Lift's entries are the unit tier; the other tasks' (same checks, 3x the time) run with the slow tests.
ENTRIES = [pytest.param(task, name, marks=[pytest.mark.slow] if task != "Lift" else [])
           for task in TASKS for name in Catalog.load().for_task(task).names]
# Factors flagged as changing only how the scene looks (or what the policy's camera shows): the test
# holds each flag to it, and every other factor to changing the scene's state, dynamics or actions.
APPEARANCE = {name for name, factor in FACTORS.items() if factor.APPEARANCE}
SEED = 3


def snapshot(scene, names):
    obs = scene.reset(names, seed=SEED)
    model = scene.model
    return {"qpos": scene.data.qpos.copy(), "image": obs["agentview_image"].copy(),
            "low_dim": np.concatenate([np.ravel(obs[k]) for k in sorted(obs) if not k.endswith("_image")]),
            "dynamics": np.concatenate([model.body_mass, model.geom_friction.ravel()]).copy()}


def same(a, b):
    return all(np.array_equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def scenes(lift_scene):
    from robofail_ros.core.scenes import Scene
    built = {"Lift": lift_scene}

    def scene_of(task):
        if task not in built:
            built[task] = Scene(task, cameras=("agentview",))
        return built[task]
    yield scene_of
    for task, scene in built.items():
        if task != "Lift":
            scene.close()


@pytest.mark.parametrize("task,name", ENTRIES)
def test_every_catalog_entry_applies_changes_what_it_should_resets_cleanly_and_is_seeded(scenes, task, name):
    scene = scenes(task)
    factor = scene.catalog[name].factor_name
    pristine = snapshot(scene, [])
    first = snapshot(scene, [name])
    assert same(first, snapshot(scene, [name])), "the same seed must give the same perturbed scene"
    assert same(snapshot(scene, []), pristine), "the next unperturbed episode must be the pristine scene"
    changed = {k for k in first if not np.array_equal(first[k], pristine[k])}
    if factor in APPEARANCE:
        assert "image" in changed, f"{name} must change what the camera sees"
        assert not changed & {"qpos", "low_dim", "dynamics"}, f"{name} is an appearance factor but changed {changed}"
    elif factor.startswith("actuation"):
        assert not changed, f"{name} acts on actions only, but changed {changed} at reset"

        def after_steps(names):
            scene.reset(names, seed=SEED)
            for _ in range(5):
                scene.step(np.full(scene.action_dim, 0.5))
            return scene.data.qpos.copy()
        assert not np.array_equal(after_steps([name]), after_steps([])), f"{name} must change what the arm does"
    else:
        assert changed & {"qpos", "low_dim", "dynamics"}, f"{name} must change the scene's state or dynamics"
