"""A stand-in policy node that speaks the policy contract but answers with 6 action values
(the Panda task takes 7): the sim node must report the mismatch, not pad it."""
import json

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import DurabilityPolicy, QoSProfile
from std_msgs.msg import String

from robofail_ros.msg import Action, Observation


def main():
    rclpy.init()
    node = rclpy.create_node("policy_node", namespace="worker_0")
    actions = node.create_publisher(Action, "action", 10)
    node.create_subscription(Observation, "observation",
                             lambda o: actions.publish(Action(episode_id=o.episode_id, step=o.step, action=[0.0] * 6)), 10)
    info = node.create_publisher(String, "policy_info", QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    info.publish(String(data=json.dumps({"name": "six_dof", "observation_keys": ["robot0_eef_pos"], "cameras": []})))
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
