"""Evaluators: what runs episodes for a searcher, through the one Scheduler (scheduler.py).

- ``EpisodeRunner``: one scene and one policy; runs an episode.
- ``InProcessTransport``: one runner in this process (one worker).
- ``ProcessTransport``: ``num_workers`` spawned processes, a runner each; a process that dies is
  replaced and its episode re-queued.
- ``Evaluator``: a Scheduler over a transport: ``submit``/``collect`` (asynchronous: a worker
  that finishes gets the next episode at once) and ``evaluate`` (a batch, in order).
The ROS system (robofail_ros.nodes) brings a transport over DDS to the same Evaluator.
"""
from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import multiprocessing.connection
import os
import random
import signal
import sys

import numpy as np

from . import interrupts
from .episode import EpisodeOutcome, run_episode
from .errors import ConfigError, PolicyError, RoboFailError
from .perturbations import Catalog
from .policies import load_policy
from .scenes import Scene, keep_no_decoded_assets
from .scenes.tasks import get_task
from .scheduler import Scheduler

SEARCH_IMAGE_SIZE = 84  # the searcher's observation (the paper's 84x84 RGB)
MAX_RESTARTS = 3  # a worker process that dies more often than this is not replaced


@dataclasses.dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs to build its scene and policy (picklable)."""
    task: str
    policy: str
    catalog: str
    horizon: int | None = None  # control steps per episode; None: the task's own
    render_quality: str = "default"
    device: str = "cpu"
    images: bool = False  # attach the perturbed scene image to every outcome (PPO on images, accumulating)
    sha256: str | None = None  # the checkpoint the run records; a worker that loads another one refuses to run
    catalog_digest: str | None = None  # Catalog.digest() of the task's entries; likewise

    def __post_init__(self):
        if self.horizon is None:  # resolved here, so that every worker's scene terms name the number
            object.__setattr__(self, "horizon", get_task(self.task).horizon)


def scene_terms(spec: WorkerSpec) -> dict:
    """What decides a worker's scene, beside the policy: a worker started with another parameter
    file (another task, horizon, render quality or catalog) would run other episodes than the
    run records. The catalog enters as the digest of the task's entries (names and parameters)."""
    return {"task": spec.task, "horizon": spec.horizon, "render_quality": spec.render_quality,
            "catalog": spec.catalog_digest}


def scene_differences(worker: dict, wanted: dict) -> str:
    """The terms in which a worker's scene differs from the one asked for ("" when none)."""
    return ", ".join(f"{key} {worker.get(key)!r} (the search's: {wanted.get(key)!r})"
                     for key in sorted(set(worker) | set(wanted)) if worker.get(key) != wanted.get(key))


class EpisodeRunner:
    """One scene and one policy, in this process."""

    def __init__(self, spec: WorkerSpec, worker: str = "local"):
        self.spec, self.worker = spec, worker
        self.policy = load_policy(spec.policy, task=spec.task, device=spec.device)
        loaded = getattr(self.policy, "sha256", None)
        if spec.sha256 is not None and loaded != spec.sha256:
            # Retrained or replaced in place since the run started (a worker that restarts loads it again).
            raise PolicyError(f"policy checkpoint {getattr(self.policy, 'path', spec.policy)} changed since the run "
                              f"started: its sha256 is now {loaded}, the run records {spec.sha256}; one run tests one "
                              "checkpoint: restore it, or start a new run on the new one")
        catalog = Catalog.load(spec.catalog)
        if spec.catalog_digest is not None and catalog.for_task(spec.task).digest() != spec.catalog_digest:
            raise ConfigError(f"the perturbation catalog {spec.catalog} changed since the run started (its {spec.task} "
                              "entries differ from the run's); restore it, or start a new run on the new one")
        self.scene = Scene.for_policy(spec.task, self.policy, catalog=catalog, horizon=spec.horizon,
                                      render_quality=spec.render_quality)

    def reference_image(self) -> np.ndarray:
        self.scene.reset([], seed=0)
        return self.scene.render("agentview", SEARCH_IMAGE_SIZE)

    def run(self, request) -> EpisodeOutcome:
        return run_episode(self.scene, self.policy, request.perturbations, request.seed,
                           episode_id=request.episode_id, worker=self.worker,
                           image_size=SEARCH_IMAGE_SIZE if self.spec.images else None)

    def close(self):
        self.scene.close()


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, RoboFailError) else f"{type(exc).__name__}: {exc}"


