"""A node run by robofail's run_node whose DDS teardown never ends (destroy_node sleeps), as a
Fast DDS participant's teardown once did: the process must end anyway."""
import time

from rclpy.node import Node

from robofail_ros.nodes.common import run_node


class HangingTeardown(Node):
    def __init__(self):
        super().__init__("hanging_teardown")
        print("ready", flush=True)

    def close(self):
        pass

    def destroy_node(self):
        time.sleep(3600)


if __name__ == "__main__":
    raise SystemExit(run_node(HangingTeardown, "hanging_teardown"))
