"""search_node: runs a search from the core over the ROS workers, keeps the run store, and
serves the failure-mode probabilities.

- publishes robofail_ros/Perturbation requests to idle workers (``/<worker>/perturbation``),
  scheduled by the core Scheduler (re-queues an episode whose worker does not answer within
  ``episode_timeout_s``, retries a worker's error once elsewhere, retires failing workers);
- subscribes ``/robofail/episode_results`` (each episode counted once) and
  ``/robofail/worker_ready``;
- serves ``~/get_failure_probabilities`` (GetFailureProbabilities) and the action ``~/run_search``
  (RunSearch: a search with overrides, feedback after every episode, cancel keeps the run
  resumable), and publishes ``~/failure_markers`` (MarkerArray bar chart) and ``~/status`` (JSON).
  With ``start_on_launch`` (default) it first runs the search of its parameter file.
"""
from __future__ import annotations

import datetime
import json
import pathlib
import threading
import time

from rclpy.action import ActionServer, CancelResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

from ..core.analysis import METHODS, RunResult, format_table, verdict_text
from ..core.config import SEARCH_NODE_PARAMETERS
from ..core.errors import ConfigError, PolicyError, RoboFailError
from ..core.provenance import PolicyAnnouncements, PolicyRecord
from ..core.run import (RunObserver, continued_config, resolve_catalog, result_of, run_search, stored_result,
                        worker_spec)
from ..core.store import RUN_ID, RUN_ID_RULE, RunStore
from ..core.workers import EpisodeRunner, Evaluator, scene_terms
from ..action import RunSearch
from ..msg import EpisodeResult, Perturbation
from ..srv import GetFailureProbabilities
from .common import LATCHED, READY_TOPIC, RESULTS_TOPIC, read_config, run_node
from .conversions import dumps, mode_to_msg, modes_to_markers, msg_to_outcome

DDS_LEASE_S = 20.0  # how long DDS (Fast DDS's default lease) keeps a killed node in the graph
DISCOVERY_SETTLE_S = 3.0  # a fresh node discovers the others' subscriptions one by one: counts must hold this long


class RosTransport:
    """The DDS glue of the core Scheduler: episodes go to ``/<worker>/perturbation``; results and
    ready announcements come back on the shared topics (through the node's subscriptions)."""

    def __init__(self, node: "SearchNode", spec):
        self.node = node
        self.use(spec)

    def use(self, spec) -> None:
        """The WorkerSpec of the run about to start (a goal's searcher may want scene images)."""
        self.spec, self.scene = spec, json.dumps(scene_terms(spec))

    def attach(self, scheduler) -> None:
        self.scheduler = scheduler
        self.publishers: dict[str, object] = {}

    def start(self, worker, request):
        if worker not in self.publishers:
            self.publishers[worker] = self.node.create_publisher(Perturbation, f"/{worker}/perturbation", 10)
        self.check_alone([worker])
        self.publishers[worker].publish(Perturbation(run_id=self.node.run_id, episode_id=request.episode_id,
                                                     names=list(request.perturbations), seed=request.seed,
                                                     with_image=self.spec.images, scene=self.scene))

    def check_alone(self, workers, patience_s: float = 0.0, settle_s: float = 0.0):
        """A second robofail system on this ROS domain shares the workers' topics: its sim node
        would run this run's episodes with its own policy. Refused before an episode is sent (the
        run stays resumable). A killed node stays in the DDS graph of the nodes that saw it alive
        for its lease (20 s), so at the start of a run (a search node serving goals may have
        outlived a worker restarted since) a doubled worker gets ``patience_s`` to become single,
        and the counts must hold for ``settle_s`` first (a fresh node may not have discovered the
        second sim node yet). (A second policy node of another policy is caught by its
        announcement: provenance.py.)"""
        deadline = time.monotonic() + patience_s
        counts, since = None, time.monotonic()
        while True:
            now = {worker: self._sim_nodes(worker) for worker in workers}
            if now != counts:
                counts, since = now, time.monotonic()
            doubled = {worker: count for worker, count in counts.items() if count > 1}
            if (not doubled and time.monotonic() - since >= settle_s) or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        if doubled:
            raise ConfigError(
                "; ".join(f"{count} sim nodes take {worker}'s episodes" for worker, count in doubled.items())
                + f": another robofail system (or a second copy of a worker) runs on ROS domain "
                f"{self.node.context.get_domain_id()}, and its episodes would mix with this run's. Give each system its "
                "own ROS_DOMAIN_ID (or stop the stray nodes: `ros2 node list`), then resume this run (resume: true, the "
                "same out)")

    def _sim_nodes(self, worker) -> int:
        return sum(i.node_name == "sim_node" for i in self.node.get_subscriptions_info_by_topic(f"/{worker}/perturbation"))

    def result(self, msg: EpisodeResult):
        if msg.run_id != self.node.run_id:  # a late answer to a cancelled run's episode, or another system's
            return
        try:
            outcome = None if msg.error else msg_to_outcome(msg)
        except ValueError as exc:  # its scene image: reported as the worker's error, never a dead node
            self.scheduler.finished(msg.worker, msg.episode_id, None, f"malformed episode result: {exc}")
            return
        self.scheduler.finished(msg.worker, msg.episode_id, outcome, msg.error or None)

    def close(self):
        pass