@contextlib.contextmanager
def global_random_state_kept():
    """Leaves the process's global generators (Python's, numpy's, torch's on the CPU and any GPU it
    has started) as it found them. An episode run in the searcher's own process needs it: the
    robomimic policy seeds torch's generator at every episode, and PPO (through SB3) samples its
    perturbations from that generator, so the search would otherwise depend on the worker count."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    torch = sys.modules.get("torch")  # not imported: nothing of it to keep
    gpus = list(range(torch.cuda.device_count())) if torch is not None and torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=gpus) if torch is not None else contextlib.nullcontext():
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


class InProcessTransport:
    """One worker: the episode runs in this process when the scheduler polls, leaving the process's
    global random state as it was (as an episode in a worker process does)."""

    def __init__(self, spec: WorkerSpec):
        self.runner = EpisodeRunner(spec)
        self._started: list = []

    def attach(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        scheduler.ready(self.runner.worker)

    def start(self, worker, request):
        self._started.append(request)

    def poll(self, timeout):
        while self._started:
            request = self._started.pop(0)
            try:
                with global_random_state_kept():
                    outcome, error = self.runner.run(request), None
            except Exception as exc:  # reported as the worker's error: the scheduler retries, then fails the run
                interrupts.reraise(exc)
                outcome, error = None, _describe(exc)
            self.scheduler.finished(self.runner.worker, request.episode_id, outcome, error)
            self.scheduler.ready(self.runner.worker)

    def reference_image(self):
        return self.runner.reference_image()

    def close(self):
        self.runner.close()


def _process_main(spec: WorkerSpec, worker: str, conn) -> None:
    # Ctrl-C reaches every process of the terminal's group; the parent alone decides to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    keep_no_decoded_assets()
    try:
        runner = EpisodeRunner(spec, worker)
    except Exception as exc:
        conn.send(("broken", _describe(exc)))
        return
    try:
        conn.send(("ready",))
        while (request := conn.recv()) is not None:
            try:
                outcome, error = runner.run(request), None
            except Exception as exc:  # noqa: BLE001  (any error is the worker's to report, not to die of)
                outcome, error = None, _describe(exc)
            conn.send(("finished", request.episode_id, outcome, error))
            conn.send(("ready",))
    except (BrokenPipeError, EOFError, ConnectionResetError):
        pass  # the parent is gone (killed): nobody is left to report to
    finally:
        runner.close()


class ProcessTransport:
    """``num_workers`` spawned processes (each owns its MuJoCo and GL context), each on a pipe of
    its own: a process killed mid-write can break only its own pipe, never the others'."""

    def __init__(self, spec: WorkerSpec, num_workers: int):
        self.spec = spec
        self._context = multiprocessing.get_context("spawn")
        self._processes: dict[str, tuple] = {}  # worker -> (process, connection)
        self._restarts: dict[str, int] = {}
        self._started: set[str] = set()  # workers whose process has been ready at least once
        self._local: EpisodeRunner | None = None
        for i in range(num_workers):
            self._spawn(f"worker_{i}")

    def _spawn(self, worker: str) -> None:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_process_main, args=(self.spec, worker, child),
                                        name=f"robofail-{worker}", daemon=True)
        process.start()
        child.close()
        self._processes[worker] = (process, parent)

    def attach(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    def start(self, worker, request):
        try:
            self._processes[worker][1].send(request)
        except OSError:  # it died just now: poll() finds out and re-queues the episode
            pass

    def poll(self, timeout):
        by_conn = {conn: worker for worker, (_, conn) in self._processes.items()}
        for conn in multiprocessing.connection.wait(list(by_conn), timeout=timeout):
            worker = by_conn[conn]
            try:
                kind, *rest = conn.recv()
            except (EOFError, OSError):
                self._died(worker)
                continue
            if kind == "ready":
                self._started.add(worker)
                self.scheduler.ready(worker)
            elif kind == "finished":
                self.scheduler.finished(worker, *rest)
            else:
                self.scheduler.retire(worker, f"it could not start: {rest[0]}")

    def _died(self, worker: str) -> None:
        process, conn = self._processes[worker]
        process.join(timeout=5)
        conn.close()
        if self.scheduler.is_retired(worker):
            return
        self.scheduler.lost(worker, f"died (exit code {process.exitcode})")
        self._restarts[worker] = self._restarts.get(worker, 0) + 1
        if self._restarts[worker] > MAX_RESTARTS:
            when = "" if worker in self._started else " while starting, before its first episode (its own error is above)"
            self.scheduler.retire(worker, f"its process died {self._restarts[worker]} times{when}")
        else:
            self._spawn(worker)

    def reference_image(self):
        if self._local is None:
            self._local = EpisodeRunner(self.spec)
        return self._local.reference_image()

    def close(self):
        for process, conn in self._processes.values():
            try:
                conn.send(None)
            except OSError:
                pass
        for process, conn in self._processes.values():
            process.join(timeout=3)  # an episode in flight is not waited for (Ctrl-C must be prompt)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
            conn.close()
        if self._local is not None:
            self._local.close()


class Evaluator:
    """Runs episodes on a transport's workers through the Scheduler."""

    def __init__(self, transport, num_workers: int, timeout_s: float | None = None):
        self.transport, self.num_workers = transport, num_workers
        self.scheduler = Scheduler(transport, timeout_s)
        transport.attach(self.scheduler)

    def submit(self, request) -> None:
        self.scheduler.submit(request)

    def collect(self, timeout: float | None = None) -> list[EpisodeOutcome]:
        return self.scheduler.collect(timeout)

    def evaluate(self, requests, on_arrival=None) -> list[EpisodeOutcome]:
        return self.scheduler.run(requests, on_arrival)

    def reference_image(self) -> np.ndarray:
        return self.transport.reference_image()

    def close(self) -> None:
        self.transport.close()


WORKER_PEAK_GB = 1.5  # a worker process, or a sim + policy node pair, at its peak (BENCHMARKS.md 6)


def _available_memory_gb() -> float | None:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def check_local_workers(num_workers: int) -> None:
    """Refuses more workers than this machine can run side by side (each is a simulator and a
    policy): more than four per core, or more than its available memory holds, would only
    thrash or be killed for memory, after the run has begun. And refuses to start a search inside
    a worker process that is still importing the script that started it (below)."""
    if getattr(multiprocessing.current_process(), "_inheriting", False):  # as multiprocessing's own check reads it
        # Spawned workers import the parent's script: an unguarded search in it would start again
        # in every worker (each then found the run folder locked and died, over and over).
        raise ConfigError("a search was started by a worker process while it imported the script that started the "
                          "search (worker processes are spawned, and import that script): put the script's search "
                          "under `if __name__ == \"__main__\":`")
    cores = os.cpu_count() or 1
    memory = _available_memory_gb()
    most = 4 * cores if memory is None else max(1, min(4 * cores, int(memory // WORKER_PEAK_GB)))
    if num_workers > most:
        held = "" if memory is None else f", {memory:.0f} GB of memory available at ~{WORKER_PEAK_GB} GB each"
        raise ConfigError(f"num_workers is {num_workers}, more than this machine can run ({cores} cores{held}: at most "
                          f"{most}); set num_workers to {min(cores, most)} (one per core) or fewer")


def make_evaluator(spec: WorkerSpec, num_workers: int) -> Evaluator:
    transport = InProcessTransport(spec) if num_workers == 1 else ProcessTransport(spec, num_workers)
    return Evaluator(transport, num_workers)
