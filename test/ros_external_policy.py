"""A minimal policy node of your own for robofail_ros (not robomimic): it holds the arm still
with the gripper open. Start one per worker, in that worker's namespace:

    python3 still_policy.py --ros-args -r __ns:=/worker_0
"""
import json

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from std_msgs.msg import String

from robofail_ros.msg import Action, Observation
from robofail_ros.nodes.common import run_node


class StillPolicy(Node):
    def __init__(self):
        super().__init__("policy_node")
        self.actions = self.create_publisher(Action, "action", 10)
        self.create_subscription(Observation, "observation", self.act, 10)
        # Announce what it is and what it reads; the run records exactly this.
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.info = self.create_publisher(String, "policy_info", latched)
        self.info.publish(String(data=json.dumps({
            "name": "still_policy", "version": "1.0",
            "observation_keys": ["robot0_eef_pos"],  # low-dim keys and <camera>_image keys it reads
            "cameras": [],
            "robot": "Panda", "controller": "OSC_POSE", "control_freq": 20})))  # what its actions are for

    def act(self, obs: Observation):
        # obs.low_dim holds the values of obs.low_dim_keys (obs.low_dim_sizes each); obs.images the
        # cameras' rgb8 images. step 0 starts an episode. Answer every observation once:
        self.actions.publish(Action(episode_id=obs.episode_id, step=obs.step, action=[0.0] * 6 + [-1.0]))


def main():
    # rclpy.init, spin until Ctrl-C or SIGTERM, and a clean shutdown, past rclpy's shutdown races
    # (a signal mid-callback, a DDS teardown that hangs): robofail's own nodes run the same way.
    raise SystemExit(run_node(StillPolicy, "still_policy"))


if __name__ == "__main__":
    main()
