"""Which policy a run tested when the policy runs outside robofail's own process (the ROS
workers' policy nodes, or the user's own nodes with ``policy: external``): every worker's
announcement is checked, the workers must agree, a change mid-run is an error, and the run
records exactly what was announced."""
from __future__ import annotations

import json
import threading
import time

from .errors import ConfigError

IDENTITY = ("name", "observation_keys", "cameras", "sha256", "version")  # what identifies a policy


def problem_of(info) -> str | None:
    """What is wrong with an announcement, or None."""
    if not isinstance(info, dict):
        return "not a JSON object"
    if not isinstance(info.get("name"), str) or not info["name"]:
        return "it needs a non-empty 'name'"
    for key in ("observation_keys", "cameras"):
        if not isinstance(info.get(key), list) or not all(isinstance(k, str) for k in info[key]):
            return f"it needs {key!r} as a list of names"
    size = info.get("image_size")  # optional: the scene's default when absent
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        return f"its 'image_size' must be a positive whole number of pixels (or absent), got {size!r}"
    return None


def parse_announcement(data: str) -> tuple[dict | None, str | None]:
    """An announcement's policy info, or None and what is wrong with it."""
    try:
        info = json.loads(data)
    except json.JSONDecodeError:
        info = None
    problem = problem_of(info)
    return (None, problem) if problem else (info, None)


def describe(identity: dict) -> str:
    extra = ", ".join(f"{k} {identity[k]}" for k in ("sha256", "version") if identity.get(k))
    return f"{identity['name']!r}" + (f" ({extra})" if extra else "")


class PolicyAnnouncements:
    """The announcements of ``workers`` (thread-safe: they arrive on other threads)."""

    def __init__(self, workers: list[str], config):
        self.workers, self.config = workers, config
        self._cond = threading.Condition()
        self._identities: dict[str, dict] = {}
        self._recorded: dict | None = None  # the identity the run records, once it started
        self.error: str | None = None  # a bad announcement, or a policy that changed mid-run

    def announce(self, worker: str, data: str) -> None:
        info, problem = parse_announcement(data)
        with self._cond:
            if problem:
                self.error = f"the policy node of {worker} announced {data[:200]!r}: {problem}"
            else:
                identity = {key: info.get(key) for key in IDENTITY}
                if self._recorded is not None and identity != self._recorded:
                    self.error = (f"the policy of {worker} changed mid-run: it now announces {describe(identity)}, "
                                  f"the run records {describe(self._recorded)}; one run tests one policy, start a new run")
                self._identities[worker] = identity
            self._cond.notify_all()

    def record(self, timeout_s: float) -> dict:
        """Waits for every worker's announcement and returns what the run records about its
        policy: what they announced (they must agree, and match the configured policy unless it
        is ``external``)."""
        from .run import policy_info
        external = self.config.policy == "external"
        expected = None if external else policy_info(self.config)  # a bad checkpoint fails here, first
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
            if len({json.dumps(i, sort_keys=True) for i in self._identities.values()}) > 1:
                raise ConfigError("the workers run different policies (" + "; ".join(
                    f"{w}: {describe(self._identities[w])}" for w in sorted(self._identities))
                    + "); every worker must run the same one")
            identity = next(iter(self._identities.values()))
            if expected is not None and (identity["name"] != expected["name"] or identity["sha256"] != expected["sha256"]):
                raise ConfigError(f"the workers' policy nodes run {describe(identity)} but the config names "
                                  f"{describe(expected)}; to test a policy node of your own, set policy: external")
            self._recorded = identity
        source = ("external: a policy node not started by robofail, recorded as it announced itself"
                  if external else "robofail policy_node (announcement checked against the config)")
        return {**(expected or {}), **identity, "spec": self.config.policy, "source": source, "external": external,
                "workers": sorted(self._identities)}
