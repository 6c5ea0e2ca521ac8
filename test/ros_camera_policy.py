"""A stand-in policy node that reads the agentview camera at 48x48 pixels (it says so in its
announcement) and answers with an error naming any other size it is sent."""
import json

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import DurabilityPolicy, QoSProfile
from std_msgs.msg import String

from robofail_ros.msg import Action, Observation

SIZE = 48


def answer(obs: Observation) -> Action:
    (image,) = obs.images
    if (image.height, image.width) != (SIZE, SIZE):
        return Action(episode_id=obs.episode_id, step=obs.step, error=f"sent {image.width}x{image.height} images, "
                                                                       f"trained on {SIZE}x{SIZE}")
    return Action(episode_id=obs.episode_id, step=obs.step, action=[0.0] * 6 + [-1.0])


def main():
    rclpy.init()
    node = rclpy.create_node("policy_node", namespace="worker_0")
    actions = node.create_publisher(Action, "action", 10)
    node.create_subscription(Observation, "observation", lambda obs: actions.publish(answer(obs)), 10)
    info = node.create_publisher(String, "policy_info", QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    info.publish(String(data=json.dumps({"name": "camera_48", "observation_keys": ["agentview_image"],
                                         "cameras": ["agentview"], "image_size": SIZE})))
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
