"""sim_node: one worker's robosuite scene. On a Perturbation request it resets the scene with
those perturbations and seed, publishes the perturbed scene image, runs the episode in
lock-step with the worker's policy node (observation -> action -> step), and publishes an
EpisodeResult. While idle it announces itself on /robofail/worker_ready."""
from __future__ import annotations

import json
import queue
import threading

from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import String

from ..core.config import SIM_NODE_PARAMETERS
from ..core.episode import EpisodeOutcome, run_episode
from ..core.errors import ConfigError, PolicyError, RoboFailError
from ..core.perturbations import DEFAULT_CATALOG, Catalog
from ..core.provenance import parse_announcement
from ..core.scenes import Scene, keep_no_decoded_assets
from ..core.run import worker_spec
from ..core.workers import SEARCH_IMAGE_SIZE, scene_differences, scene_terms
from ..msg import Action, EpisodeResult, Observation, Perturbation
from .common import LATCHED, READY_TOPIC, RESULTS_TOPIC, read_config, run_node
from .conversions import image_to_msg, obs_to_msg, outcome_to_msg



class RemotePolicy:
    """A PolicyUnderTest whose act() asks the policy node over ROS and waits for its answer."""

    def __init__(self, node: "SimNode", info: dict, timeout_s: float):
        self.node, self.timeout_s = node, timeout_s
        self.name = info.get("name", "remote")
        self.observation_keys = tuple(info["observation_keys"])
        self.cameras = tuple(info.get("cameras", ()))
        self.image_size = info.get("image_size")
        self.episode_id = self.seed = self.step = 0

    def start_episode(self, seed: int) -> None:
        self.seed, self.step = seed, 0

    def act(self, obs: dict):
        reply = self.node.exchange(obs_to_msg(obs, self.observation_keys, self.episode_id, self.step, self.seed),
                                   self.timeout_s)
        self.step += 1
        if reply.error:
            raise PolicyError(reply.error)
        return list(reply.action)


class SimNode(Node):
    def __init__(self):
        super().__init__("sim_node", allow_undeclared_parameters=True,
                         automatically_declare_parameters_from_overrides=True)
        self.config, own = read_config(self, SIM_NODE_PARAMETERS)
        self.action_timeout_s = own["action_timeout_s"]
        self.worker = self.get_namespace().strip("/") or "worker_0"
        self.catalog = Catalog.load(self.config.catalog or DEFAULT_CATALOG)
        self.scene_terms = scene_terms(worker_spec(self.config))
        self.scene: Scene | None = None
        self.remote: RemotePolicy | None = None
        self.requests: queue.Queue = queue.Queue()
        self._reply_lock = threading.Condition()
        self._reply: Action | None = None
        self._busy = False

        self.observations = self.create_publisher(Observation, "observation", 10)
        self.scene_images = self.create_publisher(Image, "scene_image", LATCHED)
        self.results = self.create_publisher(EpisodeResult, RESULTS_TOPIC, 50)
        self.ready = self.create_publisher(String, READY_TOPIC, 10)
        self.create_subscription(Action, "action", self.on_action, 10)
        self.create_subscription(Perturbation, "perturbation", lambda msg: self.requests.put(msg), 50)
        self.create_subscription(String, "policy_info", self.on_policy_info, LATCHED)
        self.create_timer(1.0, self.announce)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.work, daemon=True)
        self._thread.start()

    # The policy node says what it reads; the scene is built for those cameras.
    def on_policy_info(self, msg: String):
        info, problem = parse_announcement(msg.data)
        if problem:  # a foreign or broken publisher must not take the worker down
            self.get_logger().error(f"ignored the policy_info {msg.data[:200]!r}: {problem}")
            return
        self.info = info
        self.get_logger().info(f"policy {info['name']!r} reads {info['observation_keys']}")

    def announce(self):
        if self.scene is not None and not self._busy:
            self.ready.publish(String(data=self.worker))

    def on_action(self, msg: Action):
        with self._reply_lock:
            self._reply = msg
            self._reply_lock.notify_all()

    def exchange(self, obs_msg: Observation, timeout_s: float) -> Action:
        """Publishes an observation and waits for the action answering it."""
        with self._reply_lock:
            self._reply = None
            self.observations.publish(obs_msg)
            ok = self._reply_lock.wait_for(
                lambda: self._reply is not None and self._reply.episode_id == obs_msg.episode_id
                and self._reply.step == obs_msg.step, timeout=timeout_s)
            if not ok:
                raise PolicyError(f"no action from the policy node of {self.worker} within {timeout_s:.0f} s "
                                  f"(episode {obs_msg.episode_id}, step {obs_msg.step}); is it running?")
            return self._reply

    def work(self):
        while not self._stop.is_set():
            if self.scene is None:
                if getattr(self, "info", None) is None:
                    self._stop.wait(0.1)
                    continue
                self.remote = RemotePolicy(self, self.info, self.action_timeout_s)
                keep_no_decoded_assets()
                self.scene = Scene.for_policy(self.config.task, self.remote, catalog=self.catalog,
                                              horizon=self.config.episode_horizon, render_quality=self.config.render_quality)
                self.get_logger().info(f"{self.worker} ready ({self.config.task}, cameras {list(self.remote.cameras)})")
                self.announce()
            try:
                request = self.requests.get(timeout=0.1)
            except queue.Empty:
                continue
            self._busy = True
            try:
                result = self.run(request)
                self._busy = False
                self.results.publish(result)
                self.announce()
            except Exception:
                # Closing or shut down (Ctrl-C, SIGTERM) mid-episode: nobody is listening. close() waits
                # 5 s for this thread; an episode still waiting for a stopped policy node outlives that,
                # and its publish then fails on the destroyed node before the context is shut down.
                if self._stop.is_set() or not self.context.ok():
                    return
                raise
            finally:
                self._busy = False

    def run(self, request: Perturbation) -> EpisodeResult:
        self.remote.episode_id = request.episode_id
        try:
            differences = scene_differences(self.scene_terms, json.loads(request.scene)) if request.scene else ""
            if differences:
                raise ConfigError(f"{self.worker}'s scene is not the one the search records: {differences}; start "
                                  "every node with the same parameter file (and the same catalog file)")
            outcome = run_episode(self.scene, self.remote, tuple(request.names), request.seed,
                                  episode_id=request.episode_id, worker=self.worker,
                                  on_step=self._publish_first_image,
                                  image_size=SEARCH_IMAGE_SIZE if request.with_image else None)
            return outcome_to_msg(outcome, request.run_id)
        except Exception as exc:  # reported as this worker's error: the search retries elsewhere or stops
            message = str(exc) if isinstance(exc, RoboFailError) else f"{type(exc).__name__}: {exc}"
            failed = EpisodeOutcome(tuple(request.names), request.seed, False, self.scene.steps, None,
                                    request.episode_id, self.worker)
            return outcome_to_msg(failed, request.run_id, error=message)

    def _publish_first_image(self, obs):
        # Rendered only for a subscriber (RViz): a scene that never renders makes no GL context,
        # which holds the robot's meshes (hundreds of MB on a software renderer).
        if self.scene.steps == 0 and self.scene_images.get_subscription_count():
            self.scene_images.publish(image_to_msg(self.scene.render("agentview", 128)))

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        if self.scene is not None:
            self.scene.close()


def main() -> int:
    return run_node(SimNode, "sim_node")


if __name__ == "__main__":
    raise SystemExit(main())
