"""A node run by robofail's run_node whose context is shut down without waking its executor,
which is where rclpy's SIGTERM handling leaves a node when the executor wakes between the
signal thread's two steps (it triggers the wake-up, then shuts the contexts down): the process
must end anyway."""
import threading
import time

from rclpy.node import Node

from robofail_ros.nodes.common import run_node


class UnwokenShutdown(Node):
    def __init__(self):
        super().__init__("unwoken_shutdown")
        threading.Thread(target=self._shut_down_unwoken, daemon=True).start()

    def _shut_down_unwoken(self):
        time.sleep(2)  # the executor is waiting by now
        handle = self.context.handle
        with handle:  # the C++ shutdown, as rclpy's signal thread does it: no wake-up
            handle.shutdown()
        print("shut down", flush=True)

    def close(self):
        pass


if __name__ == "__main__":
    raise SystemExit(run_node(UnwokenShutdown, "unwoken_shutdown"))
