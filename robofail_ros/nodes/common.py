"""What every robofail node shares: start-up from the parameter file, and a main() that spins
and shuts down cleanly on Ctrl-C or SIGTERM."""
from __future__ import annotations

import signal
import sys
import time

from rclpy.qos import DurabilityPolicy, QoSProfile

from ..core.config import SearchConfig, config_from_params, node_parameters
from ..core.errors import RoboFailError
from .conversions import params_to_dict

# Topics and QoS shared by the nodes (relative names resolve in each worker's namespace).
RESULTS_TOPIC = "/robofail/episode_results"
READY_TOPIC = "/robofail/worker_ready"
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)  # policy_info, scene_image
TEARDOWN_LIMIT_S = 15  # after a node's close(): DDS teardown and interpreter exit, at most
# How often a spinning node looks whether its context was shut down. rclpy's signal thread wakes
# the executors *before* it shuts the contexts down (signal_handler.cpp: trigger_guard_conditions,
# then shutdown_contexts), so an executor that wakes in between finds its context still up and
# waits again with nothing left to wake it: an installed policy_node ignored SIGTERM that way in
# about 1 of 25 runs, in CI too.
SHUTDOWN_POLL_S = 1.0
# A service call without an answer after this long is sent again (call_service says why).
RESEND_S = 5.0


def call_service(executor, client, request, timeout_s: float):
    """``client``'s answer to ``request`` (spinning ``executor``), or None after ``timeout_s``. An
    unanswered request is sent again every RESEND_S: a server that has not yet discovered a new
    client's response reader drops the answer (Fast DDS waits 100 ms for it, ros2/rmw_fastrtps#467),
    so a fresh client's first call on a loaded machine can go unanswered although wait_for_service
    succeeded. For services that only read, which a request answered twice does not harm."""
    deadline = time.monotonic() + timeout_s
    while True:
        future = client.call_async(request)
        executor.spin_until_future_complete(future, timeout_sec=max(0.0, min(RESEND_S, deadline - time.monotonic())))
        if future.done() and future.result() is not None:
            return future.result()
        client.remove_pending_request(future)
        if time.monotonic() >= deadline:
            return None


def read_config(node, node_params: dict) -> tuple[SearchConfig, dict]:
    """The search config from the node's parameters, plus its node-only parameters (with defaults)."""
    params = params_to_dict(node)
    where = f"parameters of {node.get_fully_qualified_name()}"
    own = node_parameters(params, node_params, where)
    return config_from_params({k: v for k, v in params.items() if k not in node_params}, where=where), own


def run_node(make_node, name: str, threads: int = 1) -> int:
    """Creates the node (``make_node()``), spins it until Ctrl-C or SIGTERM, and shuts down
    cleanly; returns the exit status. A RoboFailError at start-up or in a callback is printed as
    one line (exit status 2). The node's ``close()``, if it has one, runs before DDS teardown.
    Your own policy node can run this way too (README: 'Your own policy node').

    A single-threaded executor: the nodes' long work runs in threads of their own, and rclpy's
    multi-threaded executor doubled the lock-step loop's time per step (bench/episode_throughput.py)."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor

    rclpy.init(args=sys.argv)  # rclpy's own SIGINT/SIGTERM handlers shut down and wake the executor
    node = executor = None
    try:
        node = make_node()
        executor = SingleThreadedExecutor() if threads == 1 else MultiThreadedExecutor(num_threads=threads)
        executor.add_node(node)
        while executor.context.ok():  # executor.spin(), but for the race above
            try:
                executor.spin_once(timeout_sec=SHUTDOWN_POLL_S)
            except Exception:
                if executor.context.ok():
                    raise
                # A signal shut the context down mid-call: rclpy raises RCLError ("context is not
                # valid") from the wait set or from a callback's publish instead of
                # ExternalShutdownException (2 of 30 SIGTERMs to the README's example policy node,
                # answering a stream of observations, ended in a traceback and exit status 1).
    except RoboFailError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr, flush=True)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None and hasattr(node, "close"):
            node.close()
        _bounded_teardown(executor, node)
    return getattr(node, "exit_code", 0)


def _bounded_teardown(executor, node) -> None:
    """Destroys the executor, the node and the DDS participant, in that order, within
    TEARDOWN_LIMIT_S. Nothing is left to save, so past the limit the kernel ends the process
    (SIGALRM's default action needs no Python thread, which a hung C call holding the GIL would
    starve), after faulthandler has printed where every thread stood (it writes from its C signal
    handler, without the GIL). The participant goes here, not at interpreter exit where rclpy's
    default context would otherwise take it, so that all of DDS teardown runs while the limit
    holds and before Python's finalization tears modules down around it."""
    import faulthandler

    import rclpy

    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    faulthandler.register(signal.SIGALRM, file=sys.stderr, all_threads=True, chain=True)
    signal.alarm(TEARDOWN_LIMIT_S)
    if executor is not None:
        executor.shutdown(timeout_sec=0)
    if node is not None:
        node.destroy_node()
    rclpy.try_shutdown()
    rclpy.get_default_context().destroy()
