"""The one scheduler behind every evaluator, driven by fake workers (late, dead, duplicate and
failing answers), then by real worker processes, one of them killed."""
import os
import signal
import time

import numpy as np
import pytest

from robofail_ros.core.episode import EpisodeOutcome
from robofail_ros.core.scheduler import Scheduler, SynchronousEvaluator, WorkerError
from robofail_ros.core.search import EpisodeRequest, SearchContext, make_searcher


class FakeWorkers:
    """A transport whose workers answer only when the test says so."""

    def __init__(self):
        self.started = []

    def attach(self, scheduler):
        self.scheduler = scheduler

    def start(self, worker, request):
        self.started.append((worker, request.episode_id))

    def poll(self, timeout):
        time.sleep(min(timeout, 0.01))

    def answer(self, worker, episode_id, error=None):
        outcome = None if error else EpisodeOutcome((), episode_id, True, 1, None, episode_id, worker)
        self.scheduler.finished(worker, episode_id, outcome, error)
        self.scheduler.ready(worker)


def make(workers=("w0", "w1"), **kwargs):
    transport = FakeWorkers()
    scheduler = Scheduler(transport, **{"log": lambda line: None, **kwargs})
    transport.attach(scheduler)
    for w in workers:
        scheduler.ready(w)
    return scheduler, transport


def requests(n):
    return [EpisodeRequest(i, (), i) for i in range(n)]


def test_a_worker_that_finishes_gets_the_next_episode_at_once():
    scheduler, workers = make()
    for r in requests(4):
        scheduler.submit(r)
    assert scheduler.collect(timeout=0.05) == [] and workers.started == [("w0", 0), ("w1", 1)]
    workers.answer("w0", 0)
    assert [o.episode_id for o in scheduler.collect(timeout=1)] == [0]
    scheduler.collect(timeout=0.05)
    assert workers.started[-1] == ("w0", 2), "w0 must not wait for w1's slow episode"


def test_duplicate_and_late_answers_count_once_and_a_silent_worker_is_requeued():
    scheduler, workers = make(timeout_s=0.2)
    for r in requests(2):
        scheduler.submit(r)
    scheduler.collect(timeout=0.05)
    workers.answer("w0", 0)
    workers.answer("w0", 0)  # a duplicate
    assert [o.episode_id for o in scheduler.collect(timeout=1)] == [0]
    # w1 stays silent with episode 1: after the timeout it goes to w0.
    time.sleep(0.3)
    scheduler.collect(timeout=0.05)
    assert workers.started[-1] == ("w0", 1)
    workers.answer("w0", 1)
    workers.answer("w1", 1)  # w1 was only late: its answer comes second and is dropped
    assert [o.worker for o in scheduler.collect(timeout=1)] == ["w0"]
    assert scheduler.collect(timeout=0.05) == [] and scheduler.in_flight == 0


def test_an_answer_to_another_scene_is_dropped_and_the_episodes_own_answer_counts():
    lines = []
    scheduler, workers = make(log=lines.append)
    scheduler.submit(EpisodeRequest(0, ("red_cube",), 11))
    scheduler.collect(timeout=0.05)
    # A stray message (another run on the same ROS domain, say): same episode id, another scene.
    for stray in (EpisodeOutcome(("red_cube",), 12, False, 1, None, 0, "w0"),
                  EpisodeOutcome(("dim_light",), 11, False, 1, None, 0, "w0")):
        scheduler.finished("w0", 0, stray)
    assert scheduler.collect(timeout=0.05) == [] and scheduler.in_flight == 1
    assert "dropped an answer from w0 to episode 0: it ran ['red_cube'] with seed 12, the episode is ['red_cube'] with seed 11" in lines[0]
    scheduler.finished("w0", 0, EpisodeOutcome(("red_cube",), 11, True, 1, None, 0, "w0"))
    assert [(o.seed, o.success) for o in scheduler.collect(timeout=1)] == [(11, True)]


