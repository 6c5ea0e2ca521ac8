"""policy_node: runs a policy under test on the observations of one worker's sim_node.

Contract (any node that honours it can stand in, e.g. for a policy that is not robomimic):
- publish ``policy_info`` (std_msgs/String, JSON, transient-local): {"name", "observation_keys",
  "cameras", "image_size", "sha256"}; the sim node renders only those cameras, at that size (84
  if absent), and sends only those keys;
- subscribe ``observation`` (robofail_ros/Observation); step 0 starts an episode;
- answer each with ``action`` (robofail_ros/Action) carrying the same episode_id and step, or
  with ``error`` set when it cannot act (then the run stops with that message).
"""
from __future__ import annotations

import json

from rclpy.node import Node
from std_msgs.msg import String

from ..core.policies import load_policy
from ..msg import Action, Observation
from .common import LATCHED, read_config, run_node
from .conversions import msg_to_obs



class PolicyNode(Node):
    def __init__(self):
        super().__init__("policy_node", allow_undeclared_parameters=True,
                         automatically_declare_parameters_from_overrides=True)
        config, _ = read_config(self, {})
        self.policy = load_policy(config.policy, task=config.task, device=config.device)
        self.actions = self.create_publisher(Action, "action", 10)
        self.create_subscription(Observation, "observation", self.on_observation, 10)
        info = self.create_publisher(String, "policy_info", LATCHED)
        info.publish(String(data=json.dumps({
            "name": self.policy.name, "observation_keys": list(self.policy.observation_keys),
            "cameras": list(self.policy.cameras), "image_size": getattr(self.policy, "image_size", None),
            "sha256": getattr(self.policy, "sha256", None)})))
        self.get_logger().info(f"policy {self.policy.name!r} ready for task {config.task}")

    def on_observation(self, msg: Observation):
        self.actions.publish(answer(self.policy, msg))

    def close(self):
        pass


def answer(policy, msg: Observation) -> Action:
    """The policy's action for one observation, or an Action whose ``error`` says why it has none
    (a malformed observation, missing observation keys, or an exception in the policy's own code):
    the sim node then ends the episode with that message at once instead of waiting for an action
    that never comes."""
    reply = Action(episode_id=msg.episode_id, step=msg.step)
    try:
        obs = msg_to_obs(msg)
    except ValueError as exc:
        reply.error = f"policy {policy.name!r} got a {exc}"
        return reply
    missing = sorted(set(policy.observation_keys) - set(obs))
    if missing:
        reply.error = f"policy {policy.name!r} needs observation keys {missing} but the sim node sent {sorted(obs)}"
        return reply
    try:
        if msg.step == 0:
            policy.start_episode(msg.seed)
        reply.action = [float(a) for a in policy.act(obs)]
    except Exception as exc:  # noqa: BLE001  (the policy's own code: reported, never a silent stall)
        reply.error = f"policy {policy.name!r} raised {type(exc).__name__}: {exc}"
    return reply


def main() -> int:
    return run_node(PolicyNode, "policy_node")


if __name__ == "__main__":
    raise SystemExit(main())