class RosEvaluator(Evaluator):
    """The core Evaluator over ROS workers, which also knows which policy they run from their
    policy nodes' announcements."""

    def __init__(self, node: "SearchNode", config, timeout_s: float, policy_timeout_s: float, spec):
        self.transport = RosTransport(node, spec)
        super().__init__(self.transport, config.num_workers, timeout_s)
        self.node, self.config, self.policy_timeout_s = node, config, policy_timeout_s
        self.workers = [f"worker_{i}" for i in range(config.num_workers)]
        self.announcements = PolicyAnnouncements(self.workers, config)

    def collect(self, timeout=None):
        if self.announcements.error:
            raise PolicyError(self.announcements.error)
        return super().collect(timeout)

    def ready(self, msg: String):
        if msg.data in self.workers:  # a name of no worker of ours would be handed episodes nobody runs
            self.scheduler.ready(msg.data)

    def announced(self, worker: str, data: str):
        self.announcements.announce(worker, data)

    def policy_record(self) -> PolicyRecord:
        info = self.announcements.record(self.policy_timeout_s)
        self.transport.check_alone(self.workers, patience_s=DDS_LEASE_S + 5, settle_s=DISCOVERY_SETTLE_S)
        return info

    def reference_image(self):
        runner = EpisodeRunner(self.transport.spec)  # the search node renders PPO's first observation itself
        try:
            return runner.reference_image()
        finally:
            runner.close()