def test_a_lost_worker_has_its_episode_run_elsewhere():
    scheduler, workers = make()
    for r in requests(2):
        scheduler.submit(r)
    scheduler.collect(timeout=0.05)
    scheduler.lost("w1", "died")
    workers.answer("w0", 0)
    scheduler.collect(timeout=1)
    scheduler.collect(timeout=0.05)
    assert workers.started[-1] == ("w0", 1)


@pytest.mark.parametrize("first, second, message", [
    ("ValueError: table_size too large", "ValueError: table_size too large",
     r"episode 0 could not run: ValueError: table_size too large \(on w0 and w1\)$"),  # one error, said once
    ("PolicyError: no action from the policy node of w0", "ValueError: table_size too large",
     r"episode 0 could not run: PolicyError: no action from the policy node of w0 \(on w0\); "
     r"ValueError: table_size too large \(on w1\)$"),
])
def test_a_worker_error_is_retried_once_elsewhere_then_fails_the_run_with_its_message(first, second, message):
    scheduler, workers = make()
    scheduler.submit(EpisodeRequest(0, ("bad",), 0))
    scheduler.collect(timeout=0.05)
    workers.answer("w0", 0, error=first)
    scheduler.collect(timeout=0.05)
    assert workers.started == [("w0", 0), ("w1", 0)], "the retry goes to the other worker"
    workers.answer("w1", 0, error=second)
    with pytest.raises(WorkerError, match=message):
        scheduler.collect(timeout=1)


def test_a_retry_waits_for_the_busy_healthy_worker_instead_of_the_one_that_failed():
    scheduler, workers = make()
    for r in requests(2):
        scheduler.submit(r)
    scheduler.collect(timeout=0.05)
    assert sorted(workers.started) == [("w0", 0), ("w1", 1)]
    workers.answer("w1", 1, error="PolicyError: no action from the policy node of w1")  # w1 idle, w0 busy
    scheduler.collect(timeout=0.05)
    assert ("w1", 1) not in workers.started[2:], "the failed episode must not go back to the worker it failed on"
    workers.answer("w0", 0)
    scheduler.collect(timeout=0.05)
    assert workers.started[2:] == [("w0", 1)]
    workers.answer("w0", 1)
    assert sorted(o.episode_id for o in scheduler.collect(timeout=0.05)) == [1]


def test_a_retry_that_went_back_to_the_failing_worker_does_not_fail_the_run_while_another_worker_is_left():
    """Seen in a fresh-clone CI run: worker_1's policy node was killed; its episode failed, and the
    retry went back to worker_1, because worker_0 had answered its own episode but not yet said
    "ready" (neither idle nor busy). The second error retired worker_1 and, as the episode's second
    failed run, failed the whole search, with worker_0 healthy."""
    scheduler, workers = make()
    for r in requests(2):
        scheduler.submit(r)
    scheduler.collect(timeout=0.05)
    assert sorted(workers.started) == [("w0", 0), ("w1", 1)]
    scheduler.finished("w0", 0, EpisodeOutcome((), 0, True, 1, None, 0, "w0"))  # answered; its "ready" is on the way
    workers.answer("w1", 1, error="no action from the policy node of w1")
    assert [o.episode_id for o in scheduler.collect(timeout=0.05)] == [0]
    assert workers.started[-1] == ("w1", 1), "no other worker was free"
    workers.answer("w1", 1, error="no action from the policy node of w1")
    scheduler.collect(timeout=0.05)  # w1 is retired; the episode waits, and the run goes on
    assert scheduler.is_retired("w1")
    scheduler.ready("w0")
    scheduler.collect(timeout=0.05)
    assert workers.started[-1] == ("w0", 1)
    workers.answer("w0", 1)
    assert [(o.episode_id, o.worker) for o in scheduler.collect(timeout=1)] == [(1, "w0")]


