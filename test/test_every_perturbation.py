"""Every entry of the bundled Lift catalog, checked the same way: it applies, it changes what its
factor is for (and, for appearance factors, nothing of the scene's state), the next episode
without it is the pristine scene again, and the same seed gives the same scene."""
import numpy as np
import pytest

from robofail_ros.core.perturbations import Catalog

pytestmark = [pytest.mark.render]
CATALOG = Catalog.load().for_task("Lift")
# Factors that change only how the scene looks (or what the policy's camera shows).
APPEARANCE = {"table_color", "object_color", "robot_color", "wall_color", "floor_color", "table_texture",
              "object_texture", "light_color", "light_intensity", "light_direction", "camera_position",
              "camera_orientation", "camera_fov", "image_noise", "image_blur"}
SEED = 3


def snapshot(scene, names):
    obs = scene.reset(names, seed=SEED)
    model = scene.model
    return {"qpos": scene.data.qpos.copy(), "image": obs["agentview_image"].copy(),
            "low_dim": np.concatenate([np.ravel(obs[k]) for k in sorted(obs) if not k.endswith("_image")]),
            "dynamics": np.concatenate([model.body_mass, model.geom_friction.ravel()]).copy()}


def same(a, b):
    return all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", CATALOG.names)
def test_every_catalog_entry_applies_changes_what_it_should_resets_cleanly_and_is_seeded(lift_scene, name):
    factor = CATALOG[name].factor_name
    pristine = snapshot(lift_scene, [])
    first = snapshot(lift_scene, [name])
    assert same(first, snapshot(lift_scene, [name])), "the same seed must give the same perturbed scene"
    assert same(snapshot(lift_scene, []), pristine), "the next unperturbed episode must be the pristine scene"
    changed = {k for k in first if not np.array_equal(first[k], pristine[k])}
    if factor in APPEARANCE:
        assert "image" in changed, f"{name} must change what the camera sees"
        assert not changed & {"qpos", "low_dim", "dynamics"}, f"{name} is an appearance factor but changed {changed}"
    elif factor.startswith("actuation"):
        assert not changed, f"{name} acts on actions only, but changed {changed} at reset"

        def after_steps(names):
            lift_scene.reset(names, seed=SEED)
            for _ in range(5):
                lift_scene.step(np.full(lift_scene.action_dim, 0.5))
            return lift_scene.data.qpos.copy()
        assert not np.array_equal(after_steps([name]), after_steps([])), f"{name} must change what the arm does"
    else:
        assert changed & {"qpos", "low_dim", "dynamics"}, f"{name} must change the scene's state or dynamics"
