"""The one scheduler behind every evaluator: which episode runs on which worker, and what
happens when a worker is slow, dies, answers twice, or keeps failing.

A *transport* runs episodes on named workers (this process, worker processes, ROS worker
pairs) and reports back through the scheduler's callbacks (``ready``, ``finished``, ``lost``,
from any thread). The scheduler hands the next pending episode to an idle worker as soon as one
is free (no batch barrier), re-queues the episode of a worker that stays silent past
``timeout_s`` or is lost, counts the first answer to an episode and drops any later one,
drops an answer that is not to the episode asked for (other perturbations or seed), retries an
episode that hit a worker error once on another worker, and takes a worker that
fails ``max_worker_failures`` episodes in a row out of service. A search ends, finished or
failed with the worker's own message, instead of spinning.

Transports implement ``start(worker, request)`` (non-blocking) and ``poll(timeout)``: deliver
pending events by calling the scheduler (worker processes, this process), or only wait
(transports whose events arrive on threads of their own, like ROS subscriptions).
"""
from __future__ import annotations

import collections
import dataclasses
import sys
import threading
import time
from typing import Callable, Protocol, Sequence

from .episode import EpisodeOutcome
from .errors import RoboFailError


class WorkerError(RoboFailError):
    """An episode could not run on any worker, or no worker is left."""


class Transport(Protocol):
    def start(self, worker: str, request) -> None: ...

    def poll(self, timeout: float) -> None: ...


@dataclasses.dataclass
class _Job:
    request: object
    errors: list = dataclasses.field(default_factory=list)  # (worker, error) of each failed run
    tried_on: set = dataclasses.field(default_factory=set)  # workers it was started on
    failed_on: set = dataclasses.field(default_factory=set)  # workers whose run of it ended in an error

    def errors_note(self) -> str:
        """Each distinct error once, with where it happened ("E (on w0 and w1)", "E (on w0, twice)")."""
        workers_of: dict[str, list[str]] = {}
        for worker, error in self.errors:
            workers_of.setdefault(error, []).append(worker)

        def where(workers):
            counts = collections.Counter(workers)
            return " and ".join(w if n == 1 else f"{w}, {'twice' if n == 2 else f'{n} times'}" for w, n in counts.items())
        return "; ".join(f"{error} (on {where(workers)})" for error, workers in workers_of.items())