def test_with_no_other_worker_left_an_episode_that_fails_twice_on_one_fails_the_run_with_its_message():
    scheduler, workers = make(workers=("w0",))
    scheduler.submit(EpisodeRequest(0, ("tall_table",), 0))
    scheduler.collect(timeout=0.05)
    workers.answer("w0", 0, error="ValueError: size 1 must be positive")
    scheduler.collect(timeout=0.05)
    workers.answer("w0", 0, error="ValueError: size 1 must be positive")
    with pytest.raises(WorkerError, match=r"episode 0 could not run: ValueError: size 1 must be positive \(on w0, twice\)$"):
        scheduler.collect(timeout=1)


def test_a_worker_that_keeps_failing_is_taken_out_of_service_and_the_rest_go_on():
    scheduler, workers = make(max_attempts=3)
    for r in requests(4):
        scheduler.submit(r)
    answered, outcomes = 0, []
    while len(outcomes) < 4:
        outcomes += scheduler.collect(timeout=0.05)
        for worker, eid in workers.started[answered:]:  # w1's policy node is gone: every episode fails there
            workers.answer(worker, eid, error="no action from the policy node" if worker == "w1" else None)
        answered = len(workers.started)
    assert scheduler.is_retired("w1")
    assert [w for w, _ in workers.started].count("w1") == 2, "retired after 2 failures in a row, then never used"
    assert sorted(o.episode_id for o in outcomes) == [0, 1, 2, 3] and {o.worker for o in outcomes} == {"w0"}


def test_a_search_fails_when_every_worker_is_out_of_service():
    scheduler, workers = make(workers=("w0",), max_worker_failures=1, max_attempts=5)
    scheduler.submit(EpisodeRequest(0, (), 0))
    scheduler.collect(timeout=0.05)
    workers.answer("w0", 0, error="scene broke")
    with pytest.raises(WorkerError, match="every worker is out of service: w0: .*scene broke"):
        scheduler.collect(timeout=1)


class ShuffledEvaluator(SynchronousEvaluator):
    """Answers at random moments, in random order, with outcomes fixed by each episode's seed."""

    def __init__(self, rates, order_seed):
        self.rates, self.rng, self.waiting = rates, np.random.default_rng(order_seed), []

    def answer(self, requests):
        return [EpisodeOutcome(r.perturbations, r.seed, bool(np.random.default_rng(r.seed).random() >= self.rates[r.perturbations[0]]),
                               1, None, r.episode_id) for r in requests]

    def submit(self, request):
        self.waiting.extend(self.answer([request]))

    def collect(self, timeout=None):
        self.rng.shuffle(self.waiting)
        k = int(self.rng.integers(1, len(self.waiting) + 1))
        out, self.waiting = self.waiting[:k], self.waiting[k:]
        return out


@pytest.mark.parametrize("name", ["identify", "thompson"])
def test_the_same_seed_gives_the_same_episodes_whatever_order_they_finish_in(name):
    rates = {f"m{i}": r for i, r in enumerate([0.9, 0.5, 0.3, 0.0, 0.0, 0.1])}

    def episodes(order_seed):
        evaluator = ShuffledEvaluator(rates, order_seed)
        seen = []
        ctx = SearchContext(evaluator, 80, 7, num_workers=4, on_outcomes=seen.extend)
        make_searcher(name, list(rates), 7).search(ctx)
        return sorted((o.episode_id, o.perturbations, o.seed) for o in seen)

    first = episodes(0)
    assert len(first) == 80 and [e[0] for e in first] == list(range(80))
    assert episodes(1) == first == episodes(2)


