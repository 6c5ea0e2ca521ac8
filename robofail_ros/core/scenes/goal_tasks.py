"""Reach and Push: robosuite environments of our own, built on robosuite's Lift scene; and
PickPlaceCan with its target in the observations.

Both keep Lift's table, Panda and cube (so the whole perturbation catalog applies) and add a
goal: a collision-free marker placed anew from the environment's seeded generator at every
reset. Its position joins the "object" observations (robomimic's ``object`` key), so low-dim
policies see it; image policies see the marker.

    Reach: bring the gripper within ``REACH_TOLERANCE`` of a goal floating above the table.
    Push:  slide the cube until its centre lies within ``PUSH_TOLERANCE`` of a goal disc on the
           table, the cube still on the table (lifting it there does not count).

    PickPlaceCanTarget: robosuite's PickPlaceCan, unchanged, plus a ``goal_pos`` observation: the
           centre of the can's target quarter of the goal bin (constant; what a scripted expert needs).

Defining the classes registers them with robosuite (its environments register on definition),
so ``robosuite.make("Reach", ...)`` works once this module is imported.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
from robosuite.environments.manipulation.lift import Lift
from robosuite.environments.manipulation.pick_place import PickPlaceCan
from robosuite.utils.observables import Observable, sensor

REACH_TOLERANCE = 0.03  # m between the gripper site and the goal
PUSH_TOLERANCE = 0.035  # m between the cube's centre and the goal's, in the table plane
_GOAL_RGBA = "0.10 0.80 0.25 0.6"


class _GoalTask(Lift):
    """Lift's scene with a goal marker; subclasses say where the goal goes and what success is."""

    goal_geom_type, goal_geom_size = "sphere", "0.02"

    def _load_model(self):
        super()._load_model()
        body = ET.Element("body", name="goal", pos="0 0 1")
        ET.SubElement(body, "geom", name="goal_visual", type=self.goal_geom_type, size=self.goal_geom_size,
                      rgba=_GOAL_RGBA, contype="0", conaffinity="0", group="1")
        self.model.worldbody.append(body)

    def _setup_references(self):
        super()._setup_references()
        self.goal_body_id = self.sim.model.body_name2id("goal")

    def _setup_observables(self):
        observables = super()._setup_observables()
        if self.use_object_obs:
            @sensor(modality="object")
            def goal_pos(obs_cache):
                return np.array(self.sim.model.body_pos[self.goal_body_id])

            observables["goal_pos"] = Observable(name="goal_pos", sensor=goal_pos, sampling_rate=self.control_freq)
        return observables

    def _reset_internal(self):
        super()._reset_internal()  # places the cube from self.rng
        self.sim.model.body_pos[self.goal_body_id] = self._sample_goal()

    @property
    def goal_pos(self) -> np.ndarray:
        return np.array(self.sim.model.body_pos[self.goal_body_id])

    def _sample_goal(self) -> np.ndarray:
        raise NotImplementedError

    def reward(self, action=None):
        return float(self._check_success())


class Reach(_GoalTask):
    """Move the gripper to a goal above the table; the cube stays where it is."""

    def _sample_goal(self):
        table_top = self.model.mujoco_arena.table_offset
        return table_top + np.array([self.rng.uniform(-0.10, 0.10), self.rng.uniform(-0.15, 0.15),
                                     self.rng.uniform(0.08, 0.22)])

    def _check_success(self):
        eef = self.sim.data.site_xpos[self.robots[0].eef_site_id["right"]]
        return bool(np.linalg.norm(eef - self.goal_pos) < REACH_TOLERANCE)


class Push(_GoalTask):
    """Push the cube sideways into a goal region on the table."""

    goal_geom_type, goal_geom_size = "cylinder", f"{PUSH_TOLERANCE} 0.001"

    def _sample_goal(self):
        cube = np.array(self.sim.data.get_joint_qpos(self.cube.joints[0])[:3])
        table_top = self.model.mujoco_arena.table_offset
        side = self.rng.choice([-1.0, 1.0])
        return np.array([cube[0] + self.rng.uniform(-0.03, 0.03), cube[1] + side * self.rng.uniform(0.10, 0.15),
                         table_top[2] + 0.001])

    def _check_success(self):
        cube = self.sim.data.body_xpos[self.cube_body_id]
        on_table = cube[2] < self.model.mujoco_arena.table_offset[2] + 0.04
        return bool(on_table and np.linalg.norm(cube[:2] - self.goal_pos[:2]) < PUSH_TOLERANCE)


class PickPlaceCanTarget(PickPlaceCan):
    """robosuite's PickPlaceCan with the can's target position observed as ``goal_pos``."""

    def _setup_observables(self):
        observables = super()._setup_observables()
        if self.use_object_obs:
            @sensor(modality="object")
            def goal_pos(obs_cache):
                return np.array(self.target_bin_placements[self.object_to_id[self.obj_to_use.lower()]])

            observables["goal_pos"] = Observable(name="goal_pos", sensor=goal_pos, sampling_rate=self.control_freq)
        return observables
