"""A second ROS process for the tests: serves GetFailureProbabilities (echoing the request into
the response) and republishes every EpisodeResult it receives on `results_in` to `results_out`."""
import rclpy
from rclpy.executors import ExternalShutdownException

from robofail_ros.msg import EpisodeResult, FailureMode
from robofail_ros.srv import GetFailureProbabilities


def main():
    rclpy.init()
    node = rclpy.create_node("echo_peer")
    out = node.create_publisher(EpisodeResult, "results_out", 10)
    node.create_subscription(EpisodeResult, "results_in", out.publish, 10)

    def serve(request, response):
        response.success = True
        response.message = f"{request.run_id}|{request.method}"
        response.modes = [FailureMode(name=request.run_id, factor="table_color", probability=0.25,
                                      ci_low=0.1, ci_high=0.5, trials=40, failures=10, sim_errors=1)]
        response.entropy = 1.5
        response.episodes = 41
        return response

    node.create_service(GetFailureProbabilities, "echo_peer/get_failure_probabilities", serve)
    print("ready", flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