@pytest.mark.slow
def test_a_killed_worker_process_has_its_episode_run_again(tmp_path):
    from robofail_ros.core.workers import Evaluator, ProcessTransport, WorkerSpec
    from robofail_ros.core.perturbations import DEFAULT_CATALOG
    spec = WorkerSpec(task="Lift", policy="scripted", catalog=str(DEFAULT_CATALOG), horizon=60)
    transport = ProcessTransport(spec, 2)
    evaluator = Evaluator(transport, 2)
    try:
        for r in requests(6):
            evaluator.submit(r)
        got = []
        while not got:
            got += evaluator.collect(timeout=120)
        os.kill(transport._processes["worker_1"][0].pid, signal.SIGKILL)  # mid-run: its episode is lost with it
        while len(got) < 6:
            got += evaluator.collect(timeout=120)
    finally:
        evaluator.close()
    assert sorted(o.episode_id for o in got) == list(range(6))
    assert all(o.sim_error is None for o in got)


@pytest.mark.slow
def test_a_worker_restarted_on_a_checkpoint_replaced_since_the_start_refuses_it(tmp_path):
    """A checkpoint retrained in place mid-run: a worker process that restarts loads the file again
    and would run the new policy under the sha256 the run records. It refuses and is taken out;
    the run goes on with the worker that still holds the recorded checkpoint."""
    import shutil
    from robofail_ros.core.perturbations import DEFAULT_CATALOG
    from robofail_ros.core.policies import load_policy
    from robofail_ros.core.workers import Evaluator, ProcessTransport, WorkerSpec
    checkpoint = tmp_path / "policy.pth"
    recorded = load_policy("lift_bc_low_dim", task="Lift")
    shutil.copy(recorded.path, checkpoint)
    spec = WorkerSpec(task="Lift", policy=str(checkpoint), catalog=str(DEFAULT_CATALOG), horizon=20,
                      sha256=recorded.sha256)
    transport = ProcessTransport(spec, 2)
    evaluator = Evaluator(transport, 2)
    try:
        for r in requests(120):  # more than worker_0 runs while worker_1 restarts
            evaluator.submit(r)
        got = []
        while not got:
            got += evaluator.collect(timeout=120)
        shutil.copy(load_policy("lift_bc_rnn_low_dim", task="Lift").path, checkpoint)  # retrained in place
        os.kill(transport._processes["worker_1"][0].pid, signal.SIGKILL)
        while len(got) < 120 and not evaluator.scheduler.is_retired("worker_1"):
            got += evaluator.collect(timeout=1)
        after = evaluator.collect(timeout=120)  # the run goes on, on worker_0
    finally:
        evaluator.close()
    assert evaluator.scheduler.is_retired("worker_1"), "the restarted worker ran the replaced checkpoint"
    assert after and all(o.worker == "worker_0" for o in after)
    assert "changed since the run started" in evaluator.scheduler._retired["worker_1"]


PARENT = """
import sys, time
from robofail_ros.core.perturbations import DEFAULT_CATALOG
from robofail_ros.core.search.base import EpisodeRequest
from robofail_ros.core.workers import Evaluator, ProcessTransport, WorkerSpec
spec = WorkerSpec(task="Lift", policy="scripted", catalog=str(DEFAULT_CATALOG), horizon=200)
transport = ProcessTransport(spec, 2)
evaluator = Evaluator(transport, 2)
for i in range(40):
    evaluator.submit(EpisodeRequest(i, ("heavy_cube",), i))
evaluator.collect(timeout=120)
print(" ".join(str(p.pid) for p, _ in transport._processes.values()), flush=True)
time.sleep(600)
"""


@pytest.mark.slow
def test_worker_processes_exit_quietly_when_their_parent_is_killed(python):
    import subprocess
    parent = subprocess.Popen([python, "-c", PARENT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    workers = [int(p) for p in parent.stdout.readline().split()]
    assert len(workers) == 2, parent.stderr.read()
    parent.kill()  # mid-search: the workers are running or about to be handed episodes
    parent.wait()
    stderr = parent.stderr.read()  # EOF once every process holding the pipe (the workers too) is gone
    for pid in workers:  # gone, or a zombie that only waits to be reaped by whoever adopted it
        try:
            state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            state = "gone"
        assert state in ("gone", "Z", "X"), f"worker {pid} still runs (state {state})"
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr[-2000:]
