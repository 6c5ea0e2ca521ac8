"""What a run records about a policy that runs outside robofail (policy nodes): announcements
checked, workers agreeing, no change mid-run, a clear error for each problem."""
import json

import pytest

from robofail_ros.core.config import config_from_params
from robofail_ros.core.errors import ConfigError
from robofail_ros.core.provenance import PolicyAnnouncements

EXTERNAL = config_from_params({"policy": "external"})
STILL = {"name": "still_policy", "version": "1.0", "observation_keys": ["robot0_eef_pos"], "cameras": []}


def test_the_run_records_what_every_worker_announced():
    announcements = PolicyAnnouncements(["worker_0", "worker_1"], EXTERNAL)
    for worker in ("worker_0", "worker_1"):
        announcements.announce(worker, json.dumps(STILL))
    record = announcements.record(timeout_s=1)
    assert (record.name, record.version, record.external, record.workers) == \
        ("still_policy", "1.0", True, ("worker_0", "worker_1"))
    announcements.announce("worker_1", json.dumps({**STILL, "version": "2.0"}))
    assert "the policy of worker_1 changed mid-run" in announcements.error


@pytest.mark.parametrize("second, message", [
    ({**STILL, "name": "other"}, "the workers run different policies"),
    ({**STILL, "cameras": "agentview"}, "it needs 'cameras' as a list of names"),
    ({**STILL, "image_size": 0}, "its 'image_size' must be a positive whole number of pixels"),
    ({**STILL, "image_size": "84"}, "its 'image_size' must be a positive whole number of pixels"),
    ({**STILL, "version": [2]}, r"its 'version' must be a string \(or absent\), got \[2\]"),
    # made for another robot, arm controller or control rate: same action size, other meaning
    ({**STILL, "robot": "Sawyer"}, r"made for robot 'Sawyer', but robofail's scenes run a Panda \(OSC_POSE arm "
                                   r"controller, 20 Hz control\)"),
    ({**STILL, "controller": "IK_POSE", "control_freq": 10}, "made for controller 'IK_POSE', control_freq 10, but"),
    (None, r"no policy announced itself on /worker_1/policy_info within 0 s"),
])
def test_each_problem_is_a_clear_error(second, message):
    announcements = PolicyAnnouncements(["worker_0", "worker_1"], EXTERNAL)
    announcements.announce("worker_0", json.dumps(STILL))
    if second is not None:
        announcements.announce("worker_1", json.dumps(second))
    with pytest.raises(ConfigError, match=message):
        announcements.record(timeout_s=0.3)


def test_a_node_that_says_it_was_made_for_the_scene_s_robot_controller_and_rate_is_recorded():
    announcements = PolicyAnnouncements(["worker_0"], EXTERNAL)
    announcements.announce("worker_0", json.dumps({**STILL, "robot": "Panda", "controller": "OSC_POSE", "control_freq": 20}))
    assert announcements.record(timeout_s=1).name == "still_policy"


def test_a_policy_node_that_is_not_the_configured_policy_is_refused():
    announcements = PolicyAnnouncements(["worker_0"], config_from_params({"policy": "scripted"}))
    announcements.announce("worker_0", json.dumps(STILL))
    with pytest.raises(ConfigError, match="run 'still_policy' .* but the config names 'scripted'.*policy: external"):
        announcements.record(timeout_s=1)
