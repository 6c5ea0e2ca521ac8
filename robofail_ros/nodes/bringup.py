"""`robofail ros-run` and `robofail query`: the ROS system without `ros2 launch`.

ros-run starts the same nodes as launch/search.launch.py, each in its own process, with the
same parameter file and overrides: one search_node and, per worker i, a sim_node and a
policy_node in namespace /worker_i.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time


@dataclasses.dataclass(frozen=True)
class NodeSpec:
    """One node process of the ROS system: what ros-run starts and search.launch.py launches."""
    executable: str  # search_node, sim_node or policy_node
    namespace: str  # "" or worker_<i>
    parameters: dict  # on top of the parameter file

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.executable}" if self.namespace else self.executable


def node_plan(params_file: str, num_workers: int, overrides: dict, search_overrides: dict) -> list[NodeSpec]:
    """Every node of the system: one search node and, per worker i, a sim node and a policy node
    in namespace worker_i; no policy nodes with ``policy: external`` (your own nodes announce
    themselves). Validates the parameter file and the overrides first."""
    from ..core.config import load_search_config
    config = load_search_config(params_file).replace(**overrides)
    kinds = ("sim_node",) if config.policy == "external" else ("sim_node", "policy_node")
    plan = [NodeSpec("search_node", "", {**overrides, **search_overrides, "num_workers": num_workers})]
    for i in range(num_workers):
        plan.extend(NodeSpec(kind, f"worker_{i}", dict(overrides)) for kind in kinds)
    return plan


def node_argv(params_file: str, spec: NodeSpec) -> list[str]:
    args = [sys.executable, "-m", f"robofail_ros.nodes.{spec.executable}", "--ros-args", "--params-file", params_file]
    if spec.namespace:
        args += ["-r", f"__ns:=/{spec.namespace}"]
    for key, value in spec.parameters.items():
        args += ["-p", f"{key}:={_ros_value(value)}"]
    return args


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _ros_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def ros_run(params_file: str, num_workers: int, overrides: dict, search_overrides: dict) -> int:
    """Starts every node; returns the search node's exit status once it exits (with
    exit_when_done) or after Ctrl-C, stopping the workers either way."""
    # SIGTERM (a timeout, a service manager) must stop the nodes too: they run in their own
    # sessions. SIGINT is handled even when inherited as ignored (a shell's background job),
    # else Ctrl-C/SIGINT would leave the nodes running; the nodes then start with it handled too.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    procs = []
    for spec in node_plan(params_file, num_workers, overrides, search_overrides):
        procs.append((spec.label, subprocess.Popen(node_argv(params_file, spec), start_new_session=True)))
    search = procs[0][1]
    try:
        while search.poll() is None:
            dead = [name for name, p in procs[1:] if p.poll() is not None]
            if dead and len(dead) == len(procs) - 1:
                print(f"robofail ros-run: every worker exited ({', '.join(dead)}); stopping", file=sys.stderr)
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for _, p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGINT)
        deadline = time.monotonic() + 15
        for _, p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
    return search.returncode if search.returncode is not None else 130


def query(run_id: str, method: str, service: str, timeout_s: float):
    """Calls the failure-probability service once; returns the response."""
    import rclpy
    from ..srv import GetFailureProbabilities
    rclpy.init(args=[])
    try:
        node = rclpy.create_node("robofail_query")
        client = node.create_client(GetFailureProbabilities, service)
        if not client.wait_for_service(timeout_sec=timeout_s):
            raise TimeoutError(f"service {service} did not appear within {timeout_s:.0f} s; is the search node running "
                               "(robofail ros-run / ros2 launch robofail_ros search.launch.py) in this ROS_DOMAIN_ID?")
        future = client.call_async(GetFailureProbabilities.Request(run_id=run_id, method=method))
        rclpy.spin_until_future_complete(node, future, timeout_sec=timeout_s)
        if future.result() is None:
            raise TimeoutError(f"service {service} did not answer within {timeout_s:.0f} s")
        return future.result()
    finally:
        rclpy.try_shutdown()