class Scheduler:
    """Args:
        transport: runs episodes on workers (see the module docstring).
        timeout_s: a worker silent this long has its episode re-queued (None: never).
        max_attempts: runs of one episode that may end in a worker error before the search fails,
            on as many different workers while another live one has not failed it: a retry goes
            back to the worker it failed on only when no other is free (one between its answer and
            its next "ready"), and a second error there says that worker is broken (it is retired),
            not that the episode is.
        max_worker_failures: worker errors in a row that take a worker out of service.
        log: where warnings go (a line each).
    """

    def __init__(self, transport: Transport, timeout_s: float | None = None, max_attempts: int = 2,
                 max_worker_failures: int = 2, log: Callable[[str], None] | None = None):
        self.transport, self.timeout_s = transport, timeout_s
        self.max_attempts, self.max_worker_failures = max_attempts, max_worker_failures
        self.log = log or (lambda line: print(f"robofail: {line}", file=sys.stderr, flush=True))
        self._cond = threading.Condition()
        self._idle: set[str] = set()
        self._busy: dict[str, tuple[int, float]] = {}  # worker -> (episode id, deadline)
        self._pending: collections.deque[_Job] = collections.deque()
        self._jobs: dict[int, _Job] = {}  # submitted, not yet answered
        self._done: list[EpisodeOutcome] = []
        self._failures: collections.Counter = collections.Counter()  # worker errors in a row
        self._retired: dict[str, str] = {}  # worker -> why it is out of service
        self._seen: set[str] = set()
        self._fatal: str | None = None

    # ----------------------------------------------------------- transport callbacks
    def ready(self, worker: str) -> None:
        """The worker is idle and may take an episode."""
        with self._cond:
            self._seen.add(worker)
            if worker not in self._retired and worker not in self._busy:
                self._idle.add(worker)
            self._cond.notify_all()

    def finished(self, worker: str, episode_id: int, outcome: EpisodeOutcome | None = None,
                 error: str | None = None) -> None:
        """The worker answered an episode: its outcome, or the error that stopped it."""
        with self._cond:
            job = self._jobs.get(episode_id)
            if job is not None and outcome is not None and (
                    tuple(outcome.perturbations), outcome.seed) != (tuple(job.request.perturbations), job.request.seed):
                # Not this episode (a stray message, another run's worker): recording it would file
                # another scene's outcome under this episode. The real answer, or the timeout, follows.
                self.log(f"dropped an answer from {worker} to episode {episode_id}: it ran "
                         f"{list(outcome.perturbations)} with seed {outcome.seed}, the episode is "
                         f"{list(job.request.perturbations)} with seed {job.request.seed}")
                return
            if self._busy.get(worker, (None,))[0] == episode_id:
                del self._busy[worker]
            if job is not None and error is None:
                self._failures[worker] = 0
                del self._jobs[episode_id]  # the first answer counts; a re-queued copy is skipped
                self._done.append(outcome)
            elif job is not None:
                job.errors.append((worker, error))
                self._failures[worker] += 1
                if self._failures[worker] >= self.max_worker_failures:
                    self._retire(worker, f"{self._failures[worker]} episodes in a row failed on it, the last with: {error}")
                job.failed_on.add(worker)
                others = self._seen - set(self._retired) - job.failed_on  # live workers it has not failed on
                if len(job.failed_on) >= self.max_attempts or (len(job.errors) >= self.max_attempts and not others):
                    self._fatal = f"episode {episode_id} could not run: {job.errors_note()}"
                else:
                    self.log(f"episode {episode_id} failed on {worker} ({error}); running it again, on another worker "
                             "when one is free")
                    self._pending.appendleft(job)
            self._cond.notify_all()

    def lost(self, worker: str, reason: str) -> None:
        """The worker is gone (its process died): its episode goes back to the queue."""
        with self._cond:
            self._idle.discard(worker)
            if worker in self._busy:
                episode_id, _ = self._busy.pop(worker)
                if episode_id in self._jobs:
                    self.log(f"{worker} {reason} during episode {episode_id}; re-queued")
                    self._pending.appendleft(self._jobs[episode_id])
            self._cond.notify_all()

    def retire(self, worker: str, reason: str) -> None:
        with self._cond:
            self._retire(worker, reason)
            self._cond.notify_all()

    def wait_for_workers(self, count: int, timeout: float) -> bool:
        """Waits until ``count`` workers have announced themselves (benchmarks start their clock then)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                if len(self._seen) >= count:
                    return True
            self.collect(timeout=0.2)
        return False

    def is_retired(self, worker: str) -> bool:
        with self._cond:
            return worker in self._retired

    def _retire(self, worker: str, reason: str) -> None:
        if worker not in self._retired:
            self._retired[worker] = reason
            self._idle.discard(worker)
            self._seen.add(worker)
            self.log(f"{worker} is out of service: {reason}")

    # ------------------------------------------------------------------- the driver
    def submit(self, request) -> None:
        with self._cond:
            job = _Job(request)
            self._jobs[request.episode_id] = job
            self._pending.append(job)

    @property
    def in_flight(self) -> int:
        with self._cond:
            return len(self._jobs)

    def collect(self, timeout: float | None = None) -> list[EpisodeOutcome]:
        """Waits for at least one answered episode (or ``timeout``) and returns every outcome
        answered since the last call."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._cond:
                self._dispatch()
                if self._fatal:
                    raise WorkerError(self._fatal)
                if self._done:
                    done, self._done = self._done, []
                    return done
                if self._jobs and self._seen and self._seen <= set(self._retired):
                    raise WorkerError("every worker is out of service: " + "; ".join(
                        f"{w}: {why}" for w, why in sorted(self._retired.items())))
                if deadline is not None and time.monotonic() >= deadline:
                    return []
            wait = 0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic()))
            poll = getattr(self.transport, "poll", None)
            if poll is not None:
                poll(wait)
            else:
                with self._cond:
                    self._cond.wait(wait)

    def run(self, requests: Sequence, on_arrival: Callable | None = None) -> list[EpisodeOutcome]:
        """Runs episodes and returns their outcomes in the requests' order; ``on_arrival`` sees
        each group of outcomes as it comes in (the run store records them then)."""
        return run_all(self, requests, on_arrival)

    def _dispatch(self) -> None:
        now = time.monotonic()
        for worker, (episode_id, deadline) in list(self._busy.items()):
            if now > deadline:  # the worker died or hangs: its episode goes to another one
                del self._busy[worker]
                if episode_id in self._jobs:
                    self.log(f"{worker} did not finish episode {episode_id} in {self.timeout_s:.0f} s; re-queued")
                    self._pending.appendleft(self._jobs[episode_id])
        deferred = []
        while self._pending and self._idle:
            job = self._pending.popleft()
            if job.request.episode_id not in self._jobs or any(
                    busy_id == job.request.episode_id for busy_id, _ in self._busy.values()):
                continue  # answered already, or still running elsewhere after a re-queue
            fresh = sorted(self._idle - job.tried_on)
            if not fresh and set(self._busy) - job.tried_on:
                deferred.append(job)  # a retry waits for a live worker that has not tried it yet
                continue
            worker = (fresh or sorted(self._idle))[0]
            self._idle.discard(worker)
            job.tried_on.add(worker)
            self._busy[worker] = (job.request.episode_id, now + (self.timeout_s or float("inf")))
            self.transport.start(worker, job.request)
        self._pending.extendleft(reversed(deferred))


def run_all(evaluator, requests: Sequence, on_arrival: Callable | None = None) -> list[EpisodeOutcome]:
    """Submits every request to ``evaluator`` (anything with submit/collect) and collects until
    each has its outcome; returns them in the requests' order."""
    for request in requests:
        evaluator.submit(request)
    got: dict[int, EpisodeOutcome] = {}
    while len(got) < len(requests):
        arrived = evaluator.collect()
        if on_arrival and arrived:
            on_arrival(arrived)
        got.update((o.episode_id, o) for o in arrived)
    return [got[r.episode_id] for r in requests]


class SynchronousEvaluator:
    """Base of evaluators that answer a batch at once in this process (synthetic and recorded
    policies): the same submit/collect/evaluate interface as the scheduled ones, over ``answer``."""
    num_workers = 1

    def answer(self, requests) -> list[EpisodeOutcome]:
        """The outcomes of ``requests``, in their order: what a subclass provides."""
        raise NotImplementedError

    def evaluate(self, requests, on_arrival=None) -> list[EpisodeOutcome]:
        outcomes = self.answer(requests)
        if on_arrival and outcomes:
            on_arrival(outcomes)
        return outcomes

    def submit(self, request) -> None:
        self._answered = getattr(self, "_answered", []) + self.answer([request])

    def collect(self, timeout: float | None = None) -> list[EpisodeOutcome]:
        answered, self._answered = getattr(self, "_answered", []), []
        return answered

    def close(self) -> None:
        pass
