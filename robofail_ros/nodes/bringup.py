"""`robofail ros-run` and `robofail query`: the ROS system without `ros2 launch`.

ros-run starts the same nodes as launch/search.launch.py, each in its own process, with the
same parameter file and overrides: one search_node and, per worker i, a sim_node and a
policy_node in namespace /worker_i.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shlex
import signal
import subprocess
import sys
import time

from ..core.files import written_whole
from ..progress import ProgressBar


@dataclasses.dataclass(frozen=True)
class NodeSpec:
    """One node process of the ROS system: what ros-run starts and search.launch.py launches."""
    executable: str  # search_node, sim_node or policy_node
    namespace: str  # "" or worker_<i>
    parameters: dict  # on top of the parameter file

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.executable}" if self.namespace else self.executable

    @property
    def full_name(self) -> str:
        return f"/{self.label}"


def node_plan(params_file: str, num_workers: int, overrides: dict, search_overrides: dict) -> list[NodeSpec]:
    """Every node of the system: one search node and, per worker i, a sim node and a policy node
    in namespace worker_i; no policy nodes with ``policy: external`` (your own nodes announce
    themselves). Validates the parameter file and the overrides first."""
    from ..core.config import SEARCH_NODE_PARAMETERS, load_search_config, node_parameters
    from ..core.policies.base import check_policy
    from ..core.run import resolve_catalog
    from ..core.workers import check_local_workers
    config = load_search_config(params_file).replace(**overrides, num_workers=num_workers)
    node_parameters(search_overrides, SEARCH_NODE_PARAMETERS, "the search node's overrides")
    check_local_workers(num_workers)  # every pair starts on this machine
    # What every node would refuse at its start, refused once before any starts: the policy nodes
    # exited and the search node, serving on, kept the system up with nothing to search with.
    resolve_catalog(config)
    if config.policy != "external":
        check_policy(config.policy, config.task)
    kinds = ("sim_node",) if config.policy == "external" else ("sim_node", "policy_node")
    plan = [NodeSpec("search_node", "", {**overrides, **search_overrides, "num_workers": num_workers})]
    for i in range(num_workers):
        plan.extend(NodeSpec(kind, f"worker_{i}", dict(overrides)) for kind in kinds)
    return plan


def overrides_file(plan: list[NodeSpec]) -> str:
    """The plan's parameters as a ROS 2 parameter file with a section per node's full name, to be
    given after the user's file. rcl applies every file's ``/**`` parameters (``-p`` ones too)
    before its node sections, so a `search_node:` section of the user's file would beat a ``-p
    budget:=3`` (a run of the file's budget, the override silently lost); a later node section wins.

    The file is named by its content, under $ROS_HOME/robofail (~/.ros/robofail, beside ROS's own
    logs): the same arguments give the same file, so launches leave one small file per set of
    arguments, not one per launch, and none is removed while a system still starting reads it."""
    import hashlib

    import yaml
    text = yaml.safe_dump({spec.full_name: {"ros__parameters": dict(spec.parameters)} for spec in plan if spec.parameters})
    folder = pathlib.Path(os.environ.get("ROS_HOME") or pathlib.Path.home() / ".ros") / "robofail"
    path = folder / f"overrides-{hashlib.sha256(text.encode()).hexdigest()[:16]}.yaml"
    try:
        if not path.is_file() or path.read_text() != text:
            folder.mkdir(parents=True, exist_ok=True)
            with written_whole(path) as partial:  # whole or absent, for a concurrent launch
                partial.write_text(text)
    except OSError as exc:
        from ..core.errors import ConfigError
        raise ConfigError(f"cannot write the nodes' parameter overrides to {path} ({exc.strerror or exc}); set ROS_HOME "
                          "to a folder you can write (ROS keeps its logs there too)") from None
    return str(path)


def node_argv(params_file: str, overrides: str, spec: NodeSpec) -> list[str]:
    args = [sys.executable, "-m", f"robofail_ros.nodes.{spec.executable}", "--ros-args", "--params-file", params_file,
            "--params-file", overrides]
    if spec.namespace:
        args += ["-r", f"__ns:=/{spec.namespace}"]
    return args


def _interrupt(signum, frame):
    raise KeyboardInterrupt




def ros_run(params_file: str, num_workers: int, overrides: dict, search_overrides: dict) -> int:
    """Starts every node; returns the search node's exit status once it exits (with
    exit_when_done) or after Ctrl-C, stopping the workers either way."""
    # SIGTERM (a timeout, a service manager) must stop the nodes too: they run in their own
    # sessions. SIGINT is handled even when inherited as ignored (a shell's background job),
    # else Ctrl-C/SIGINT would leave the nodes running; the nodes then start with it handled too.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    plan = node_plan(params_file, num_workers, overrides, search_overrides)
    overrides_path = overrides_file(plan)
    procs = []
    for spec in plan:
        procs.append((spec, subprocess.Popen(node_argv(params_file, overrides_path, spec), start_new_session=True)))
    search = procs[0][1]
    progress = StatusBar()
    try:
        while search.poll() is None:
            # A worker that lost its sim node or its policy node runs no episode again (a policy
            # node that could not load its checkpoint exits at once): with none left, stop.
            dead = [spec for spec, p in procs[1:] if p.poll() is not None]
            if {spec.namespace for spec in dead} == {spec.namespace for spec, _ in procs[1:]}:
                print(f"robofail ros-run: every worker lost a node ({', '.join(s.label for s in dead)} exited); "
                      "stopping", file=sys.stderr)
                break
            progress.spin(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        progress.close()
        for _, p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGINT)
        deadline = time.monotonic() + 15
        for _, p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
    if search.returncode is not None and search.returncode < 0:  # killed by a signal (not by us: we send SIGINT)
        status, message = killed_outcome(-search.returncode, progress.state, params_file, search_overrides.get("out"),
                                         overrides)
        print(message, file=sys.stderr)
        return status
    return search.returncode if search.returncode is not None else 130


def killed_outcome(signum: int, last_state: str | None, params_file: str, out: str | None,
                   overrides: dict) -> tuple[int, str]:
    """ros-run's exit status and message when a signal ended the search node (``last_state``: the
    last state its ~/status told; ``overrides``: ros-run's flags over the parameter file, repeated
    in the resume command: the workers need theirs again, the search node takes the rest from the
    run's record). SIGALRM is the node's own teardown limit (common.run_node): it came after
    the node had closed its run, so there is nothing to resume, and a search that had finished
    succeeded (a script waiting on ros-run goes on)."""
    if signum == signal.SIGALRM:
        from .common import TEARDOWN_LIMIT_S
        hung = (f"robofail ros-run: the search node's DDS teardown hung after it had closed its run and was ended "
                f"{TEARDOWN_LIMIT_S} s on (SIGALRM, with the stack it printed above); nothing was lost: ")
        if last_state == "finished":
            return 0, hung + "its search had finished, and its run folder holds the whole run"
        return 1, hung + "its run folder holds every episode, and a run that printed its table is finished"
    flags = "".join(f" --{name} {shlex.quote(str(value))}" for name, value in overrides.items())
    where = f"--out {shlex.quote(out)}" if out else "--out <its run folder>"
    return 1, (f"robofail ros-run: the search node was killed by {signal.Signals(signum).name}; every finished episode "
               f"is kept in its run folder. Continue the run with: robofail ros-run --params-file "
               f"{shlex.quote(params_file)}{flags} {where} --resume")


class StatusBar:
    """A live progress bar of the search node's ~/status (episodes/budget, failures, worst mode)."""

    def __init__(self):
        import rclpy
        from std_msgs.msg import String
        self._rclpy, self._bar = rclpy, None
        self.state: str | None = None  # the search node's last state ("running", "finished", ...)
        self._context = rclpy.Context()
        rclpy.init(args=[], context=self._context)
        self._node = rclpy.create_node("robofail_ros_run", context=self._context)
        self._node.create_subscription(String, "/search_node/status", self._update, 10)
        self._executor = rclpy.executors.SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self._node)

    def _update(self, msg):
        status = json.loads(msg.data)
        self.state = status["state"]
        if self._bar is None or self._bar.total != status["budget"]:
            self._close_bar()
            self._bar = ProgressBar(status["budget"], "search")
        worst = status.get("worst")
        # A status other than "running" ends the search: its last line now, once (left open, a redraw
        # at this status and another as ros-run exited printed it twice); a next goal opens a new bar.
        self._bar.tick(status["episodes"] - self._bar.n, state=status["state"], failures=status["failures"],
                       worst="-" if not worst else f"{worst['name']} {worst['p_fail']:.2f}")
        if self.state != "running":
            self._close_bar()

    def spin(self, seconds: float) -> None:
        self._executor.spin_once(timeout_sec=seconds)

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def close(self) -> None:
        self._close_bar()
        self._rclpy.try_shutdown(context=self._context)


def query(run_id: str, method: str, service: str, timeout_s: float):
    """Calls the failure-probability service; returns the response."""
    import rclpy
    from ..srv import GetFailureProbabilities
    from .common import call_service
    rclpy.init(args=[])
    try:
        node = rclpy.create_node("robofail_query")
        client = node.create_client(GetFailureProbabilities, service)
        if not client.wait_for_service(timeout_sec=timeout_s):
            raise TimeoutError(f"service {service} did not appear within {timeout_s:g} s; is the search node running "
                               "(robofail ros-run / ros2 launch robofail_ros search.launch.py) in this ROS_DOMAIN_ID?")
        executor = rclpy.executors.SingleThreadedExecutor()
        executor.add_node(node)
        response = call_service(executor, client, GetFailureProbabilities.Request(run_id=run_id, method=method),
                                timeout_s)
        if response is None:
            raise TimeoutError(f"service {service} did not answer within {timeout_s:g} s")
        return response
    finally:
        rclpy.try_shutdown()


def run_goal(fields: dict, action: str, on_feedback, timeout_s: float):
    """Sends a RunSearch goal and waits for its result, passing every feedback to
    ``on_feedback``; Ctrl-C cancels the goal (the run stays resumable) and still waits for the
    result. A search node that leaves the graph for ``timeout_s`` mid-run (killed, its machine
    gone) raises TimeoutError naming the run folder to resume, instead of waiting for ever."""
    import rclpy
    from rclpy.action import ActionClient

    from ..action import RunSearch
    rclpy.init(args=[])
    try:
        node = rclpy.create_node("robofail_run")
        client = ActionClient(node, RunSearch, action)
        if not client.wait_for_server(timeout_sec=timeout_s):
            raise TimeoutError(f"action {action} did not appear within {timeout_s:g} s; is the search node running "
                               "(robofail ros-run / ros2 launch robofail_ros search.launch.py) in this ROS_DOMAIN_ID?")
        folder = fields["out"]

        def feedback(msg):
            nonlocal folder
            folder = msg.feedback.out or folder
            on_feedback(msg.feedback)
        sent = client.send_goal_async(RunSearch.Goal(**fields), feedback_callback=feedback)
        rclpy.spin_until_future_complete(node, sent, timeout_sec=timeout_s)
        handle = sent.result()
        if handle is None or not handle.accepted:
            raise TimeoutError(f"the search node did not accept the goal on {action}")
        done = handle.get_result_async()

        def wait_for_result():
            gone_since = None
            while not done.done():
                rclpy.spin_until_future_complete(node, done, timeout_sec=1.0)
                if client.server_is_ready():
                    gone_since = None
                elif gone_since is None:
                    gone_since = time.monotonic()
                elif time.monotonic() - gone_since > timeout_s:
                    run = shlex.quote(folder) if folder else "<its run folder>"
                    raise TimeoutError(f"the search node serving {action} left mid-run (gone for {timeout_s:g} s); "
                                       "the episodes it recorded are kept: start it again and continue with "
                                       f"`robofail run --out {run} --resume`")
        try:
            wait_for_result()
        except KeyboardInterrupt:
            print("robofail run: cancelling (the run is kept and can be resumed) ...", file=sys.stderr)
            handle.cancel_goal_async()
            wait_for_result()
        return done.result().result
    finally:
        rclpy.try_shutdown()