class SearchNode(Node, RunObserver):
    def __init__(self):
        Node.__init__(self, "search_node", allow_undeclared_parameters=True,
                      automatically_declare_parameters_from_overrides=True)
        self.config, own = read_config(self, SEARCH_NODE_PARAMETERS)
        self.out = self._run_folder(own["out"], self.config)
        self.run_id = self.out.name
        self.exit_when_done = own["exit_when_done"]
        self.evaluator = RosEvaluator(self, self.config, own["episode_timeout_s"], own["policy_timeout_s"],
                                      worker_spec(self.config))
        for worker in self.evaluator.workers:
            self.create_subscription(String, f"/{worker}/policy_info",
                                     lambda msg, worker=worker: self.evaluator.announced(worker, msg.data), LATCHED)
        self.live = None  # (searcher, catalog, config) while a search runs or after it ran
        self.result = None
        self.exit_code = 0
        self._running = threading.Lock()  # one search at a time
        self._goal = None  # the action goal being served
        self.active = self.config  # the config of the search running (or last run)
        self.run_folders: dict[str, pathlib.Path] = {}  # run id -> folder of the runs this node ran (any out)
        self.create_subscription(EpisodeResult, RESULTS_TOPIC, self.evaluator.transport.result, 100)
        self.create_subscription(String, READY_TOPIC, self.evaluator.ready, 100)
        self.markers = self.create_publisher(MarkerArray, "~/failure_markers", 1)
        self.status = self.create_publisher(String, "~/status", 10)
        self.create_service(GetFailureProbabilities, "~/get_failure_probabilities", self.serve)
        self.actions = ActionServer(self, RunSearch, "~/run_search", execute_callback=self.execute,
                                    cancel_callback=lambda goal: CancelResponse.ACCEPT,
                                    callback_group=ReentrantCallbackGroup())
        if own["start_on_launch"]:
            threading.Thread(target=self.search, args=(self.config, self.out, own["resume"], False, own["extend"] or None,
                                                       True), daemon=True).start()

    @staticmethod
    def _run_folder(out: str, config) -> pathlib.Path:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        return pathlib.Path(out or pathlib.Path(config.output_dir) / f"{config.searcher}-{stamp}")

    # -------------------------------------------------------------------------- the run
    def search(self, config, out, resume, raise_errors=True, extend=None, from_parameters=False) -> RunResult | None:
        """Runs one search (the one from the parameter file at start-up, or an action goal's);
        a failure is logged and published on ~/status (and raised, with ``raise_errors``).
        ``from_parameters``: ``config`` is the parameter file's, and a run resumed or extended
        goes on with the config it recorded instead (see ``continued``)."""
        if not self._running.acquire(blocking=False):
            raise RoboFailError(f"a search is running (run {self.run_id!r}); cancel it before starting another")
        self.out, self.run_id, self.active = pathlib.Path(out), pathlib.Path(out).name, config
        self.run_folders[self.run_id] = self.out
        try:
            if from_parameters:  # a goal's config was continued and checked in execute()
                config = self.active = self.continued(config, out, resume, extend)
                self._check_workers_run(config)
            self.publish_status("running")
            self.evaluator.transport.use(worker_spec(config))
            self.result = run_search(config, self.out, resume=resume, evaluator=self.evaluator, observer=self,
                                     extend=extend)
            # On a line of its own: `robofail ros-run`'s progress bar may hold the terminal's current line.
            print("\n" + format_table(self.result), flush=True)
            self.publish_status("cancelled" if self.result.cancelled else "finished")
            return self.result
        except Exception as exc:  # reported on the status topic and the log; the service keeps answering
            self.exit_code = 2
            message = str(exc) if isinstance(exc, RoboFailError) else f"{type(exc).__name__}: {exc}"
            self.get_logger().error(f"search failed: {message}")
            self.publish_status("failed", message)
            if raise_errors:
                raise RoboFailError(message) from None
            return None
        finally:
            self._running.release()
            if self.exit_when_done and self._goal is None:
                import rclpy
                rclpy.try_shutdown()

    def execute(self, goal_handle):
        """The RunSearch action: a search with the goal's overrides, feedback after every episode."""
        goal = goal_handle.request
        overrides = {key: value for key, value in (
            ("task", goal.task), ("policy", goal.policy), ("searcher", goal.searcher),
            ("perturbations", tuple(goal.perturbations) or None)) if value}
        if goal.budget != -1:
            overrides["budget"] = int(goal.budget)
        if goal.seed != -1:
            overrides["seed"] = int(goal.seed)
        result = RunSearch.Result()
        try:
            # A goal's resume or extension starts from the run's recorded config, as `robofail search`
            # does; what the goal gives besides must match it (the run store refuses another search).
            config = self.continued(self.config, goal.out, goal.resume, goal.extend).with_overrides(overrides)
            self._check_workers_run(config)
            resolve_catalog(config)  # unknown perturbations fail here, before anything is written
            self._goal = goal_handle
            self.search(config, self._run_folder(goal.out, config), goal.resume, extend=goal.extend or None)
        except RoboFailError as exc:
            result.message = str(exc)
            goal_handle.abort()
            return result
        finally:
            self._goal = None
        fill_table(result, self.result, "empirical")
        result.run_id, result.cancelled = self.run_id, self.result.cancelled
        result.success = not result.cancelled
        result.message = (f"cancelled after {self.result.episodes} episodes; resume with out: {self.out}, resume: true"
                          if result.cancelled else f"finished: {self.result.episodes} episodes in run {self.run_id!r}")
        goal_handle.canceled() if result.cancelled else goal_handle.succeed()
        return result

    def continued(self, config, out, resume, extend):
        """``config``, or for a resume of the run in ``out`` (an extension of the run ``extend``) the
        config that run recorded, with what may change from ``config`` (continued_config)."""
        folder = out if resume else extend
        try:
            recorded = bool(folder) and (pathlib.Path(folder) / "run.json").is_file()
        except OSError:  # a name the file system refuses (too long, say)
            recorded = False
        if not recorded:
            return config  # the run store says what is wrong
        continued, unused = continued_config(config, folder, extend=not resume)
        if unused:
            self.get_logger().info(f"{'resuming' if resume else 'extending'} run {folder} with the config it recorded; "
                                   "the parameters' " + ", ".join(f"{key} {getattr(config, key)!r:.60}" for key in unused)
                                   + " go unused")
        return continued

    def _check_workers_run(self, config) -> None:
        """The workers' scenes and policy nodes were started with the parameter file's task and policy."""
        for key in ("task", "policy"):
            asked, running = getattr(config, key), getattr(self.config, key)
            if asked != running:
                raise RoboFailError(f"the workers run the {key} of the node's parameter file ({running!r}), not "
                                    f"{asked!r}; start the system with {key}: {asked} to search it")

    def should_stop(self) -> bool:
        return self._goal is not None and self._goal.is_cancel_requested

    def started(self, searcher, catalog, store):
        self.live = (searcher, catalog)

    def recorded(self, outcomes, store):
        # One table per finished episode, shared by the status, the markers and the feedback.
        result = _result(self.out, self.live[1], self.live[0], self.active.goal)
        self.publish_status("running", result=result)
        self.markers.publish(modes_to_markers([mode_to_msg(m, "empirical") for m in result.table.modes]))
        if self._goal is not None:  # one feedback per finished episode
            worst = [mode_to_msg(m, "empirical") for m in result.table.perturbed if m.trials][:5]
            for k in range(len(outcomes), 0, -1):
                self._goal.publish_feedback(RunSearch.Feedback(
                    episodes=result.episodes - k + 1, budget=self.active.budget + self.active.nominal_episodes,
                    failures=result.failures, top_modes=worst, out=str(self.out)))

    def publish_status(self, state, message="", result=None):
        if result is None and self.live is not None and (self.out / "run.json").exists():
            result = _result(self.out, self.live[1], self.live[0], self.active.goal)
        worst = result.table.worst if result else None
        worst = {"name": worst.name, "p_fail": worst.p_fail} if worst else None
        self.status.publish(String(data=dumps({
            "state": state, "run_id": self.run_id, "episodes": result.episodes if result else 0,
            "budget": self.active.budget + self.active.nominal_episodes,
            "failures": result.failures if result else 0, "worst": worst, "message": message})))

    # ------------------------------------------------------------------------ the service
    def serve(self, request, response):
        response.success = False
        method = request.method or "empirical"
        if method not in METHODS:
            response.message = f"unknown method {request.method[:50]!r}; use one of {', '.join(METHODS)}"
            return response
        # The rule is for names asked for; the node's own run may lie in any folder (spaces and all).
        if request.run_id and not RUN_ID.match(request.run_id):
            response.message = RUN_ID_RULE
            return response
        run_id = request.run_id or self.run_id
        try:
            result = self.result_for(run_id)
        except RoboFailError as exc:
            response.message = str(exc)
            return response
        if result is None or not result.episodes:
            response.message = f"run {run_id!r} has no episodes yet; ask again once the search has run some"
            return response
        if method == "pi" and any(m.pi is None for m in result.table.perturbed):
            response.message = f"run {run_id!r} has no pi(a|o) recorded yet (it is written when the run finishes)"
            return response
        fill_table(response, result, method)
        response.success = True
        response.message = f"{method} failure probabilities of run {run_id!r} over {result.episodes} episodes"
        return response

    def result_for(self, run_id):
        if run_id == self.run_id:
            if self.live is None:
                return None
            searcher, catalog = self.live
            return _result(self.out, catalog, searcher, self.active.goal)
        folder = self.run_folders.get(run_id, pathlib.Path(self.config.output_dir) / run_id)
        if not (folder / "run.json").is_file():
            raise RoboFailError(f"unknown run id {run_id!r}: no run folder {folder}; this node serves {self.run_id!r}")
        return stored_result(folder)

    def close(self):
        pass


def fill_table(target, result: RunResult, method: str) -> None:
    """The failure-mode table of a result into a service response or an action result."""
    table = result.table
    modes = sorted(table.perturbed, key=lambda m: -m.pi) if method == "pi" else table.perturbed
    target.entropy = float((result.pi_entropy if method == "pi" else result.p_fail_entropy) or 0.0)
    target.modes = [mode_to_msg(m, method) for m in modes]
    target.episodes = result.episodes
    target.top_modes = list(table.top)
    target.top_settled = table.top_settled
    target.order_settled = table.order_settled
    target.confidence = float(table.goal.confidence)
    target.threshold = float(table.threshold)
    target.verdict = verdict_text(table)


def _result(folder, catalog, searcher, goal):
    store = RunStore(folder)  # a connection of this thread's own (sqlite connections are per thread)
    try:
        return result_of(store, catalog, searcher, goal)
    finally:
        store.close()


def main() -> int:
    # Several threads: an action goal's search blocks its callback while results, ready
    # announcements and service calls are served (this node is not in the lock-step loop).
    return run_node(SearchNode, "search_node", threads=4)


if __name__ == "__main__":
    raise SystemExit(main())
