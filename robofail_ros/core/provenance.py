"""Which policy a run tested (``PolicyRecord``, run.json's ``policy``), and how the run knows it
when the policy runs outside robofail's own process (the ROS workers' policy nodes, or the
user's own nodes with ``policy: external``): every worker's announcement is checked, the
workers must agree, a change mid-run is an error, and the run records exactly what was announced."""
from __future__ import annotations

import dataclasses
import json
import threading
import time

from .errors import ConfigError, record_from_dict
from .scenes.scene import ARM_CONTROLLER, CONTROL_FREQ, ROBOT

IDENTITY = ("name", "observation_keys", "cameras", "sha256", "version")  # what identifies a policy


@dataclasses.dataclass(frozen=True)
class PolicyRecord:
    """What a run records about the policy it tested."""
    spec: str  # as the config named it: a zoo name, a checkpoint path, "scripted" or "external"
    name: str  # the policy's own name (as it announced itself, when it ran as a node)
    source: str  # who ran it, in words
    sha256: str | None = None  # of the checkpoint; None for a policy without one
    path: str | None = None  # the checkpoint file, when robofail loaded it
    algo: str | None = None  # robomimic algorithm, when known
    version: str | None = None  # as an external policy node announced it
    observation_keys: tuple[str, ...] = ()
    cameras: tuple[str, ...] = ()
    external: bool = False  # a ROS node of the user's own, which robofail cannot start (no replay)
    workers: tuple[str, ...] = ()  # the ROS workers whose policy nodes announced it

    @classmethod
    def from_dict(cls, data: dict, where: str) -> "PolicyRecord":
        return record_from_dict(cls, data, where, tuples=("observation_keys", "cameras", "workers"))

    def describe(self) -> str:
        extra = ", ".join(f"{label} {value}" for label, value in (("sha256", self.sha256), ("version", self.version))
                          if value)
        return f"{self.name!r}" + (f" ({extra})" if extra else "")

    def same_checkpoint(self, other: "PolicyRecord") -> bool:
        return (self.name, self.sha256) == (other.name, other.sha256)


def problem_of(info) -> str | None:
    """What is wrong with an announcement, or None."""
    if not isinstance(info, dict):
        return "not a JSON object"
    if not isinstance(info.get("name"), str) or not info["name"]:
        return "it needs a non-empty 'name'"
    for key in ("observation_keys", "cameras"):
        if not isinstance(info.get(key), list) or not all(isinstance(k, str) for k in info[key]):
            return f"it needs {key!r} as a list of names"
    for key in ("sha256", "version"):  # optional
        if info.get(key) is not None and not isinstance(info[key], str):
            return f"its {key!r} must be a string (or absent), got {info[key]!r}"
    size = info.get("image_size")  # optional: the scene's default when absent
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        return f"its 'image_size' must be a positive whole number of pixels (or absent), got {size!r}"
    # Optional: what the node was made for. Another robot, arm controller or control rate with the
    # same action size would run without an error, its actions meaning something else.
    scene = {"robot": ROBOT, "controller": ARM_CONTROLLER, "control_freq": CONTROL_FREQ}
    other = {key: info[key] for key in scene if info.get(key) is not None and info[key] != scene[key]}
    if other:
        return (f"it was made for {', '.join(f'{key} {value!r}' for key, value in other.items())}, but robofail's "
                f"scenes run a {ROBOT} ({ARM_CONTROLLER} arm controller, {CONTROL_FREQ} Hz control), where its actions "
                "would mean something else: train or configure the policy for those")
    return None


def parse_announcement(data: str) -> tuple[dict | None, str | None]:
    """An announcement's policy info, or None and what is wrong with it."""
    try:
        info = json.loads(data)
    except json.JSONDecodeError:
        info = None
    problem = problem_of(info)
    return (None, problem) if problem else (info, None)


class PolicyAnnouncements:
    """The announcements of ``workers`` (thread-safe: they arrive on other threads)."""

    def __init__(self, workers: list[str], config):
        self.workers, self.config = workers, config
        self.external = config.policy == "external"
        self._source = ("external: a policy node not started by robofail, recorded as it announced itself"
                        if self.external else "robofail policy_node (announcement checked against the config)")
        self._cond = threading.Condition()
        self._identities: dict[str, PolicyRecord] = {}
        self._recorded: PolicyRecord | None = None  # the identity the run records, once it started
        self.error: str | None = None  # a bad announcement, or a policy that changed mid-run

    def announce(self, worker: str, data: str) -> None:
        info, problem = parse_announcement(data)
        with self._cond:
            if problem:
                self.error = f"the policy node of {worker} announced {data[:200]!r}: {problem}"
            else:
                identity = PolicyRecord.from_dict({**{key: info.get(key) for key in IDENTITY}, "spec": self.config.policy,
                                                   "source": self._source, "external": self.external},
                                                  where=f"the announcement of {worker}")
                if self._recorded is not None and identity != self._recorded:
                    self.error = (f"the policy of {worker} changed mid-run: it now announces {identity.describe()}, "
                                  f"the run records {self._recorded.describe()}; one run tests one policy, start a new run")
                self._identities[worker] = identity
            self._cond.notify_all()

    def record(self, timeout_s: float) -> PolicyRecord:
        """Waits for every worker's announcement and returns what the run records about its
        policy: what they announced (they must agree, and match the configured policy unless it
        is ``external``)."""
        from .run import policy_record
        expected = None if self.external else policy_record(self.config)  # a bad checkpoint fails here, first
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while len(self._identities) < len(self.workers) and self.error is None:
                if time.monotonic() > deadline:
                    missing = [f"/{w}/policy_info" for w in self.workers if w not in self._identities]
                    raise ConfigError(f"no policy announced itself on {', '.join(missing)} within {timeout_s:.0f} s; "
                                      "start a policy node in each worker's namespace (README: 'Your own policy node')")
                self._cond.wait(0.2)
            if self.error:
                raise ConfigError(self.error)
            if len(set(self._identities.values())) > 1:
                raise ConfigError("the workers run different policies (" + "; ".join(
                    f"{w}: {self._identities[w].describe()}" for w in sorted(self._identities))
                    + "); every worker must run the same one")
            identity = next(iter(self._identities.values()))
            if expected is not None and not identity.same_checkpoint(expected):
                raise ConfigError(f"the workers' policy nodes run {identity.describe()} but the config names "
                                  f"{expected.describe()}; to test a policy node of your own, set policy: external")
            self._recorded = identity
        known = {"path": expected.path, "algo": expected.algo} if expected else {}  # what only loading it tells
        return dataclasses.replace(identity, **known, workers=tuple(sorted(self._identities)))
