"""A second ROS process for the tests: serves GetFailureProbabilities (echoing the request into
the response) and republishes every EpisodeResult it receives on `results_in` to `results_out`."""
from rclpy.node import Node

from robofail_ros.msg import EpisodeResult, FailureMode
from robofail_ros.nodes.common import run_node
from robofail_ros.srv import GetFailureProbabilities


class EchoPeer(Node):
    def __init__(self):
        super().__init__("echo_peer")
        out = self.create_publisher(EpisodeResult, "results_out", 10)
        self.create_subscription(EpisodeResult, "results_in", out.publish, 10)
        self.create_service(GetFailureProbabilities, "echo_peer/get_failure_probabilities", self.serve)
        print("ready", flush=True)

    @staticmethod
    def serve(request, response):
        response.success = True
        response.message = f"{request.run_id}|{request.method}"
        response.modes = [FailureMode(name=request.run_id, factor="table_color", probability=0.25,
                                      ci_low=0.1, ci_high=0.5, trials=40, failures=10, sim_errors=1)]
        response.entropy = 1.5
        response.episodes = 41
        return response


def main():
    # run_node, as robofail's own nodes: its DDS teardown is bounded (test/ros_stand_in_policy.py says why).
    raise SystemExit(run_node(EchoPeer, "echo_peer"))


if __name__ == "__main__":
    main()
