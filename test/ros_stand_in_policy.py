"""Stand-in policy nodes that speak the policy contract on /worker_0, each to test one thing the
sim node must get right (`python ros_stand_in_policy.py KIND`):

- ``six_dof``: answers with 6 action values (the Panda task takes 7): the sim node must report
  the mismatch, not pad it.
- ``camera_48``: reads the agentview camera at 48x48 pixels (its announcement says so) and
  answers with an error naming any other size it is sent.
"""
import json
import sys

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from std_msgs.msg import String

from robofail_ros.msg import Action, Observation
from robofail_ros.nodes.common import run_node


def six_dof(obs: Observation) -> Action:
    return Action(episode_id=obs.episode_id, step=obs.step, action=[0.0] * 6)


def camera_48(obs: Observation) -> Action:
    (image,) = obs.images
    if (image.height, image.width) != (48, 48):
        return Action(episode_id=obs.episode_id, step=obs.step,
                      error=f"sent {image.width}x{image.height} images, trained on 48x48")
    return Action(episode_id=obs.episode_id, step=obs.step, action=[0.0] * 6 + [-1.0])


KINDS = {  # answer, announcement
    "six_dof": (six_dof, {"name": "six_dof", "observation_keys": ["robot0_eef_pos"], "cameras": []}),
    "camera_48": (camera_48, {"name": "camera_48", "observation_keys": ["agentview_image"], "cameras": ["agentview"],
                              "image_size": 48}),
}


class StandInPolicy(Node):
    def __init__(self, kind: str):
        super().__init__("policy_node", namespace="worker_0")
        answer, announcement = KINDS[kind]
        actions = self.create_publisher(Action, "action", 10)
        self.create_subscription(Observation, "observation", lambda obs: actions.publish(answer(obs)), 10)
        self.info = self.create_publisher(String, "policy_info",
                                          QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        self.info.publish(String(data=json.dumps(announcement)))


def main():
    # run_node, as robofail's own nodes: its teardown is bounded (a Fast DDS teardown that hung
    # once kept this helper alive past the 30 s the tests wait for it after Ctrl-C).
    kind = sys.argv[1]
    raise SystemExit(run_node(lambda: StandInPolicy(kind), f"stand_in_{kind}"))


if __name__ == "__main__":
    main()
