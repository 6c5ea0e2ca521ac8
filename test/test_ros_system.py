"""The ROS 2 system with real node processes over DDS (own domain, localhost discovery):
a search end to end with 2 workers, the service from another process, a killed worker, a
killed and resumed search node, one killed under `robofail run`, hostile requests, a malformed
policy announcement, and a policy that answers with the wrong size."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ros]

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = """/**:
  ros__parameters:
    policy: scripted
    searcher: thompson
    nominal_episodes: 2
    num_workers: 2
    seed: 3
    perturbations: [shaky_arm, laggy_arm, very_heavy_cube]
    output_dir: {out}
"""
_domain = iter(range(int(os.environ["ROS_DOMAIN_ID"]) + 20, int(os.environ["ROS_DOMAIN_ID"]) + 120))


@pytest.fixture
def ros_env(tmp_path):
    """An environment of a fresh ROS domain, and the params file for it."""
    env = dict(os.environ, ROS_DOMAIN_ID=str(next(_domain)), PYTHONUNBUFFERED="1")
    params = tmp_path / "search.yaml"
    params.write_text(CONFIG.format(out=tmp_path / "runs"))
    return env, params


def ros_run(env, params, out, *extra):
    return subprocess.Popen([sys.executable, "-m", "robofail_ros.cli", "ros-run", "--params-file", str(params),
                             "--out", str(out), *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def rows(out):
    if not (out / "episodes.sqlite").exists():
        return []
    with sqlite3.connect(out / "episodes.sqlite") as db:
        # The store connects (which makes the file) and then creates its table: a poll in between
        # finds the file without the table, which is no episode yet, not an error.
        if not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'episodes'").fetchone():
            return []
        return db.execute("SELECT episode_id, perturbations, seed, success, steps, worker FROM episodes "
                          "ORDER BY episode_id").fetchall()


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def finished(out):
    return (out / "run.json").exists() and json.loads((out / "run.json").read_text())["finished"]


def stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
    try:
        return proc.communicate(timeout=60)[0]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.communicate()[0]


def run_to_end(proc, out, what, timeout=300):
    """Waits for an --exit-when-done run to finish and exit; returns its log (stopped either way)."""
    try:
        wait_for(lambda: finished(out), timeout, what)
        proc.wait(timeout=60)
    finally:
        log = stop(proc)
    return log


def interrupt(procs):
    """Ctrl-C to every process, then waits for each: one still running 30 s on fails the test, and
    is killed first, so that no node outlives it (a hung one had kept the next one from its Ctrl-C)."""
    for p in procs:
        p.send_signal(signal.SIGINT)
    stuck = []
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            stuck.append(p.args)
    assert not stuck, f"still running 30 s after Ctrl-C (killed): {stuck}"


def node_pids(pattern):
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def call(domain, request_fields, timeout=20):
    """The service, called from this test process (not the search node's)."""
    import rclpy
    from robofail_ros.nodes.common import call_service
    from robofail_ros.srv import GetFailureProbabilities
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(domain))
    try:
        node = rclpy.create_node("test_client", context=context)
        client = node.create_client(GetFailureProbabilities, "/search_node/get_failure_probabilities")
        assert client.wait_for_service(timeout_sec=timeout)
        executor = rclpy.executors.SingleThreadedExecutor(context=context)
        executor.add_node(node)
        return call_service(executor, client, GetFailureProbabilities.Request(**request_fields), timeout)
    finally:
        rclpy.shutdown(context=context)


def test_a_node_whose_dds_teardown_hangs_still_exits_after_sigterm(ros_env):
    """A hung teardown (seen once: an installed policy_node that never exited after SIGTERM) must
    not keep a node alive: the kernel ends it TEARDOWN_LIMIT_S after its close(), and it says first
    where it hung."""
    from robofail_ros.nodes.common import TEARDOWN_LIMIT_S
    env, _ = ros_env
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "ros_hanging_teardown.py")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        start = time.monotonic()
        proc.terminate()
        assert proc.wait(timeout=TEARDOWN_LIMIT_S + 20) == -signal.SIGALRM
        assert time.monotonic() - start >= TEARDOWN_LIMIT_S - 1  # it did wait for the teardown first
        stack = proc.stderr.read()
        assert "in destroy_node" in stack and "in _bounded_teardown" in stack, stack
    finally:
        proc.kill()
        proc.wait()


def test_a_node_whose_context_shuts_down_without_waking_its_executor_still_exits(ros_env):
    """rclpy's signal thread wakes the executor before it shuts the context down; an executor
    that woke in between used to wait forever (an installed policy_node ignored SIGTERM so in about
    1 of 25 runs). Here the context is shut down with no wake-up at all: the node must notice."""
    from robofail_ros.nodes.common import SHUTDOWN_POLL_S
    env, _ = ros_env
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "ros_unwoken_shutdown.py")], env=env,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "shut down"
        assert proc.wait(timeout=SHUTDOWN_POLL_S + 10) == 0
    finally:
        proc.kill()
        proc.wait()


def test_two_workers_end_to_end_service_matches_store_and_in_process_search(ros_env, tmp_path, python):
    env, params = ros_env
    out = tmp_path / "runs" / "ros"
    proc = ros_run(env, params, out, "--budget", "8")
    try:
        wait_for(lambda: finished(out), 240, "the ROS search to finish")
        recorded = rows(out)
        assert [r[0] for r in recorded] == list(range(10))
        wait_for(lambda: (out / "report" / "index.html").exists(), 180, "the search node's end-of-run report")
        assert {r[5] for r in recorded} == {"worker_0", "worker_1"}, "both workers must have run episodes"

        domain = env["ROS_DOMAIN_ID"]
        empirical = call(domain, {"run_id": "", "method": "empirical"})
        summary = json.loads((out / "summary.json").read_text())
        assert empirical.success and empirical.episodes == 10 == summary["episodes"]
        stored = {m["name"]: m for m in summary["modes"]}
        for mode in empirical.modes:
            assert (mode.trials, mode.failures) == (stored[mode.name]["trials"], stored[mode.name]["failures"])
            assert mode.probability == pytest.approx(stored[mode.name]["p_fail"])
            assert mode.ci_low <= mode.probability <= mode.ci_high
            # The class and the anytime-valid bounds it rests on travel with every mode.
            assert mode.status == stored[mode.name]["status"] and mode.status in ("fails", "safe", "undecided")
            assert mode.cs_low <= mode.probability <= mode.cs_high
            assert (mode.cs_low, mode.cs_high) == pytest.approx((stored[mode.name]["cs_low"], stored[mode.name]["cs_high"]))
        assert list(empirical.top_modes) == summary["top"] and empirical.top_settled == summary["top_settled"]
        assert empirical.order_settled == (summary["unordered"] == [])
        assert empirical.confidence == 0.95 and empirical.threshold == pytest.approx(summary["threshold"])
        assert "a mode fails above P(fail)" in empirical.verdict
        pi = call(domain, {"run_id": "ros", "method": "pi"})
        assert pi.success and sum(m.probability for m in pi.modes) == pytest.approx(1.0, abs=1e-6)
        # `robofail query`, as the README has users run it, gives the same table.
        printed = subprocess.run([python, "-m", "robofail_ros.cli", "query", "--json", "--timeout", "60"], env=env,
                                 capture_output=True, text=True, timeout=180)
        assert printed.returncode == 0, printed.stderr[-2000:]
        queried = json.loads(printed.stdout)
        assert queried["episodes"] == 10 and queried["verdict"] == empirical.verdict
        assert {m["name"]: (m["status"], m["trials"], m["failures"]) for m in queried["modes"]} == \
            {m.name: (m.status, m.trials, m.failures) for m in empirical.modes}

        damaged = tmp_path / "runs" / "damaged"  # a finished run whose summary.json was damaged since
        damaged.mkdir()
        (damaged / "run.json").write_text((out / "run.json").read_text())
        (damaged / "summary.json").write_text('{"run": "damaged", "modes": [')
        for fields, message in (({"run_id": "nope", "method": "empirical"}, "unknown run id 'nope'"),
                                ({"run_id": "damaged", "method": "empirical"}, "its summary.json is not one this"),
                                ({"run_id": "", "method": "bayes"}, "unknown method 'bayes'"),
                                ({"run_id": "../../etc", "method": "pi"}, "run_id must be"),
                                ({"run_id": "..", "method": "empirical"}, "run_id must be"),
                                ({"run_id": "x" * 10000, "method": "pi"}, "run_id must be"),
                                ({"run_id": "", "method": "m" * 10000}, "unknown method")):
            bad = call(domain, fields)
            assert not bad.success and message in bad.message and not bad.modes
        assert call(domain, {"run_id": "", "method": ""}).success, "the node must keep serving after bad requests"
    finally:
        stop(proc)
    assert proc.returncode == 0

    # The same config through `robofail search` (worker processes, no ROS) gives the same episodes.
    local = tmp_path / "local"
    result = subprocess.run([python, "-m", "robofail_ros.cli", "search", "--config", str(params), "--budget", "8",
                             "--out", str(local)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert [r[:5] for r in rows(local)] == [r[:5] for r in recorded]


def test_query_and_run_refuse_a_bad_request_before_waiting_for_a_search_node(python):
    """No search node runs here: each bad flag must be named at once, not after --timeout
    seconds of waiting for the service (or, with a negative timeout, forever once it appears)."""
    for argv, message in ((["query", "--method", "bayes"], "--method 'bayes': use one of empirical, pi"),
                          (["query", "--run-id", "../../etc"], "run_id must be a run folder's name"),
                          (["query", "--timeout", "-1"], "--timeout must be a positive number of seconds"),
                          (["run", "--timeout", "nan"], "--timeout must be a positive number of seconds")):
        timeout = [] if "--timeout" in argv else ["--timeout", "600"]
        result = subprocess.run([python, "-m", "robofail_ros.cli", *argv, *timeout], capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 2 and message in result.stderr, (argv, result.stderr[-1000:])
    # ros-run checks its flags before any node starts; 0 workers used to mean "the file's number"
    for argv, message in ((["--num-workers", "0"], "num_workers must be >= 1 (episodes at once), got 0"),
                          (["--episode-timeout", "-3"], "episode_timeout_s must be a positive number of seconds"),
                          # the policy nodes exited with it and the search node kept the system up until killed
                          (["--policy", "nope"], "unknown policy 'nope'. Known policies: ")):
        result = subprocess.run([python, "-m", "robofail_ros.cli", "ros-run", "--budget", "2", *argv], capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 2 and message in result.stderr, (argv, result.stderr[-1000:])


def test_sequential_ppo_search_over_ros_records_every_episode_once(ros_env, tmp_path):
    """The paper's setting over DDS: PPO picks perturbations that accumulate while the policy
    succeeds, and sees the perturbed scene image that the sim nodes send back."""
    env, params = ros_env
    params.write_text(params.read_text() + (
        "    ppo: {policy: CnnPolicy, observation: image, max_perturbations: 2, n_envs: 2, n_steps: 2,"
        " batch_size: 4, n_epochs: 1}\n    report: false\n"))
    out = tmp_path / "runs" / "ppo"
    proc = ros_run(env, params, out, "--searcher", "ppo", "--budget", "8", "--exit-when-done")
    log = run_to_end(proc, out, "the PPO search to finish")
    recorded = rows(out)
    assert [r[0] for r in recorded] == list(range(10)), log[-3000:]  # 2 nominal + 8, each once
    assert {r[5] for r in recorded} == {"worker_0", "worker_1"}
    perturbed = [json.loads(r[1]) for r in recorded[2:]]
    assert any(len(p) == 2 for p in perturbed), "a success must be followed by a second perturbation"
    summary = json.loads((out / "summary.json").read_text())
    assert {m["name"] for m in summary["composites"]} == {" + ".join(sorted(p)) for p in perturbed if len(p) == 2}
    assert (out / "ppo" / "latest.zip").is_file()
    # The table the search node prints starts a line of its own, not the end of ros-run's progress bar.
    assert "\nfailure mode " in log, log[-3000:]


def test_the_run_search_action_gives_feedback_cancels_resumably_and_refuses_hostile_goals(ros_env, tmp_path):
    import rclpy
    from rclpy.action import ActionClient

    from robofail_ros.action import RunSearch
    from robofail_ros.msg import Perturbation
    env, params = ros_env
    params.write_text(params.read_text() + "    ppo: {observation: image, max_perturbations: 2, n_envs: 2, n_steps: 2, "
                      "batch_size: 4, n_epochs: 1}\n")
    proc = ros_run(env, params, tmp_path / "runs" / "unused", "--wait-for-goals")
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(env["ROS_DOMAIN_ID"]))
    node = rclpy.create_node("test_action_client", context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    client = ActionClient(node, RunSearch, "/search_node/run_search")
    # The sim nodes render the scene image only for a subscriber (RViz); this test is one.
    from sensor_msgs.msg import Image
    scene_images = []
    node.create_subscription(Image, "/worker_0/scene_image", scene_images.append, 10)
    requests = []
    for worker in ("worker_0", "worker_1"):
        node.create_subscription(Perturbation, f"/{worker}/perturbation", requests.append, 50)

    def send(cancel_after=None, **fields):
        feedback = []
        sent = client.send_goal_async(RunSearch.Goal(**fields), feedback_callback=lambda m: feedback.append(m.feedback))
        executor.spin_until_future_complete(sent, timeout_sec=60)
        handle = sent.result()
        assert handle is not None and handle.accepted
        done, cancelled, deadline = handle.get_result_async(), False, time.monotonic() + 300
        while not done.done() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.2)
            if cancel_after and len(feedback) >= cancel_after and not cancelled:
                handle.cancel_goal_async()
                cancelled = True
        return done.result().result, feedback

    try:
        assert client.wait_for_server(timeout_sec=120)
        wait_for(lambda: executor.spin_once(timeout_sec=0.1) or node.count_publishers("/worker_0/scene_image"), 60,
                 "worker_0's sim node to be discovered")
        cancelled_out = tmp_path / "runs" / "cancelled"
        result, feedback = send(cancel_after=3, budget=60, out=str(cancelled_out))
        assert result.cancelled and not result.success
        assert not finished(cancelled_out) and 3 <= len(rows(cancelled_out)) < 62

        out = tmp_path / "runs" / "goal"
        result, feedback = send(budget=6, out=str(out))
        assert result.success and result.episodes == 8 and result.run_id == "goal", result.message
        assert len(feedback) >= 8 and feedback[-1].episodes == 8 and feedback[-1].budget == 8
        assert {f.out for f in feedback} == {str(out)}
        assert [r[0] for r in rows(out)] == list(range(8)) and finished(out)
        assert {m.name for m in result.modes} == {"shaky_arm", "laggy_arm", "very_heavy_cube"} and result.verdict
        more = tmp_path / "runs" / "goal_more"
        result, _ = send(budget=10, out=str(more), extend=str(out))
        assert result.success and result.episodes == 12, result.message
        assert rows(more)[:8] == rows(out) and [r[0] for r in rows(more)] == list(range(12)) and finished(more)
        assert scene_images, "a subscribed scene_image topic must carry the episodes' first frames"
        frame = np.frombuffer(bytes(scene_images[-1].data), dtype=np.uint8)
        assert (scene_images[-1].height, scene_images[-1].width, scene_images[-1].encoding) == (128, 128, "rgb8")
        assert frame.size == 128 * 128 * 3 and frame.std() > 10

        for fields, message in (({"perturbations": ["red_tabel"]}, "unknown perturbation 'red_tabel'"),
                                ({"budget": 0}, "budget must be a positive number"),
                                ({"task": "x" * 10_000}, "task is 10000 characters long"),
                                # the sim nodes' scenes are Lift: a Stack run would record Lift episodes as Stack's
                                ({"task": "Stack"}, "the workers run the task of the node's parameter file ('Lift'), "
                                                    "not 'Stack'; start the system with task: Stack"),
                                ({"policy": "random"}, "the workers run the policy of the node's parameter file"),
                                ({"searcher": "thomson"}, "Did you mean 'thompson'"),
                                ({"extend": "x" * 10_000, "budget": 20}, "cannot be a run folder: File name too long"),
                                ({"extend": str(out), "budget": 20, "resume": True}, "give one of them"),
                                ({"extend": str(out), "budget": 6}, "an extension needs a larger one")):
            bad, _ = send(**fields)
            assert not bad.success and message in bad.message, bad.message

        # A goal's searcher gets the scene images it needs (PPO on images of accumulated
        # perturbations), although the node's own searcher (thompson) needs none: the requests
        # used to follow the node's searcher, and PPO saw the unperturbed scene after each success.
        result, _ = send(searcher="ppo", budget=4, out=str(tmp_path / "elsewhere" / "ppo_goal"))
        assert result.success, result.message
        asked = [r.with_image for r in requests if r.run_id == "ppo_goal"]
        assert asked and all(asked) and not any(r.with_image for r in requests if r.run_id == "goal")

        # A past run that did not finish is served from its store, read with the config in its run.json.
        past = call(env["ROS_DOMAIN_ID"], {"run_id": "cancelled", "method": "empirical"})
        assert past.success and past.episodes == len(rows(cancelled_out)), past.message
        other, _ = send(out=str(cancelled_out), resume=True, budget=7)  # what a goal gives must match the run
        assert not other.success and "different config (differs in: budget)" in other.message, other.message
        result, _ = send(out=str(cancelled_out), resume=True)  # the budget it recorded, 60, not the file's
        assert result.success and [r[0] for r in rows(cancelled_out)] == list(range(62)) and finished(cancelled_out)
        # A past run is served by its id although its folder lies outside output_dir (the node ran it).
        past = call(env["ROS_DOMAIN_ID"], {"run_id": "ppo_goal", "method": "pi"})
        assert past.success and past.episodes == 6, past.message
        # The current run is served whatever its folder's name (a name asked for must follow RUN_ID's rule).
        result, _ = send(budget=2, out=str(tmp_path / "runs" / "my run"))
        assert result.success and result.run_id == "my run", result.message
        current = call(env["ROS_DOMAIN_ID"], {"run_id": "", "method": "empirical"})
        assert current.success and current.episodes == 4 and "'my run'" in current.message, current.message
    finally:
        rclpy.shutdown(context=context)
        stop(proc)


def test_a_simulator_error_in_a_sim_node_ends_the_ros_search_with_its_message(ros_env, tmp_path):
    """Not a RoboFail error (MuJoCo refuses a 3 m high table): each worker reports it, the episode
    is retried once on the other worker, and the search stops with MuJoCo's message instead of
    re-queueing it forever."""
    env, params = ros_env
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("perturbations:\n  - {name: tall_table, factor: table_size, size: [0.8, 0.8, 3.0]}\n")
    params.write_text(params.read_text().replace("[shaky_arm, laggy_arm, very_heavy_cube]", "[tall_table]")
                      + f"    catalog: {catalog}\n    top_k: 1\n")
    out = tmp_path / "runs" / "broken"
    proc = ros_run(env, params, out, "--budget", "4", "--exit-when-done")
    try:
        proc.wait(timeout=300)
    finally:
        log = stop(proc)
    assert proc.returncode == 2, log[-3000:]
    assert "could not run" in log and "must be positive" in log, log[-3000:]
    assert not finished(out) and all(json.loads(r[1]) == [] for r in rows(out))


def run_and_kill(env, params, out, node, *extra):
    """A 12-episode run in which worker_1's ``node`` is SIGKILLed once it has finished an episode;
    returns the ros-run process, its output and how many episodes were recorded at the kill."""
    proc = ros_run(env, params, out, "--budget", "10", *extra, "--exit-when-done")
    try:
        wait_for(lambda: any(r[5] == "worker_1" for r in rows(out)), 240, "worker_1 to finish an episode")
        # Only this test's worker: other ROS runs on the machine must survive.
        victims = node_pids(f"robofail_ros.nodes.{node}.*{params}.*__ns:=/worker_1")
        assert victims
        for pid in victims:  # killed mid-run: whatever it was running is lost with it
            os.kill(pid, signal.SIGKILL)
        killed_at = len(rows(out))
        wait_for(lambda: finished(out) or proc.poll() is not None, 300, "the run to finish on the remaining worker")
        proc.wait(timeout=60)
    finally:
        log = stop(proc)
    assert finished(out), f"the run ended unfinished (exit {proc.returncode}):\n{log[-3000:]}"
    return proc, log, killed_at


def test_a_killed_worker_has_its_episode_requeued_and_nothing_is_lost_or_counted_twice(ros_env, tmp_path):
    env, params = ros_env
    out = tmp_path / "runs" / "killed_worker"
    _, log, killed_at = run_and_kill(env, params, out, "sim_node", "--episode-timeout", "6")
    recorded = rows(out)
    assert [r[0] for r in recorded] == list(range(12)), log[-3000:]
    assert killed_at < 12
    # worker_1 had its next episode the moment it finished one (no batch barrier): killed busy,
    # that episode is re-queued to worker_0 after the timeout.
    assert "worker_1 did not finish episode" in log and "re-queued" in log, log[-3000:]


def test_ros_run_stops_when_no_worker_can_run_an_episode(ros_env, tmp_path):
    """A checkpoint that exists but does not load passes ros-run's checks; every policy node then
    exits at its start. ros-run stops with the reason, even without --exit-when-done (it had kept
    the system up, serving a failed search, until killed)."""
    env, params = ros_env
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"no checkpoint here" * 100)
    proc = ros_run(env, params, tmp_path / "runs" / "corrupt", "--policy", str(corrupt))
    try:
        log = proc.communicate(timeout=180)[0]
    except subprocess.TimeoutExpired:
        log = stop(proc)
    assert proc.returncode == 2, log[-3000:]
    assert "could not be loaded as a robomimic checkpoint" in log and "every worker lost a node" in log, log[-3000:]


def test_a_killed_policy_node_takes_its_worker_out_and_the_search_finishes_on_the_other(ros_env, tmp_path):
    env, params = ros_env
    params.write_text(params.read_text() + "/**/sim_node:\n  ros__parameters:\n    action_timeout_s: 3.0\n")
    out = tmp_path / "runs" / "killed_policy"
    proc, log, _ = run_and_kill(env, params, out, "policy_node")
    assert [r[0] for r in rows(out)] == list(range(12)), log[-3000:]
    assert proc.returncode == 0, log[-3000:]
    # what the dead policy node left unfinished is an error of worker_1, never a policy failure
    assert "no action from the policy node of worker_1" in log, log[-3000:]


def test_search_node_killed_and_restarted_with_resume_continues_and_the_finished_run_extends(ros_env, tmp_path):
    env, params = ros_env
    out = tmp_path / "runs" / "resumed"
    proc = ros_run(env, params, out, "--budget", "10", "--exit-when-done")
    try:
        wait_for(lambda: len(rows(out)) >= 4, 240, "4 episodes")
        for pid in node_pids("robofail_ros.nodes.search_node"):
            if str(params) in open(f"/proc/{pid}/cmdline").read().replace("\0", " "):  # this test's node only
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        output = stop(proc)
    assert proc.returncode == 1 and "search node was killed by SIGKILL" in output, output[-2000:]
    assert f"--out {out} --resume" in output and "Traceback" not in output
    before = rows(out)
    assert 4 <= len(before) < 12 and not finished(out)
    # The resume needs no flags again: the search node goes on with the config the run recorded.
    again = ros_run(env, params, out, "--exit-when-done", "--resume")
    try:
        wait_for(lambda: finished(out), 300, "the resumed run to finish")
        again.wait(timeout=60)
    finally:
        output = stop(again)
    assert again.returncode == 0 and "Traceback" not in output and "RCLError" not in output, output[-2000:]
    assert "with the config it recorded; the parameters' budget " in output, output[-2000:]
    after = rows(out)
    assert after[:len(before)] == before
    assert [r[0] for r in after] == list(range(12))

    extended = tmp_path / "runs" / "extended"
    proc = ros_run(env, params, extended, "--extend", str(out), "--budget", "14", "--exit-when-done")
    output = run_to_end(proc, extended, "the extension to finish")
    assert proc.returncode == 0 and "Traceback" not in output, output[-2000:]
    # (Once in about 20 runs this found no episodes in one of the two folders; what each holds and
    # the node's log say where they went, should it happen again.)
    listing = {folder.name: sorted(p.name for p in folder.iterdir()) for folder in (out, extended)}
    assert rows(extended)[:12] == after and [r[0] for r in rows(extended)] == list(range(16)), (listing, output[-3000:])
    assert json.loads((extended / "run.json").read_text())["extends"]["episodes"] == 12
    assert rows(out) == after, (listing, output[-3000:])


def test_robofail_run_whose_search_node_dies_mid_run_exits_naming_the_run_to_resume(ros_env, tmp_path):
    """`robofail run` used to wait for ever for the result of a search node that was killed; now it
    says so once the node has been gone for --timeout, and names the folder the node chose, and the
    command it gives continues the run on a restarted node."""
    env, params = ros_env

    def robofail_run(*argv):
        return subprocess.Popen([sys.executable, "-m", "robofail_ros.cli", "run", "--timeout", "60", *argv], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    proc = ros_run(env, params, tmp_path / "runs" / "unused", "--wait-for-goals")
    client = robofail_run("--budget", "60")
    try:
        def recorded():
            return [f.parent for f in (tmp_path / "runs").glob("*/episodes.sqlite") if len(rows(f.parent)) >= 3]
        wait_for(recorded, 240, "3 episodes of the goal's run")
        [out] = recorded()
        killed = [pid for pid in node_pids("robofail_ros.nodes.search_node")
                  if str(params) in open(f"/proc/{pid}/cmdline").read().replace("\0", " ")]
        assert killed
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        output = client.communicate(timeout=240)[0]
    finally:
        if client.poll() is None:
            client.kill()
        stop(proc)
    assert client.returncode == 2, output[-2000:]
    advice = f"robofail run --out {out} --resume"
    assert "left mid-run (gone for 60 s)" in output and advice in output, output[-2000:]
    before = rows(out)
    assert "Traceback" not in output and 3 <= len(before) < 62 and not finished(out)

    proc = ros_run(env, params, tmp_path / "runs" / "unused", "--wait-for-goals")
    client = robofail_run(*advice.split()[2:])
    try:
        output = client.communicate(timeout=300)[0]
    finally:
        if client.poll() is None:
            client.kill()
        stop(proc)
    assert client.returncode == 0 and "finished: 62 episodes" in output, output[-2000:]
    assert rows(out)[:len(before)] == before and [r[0] for r in rows(out)] == list(range(62)) and finished(out)


def start_external_policies(env, count, logs=None):
    """The README's example policy node, one per worker; its output to logs/worker_<i>.log if given."""
    return [subprocess.Popen([sys.executable, os.path.join(HERE, "ros_external_policy.py"), "--ros-args",
                              "-r", f"__ns:=/worker_{i}"], env=env,
                             **({"stdout": open(logs / f"worker_{i}.log", "w"), "stderr": subprocess.STDOUT} if logs else {}))
            for i in range(count)]


def test_an_external_policy_node_runs_the_search_and_the_run_records_it(ros_env, tmp_path):
    env, params = ros_env
    out = tmp_path / "runs" / "external"
    policies = start_external_policies(env, 2, logs=tmp_path)
    proc = ros_run(env, params, out, "--policy", "external", "--budget", "4", "--exit-when-done")
    try:
        log = run_to_end(proc, out, "the search with external policies to finish")
    finally:
        # The README's example stops on Ctrl-C and on SIGTERM alone (docker stop, systemd), cleanly.
        for policy, sig in zip(policies, (signal.SIGINT, signal.SIGTERM)):
            policy.send_signal(sig)
        codes = [policy.wait(timeout=30) for policy in policies]
    assert proc.returncode == 0, log[-3000:]
    policy_logs = [(tmp_path / f"worker_{i}.log").read_text() for i in range(2)]
    assert not any("Traceback" in text for text in policy_logs), policy_logs
    for code, text in zip(codes, policy_logs):
        # Exit status 0, or the documented bounded end of a DDS teardown that hangs, with the stack it
        # printed showing the hang inside rclpy's node destruction (Fast DDS's rmw_destroy_node: seen
        # three times, each after the search had ended; never in our own code).
        in_dds = "rclpy/node.py" in text and "in destroy_node" in text and "in _bounded_teardown" in text
        assert code == 0 or (code == -signal.SIGALRM and in_dds), (code, text)
    recorded = rows(out)
    assert [r[0] for r in recorded] == list(range(6)) and {r[5] for r in recorded} == {"worker_0", "worker_1"}
    assert not any(r[3] for r in recorded), "a policy that holds still never lifts the cube"
    policy = json.loads((out / "run.json").read_text())["policy"]
    assert policy["external"] is True and policy["spec"] == "external" and "external" in policy["source"]
    assert (policy["name"], policy["version"], policy["observation_keys"]) == ("still_policy", "1.0", ["robot0_eef_pos"])
    assert "lift_bc_rnn" not in json.dumps(policy) and policy["sha256"] is None
    # its report is written, with a note for the gallery (a replay would need the user's node)
    assert "report failed" not in log, log[-3000:]
    assert "No failure gallery for" in (out / "report" / "index.html").read_text()


def test_a_policy_that_changes_mid_run_stops_the_search_with_an_error(ros_env, tmp_path):
    import rclpy
    from std_msgs.msg import String

    from robofail_ros.nodes.common import LATCHED
    env, params = ros_env
    out = tmp_path / "runs" / "changed"
    policies = start_external_policies(env, 2)
    proc = ros_run(env, params, out, "--policy", "external", "--budget", "40", "--exit-when-done")
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(env["ROS_DOMAIN_ID"]))
    try:
        wait_for(lambda: len(rows(out)) >= 1, 240, "a first episode")
        node = rclpy.create_node("impostor", context=context)
        announce = node.create_publisher(String, "/worker_1/policy_info", LATCHED)
        announce.publish(String(data=json.dumps({"name": "other_policy", "observation_keys": ["robot0_eef_pos"],
                                                 "cameras": []})))
        proc.wait(timeout=120)
    finally:
        rclpy.shutdown(context=context)
        log = stop(proc)
        interrupt(policies)
    assert proc.returncode == 2, log[-3000:]
    assert "the policy of worker_1 changed mid-run" in log and "'other_policy'" in log
    assert not finished(out)


def test_a_policy_answering_with_the_wrong_action_size_is_reported_not_padded(ros_env, tmp_path):
    env, params = ros_env
    out = tmp_path / "runs" / "mismatch"
    procs = [subprocess.Popen([sys.executable, os.path.join(HERE, "ros_stand_in_policy.py"), "six_dof"], env=env)]
    base = ["--ros-args", "--params-file", str(params), "-p", "policy:=external"]
    procs.append(subprocess.Popen([sys.executable, "-m", "robofail_ros.nodes.sim_node", *base, "-r", "__ns:=/worker_0"],
                                  env=env))
    search = subprocess.run([sys.executable, "-m", "robofail_ros.nodes.search_node", *base, "-p", f"out:={out}",
                             "-p", "exit_when_done:=true", "-p", "budget:=2", "-p", "num_workers:=1"],
                            env=env, capture_output=True, text=True,
                            timeout=240)
    interrupt(procs)
    assert search.returncode == 2
    assert "action has 6 entries but task Lift (Panda, OSC_POSE + gripper) takes 7" in search.stderr + search.stdout
    assert rows(out) == [], "no episode may be recorded from a mismatched policy"


def test_a_policy_node_s_image_size_is_the_size_its_cameras_are_rendered_at(ros_env, tmp_path):
    """A policy node that announces image_size 48 is sent 48x48 images (it answers with an error
    to any other size; the sim node used to render 84x84 whatever the policy read)."""
    env, params = ros_env
    out = tmp_path / "runs" / "camera"
    procs = [subprocess.Popen([sys.executable, os.path.join(HERE, "ros_stand_in_policy.py"), "camera_48"], env=env)]
    base = ["--ros-args", "--params-file", str(params), "-p", "policy:=external", "-p", "horizon:=10"]
    procs.append(subprocess.Popen([sys.executable, "-m", "robofail_ros.nodes.sim_node", *base, "-r", "__ns:=/worker_0"],
                                  env=env))
    search = subprocess.run([sys.executable, "-m", "robofail_ros.nodes.search_node", *base, "-p", f"out:={out}",
                             "-p", "exit_when_done:=true", "-p", "budget:=1", "-p", "num_workers:=1"],
                            env=env, capture_output=True, text=True, timeout=240)
    interrupt(procs)
    assert search.returncode == 0, (search.stdout + search.stderr)[-3000:]
    assert [(r[3], r[4]) for r in rows(out)] == [(0, 10)] * 3, "every episode ran its 10 steps on 48x48 images"


def test_a_malformed_policy_announcement_is_ignored_by_the_sim_node_not_fatal(ros_env, tmp_path):
    """A foreign or broken publisher on policy_info (not JSON) is logged and ignored: the worker
    goes on to build its scene from a proper announcement and offers itself for episodes."""
    import rclpy
    from std_msgs.msg import String

    from robofail_ros.nodes.common import LATCHED, READY_TOPIC
    env, params = ros_env
    log = tmp_path / "sim_node.log"
    with open(log, "w") as sink:
        sim = subprocess.Popen([sys.executable, "-m", "robofail_ros.nodes.sim_node", "--ros-args", "--params-file",
                                str(params), "-p", "policy:=external", "-r", "__ns:=/worker_0"],
                               env=env, stdout=sink, stderr=subprocess.STDOUT)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(env["ROS_DOMAIN_ID"]))
    ready = []
    try:
        node = rclpy.create_node("announcers", context=context)
        node.create_subscription(String, READY_TOPIC, lambda msg: ready.append(msg.data), 10)
        announce = node.create_publisher(String, "/worker_0/policy_info", LATCHED)
        announce.publish(String(data="not json {"))  # this alone used to end the sim node
        wait_for(lambda: "ignored the policy_info" in log.read_text() or sim.poll() is not None, 60,
                 "the sim node to take the malformed announcement")
        announce.publish(String(data=json.dumps({"name": "still_policy", "observation_keys": ["robot0_eef_pos"],
                                                 "cameras": []})))
        executor = rclpy.executors.SingleThreadedExecutor(context=context)
        executor.add_node(node)
        deadline = time.monotonic() + 120
        while not ready and sim.poll() is None and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.2)
        alive = sim.poll() is None
    finally:
        rclpy.shutdown(context=context)
        interrupt([sim]) if sim.poll() is None else None
    text = log.read_text()
    assert alive and ready == ["worker_0"] * len(ready) and ready, text[-3000:]
    assert "ignored the policy_info 'not json {': not a JSON object" in text


def test_a_ready_announcement_of_no_worker_of_ours_is_never_handed_an_episode(ros_env, tmp_path):
    """A name on /robofail/worker_ready that is none of the search's workers (another system's, a
    typo'd test node) must not be given episodes that nobody runs until the episode timeout."""
    import rclpy
    from std_msgs.msg import String

    from robofail_ros.nodes.common import READY_TOPIC
    env, params = ros_env
    out = tmp_path / "runs" / "intruded"
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(env["ROS_DOMAIN_ID"]))
    proc = ros_run(env, params, out, "--budget", "4", "--exit-when-done")
    try:
        intruder = rclpy.create_node("intruder", context=context).create_publisher(String, READY_TOPIC, 10)
        deadline = time.monotonic() + 240
        while proc.poll() is None and time.monotonic() < deadline:
            intruder.publish(String(data="intruder"))
            time.sleep(0.1)
    finally:
        rclpy.shutdown(context=context)
        log = stop(proc)
    assert proc.returncode == 0 and finished(out), log[-3000:]
    assert "intruder" not in log, "an episode was handed to a worker that does not exist"
    assert {r[5] for r in rows(out)} == {"worker_0", "worker_1"}


def test_a_second_system_s_sim_node_on_a_worker_s_topic_stops_the_run_with_the_fix(ros_env, tmp_path):
    """A sim node of another robofail system on this ROS domain (here: started by hand in
    worker_0's namespace mid-run) would run this run's episodes with its own policy and answer
    them as worker_0: the search stops before sending worker_0 another episode and says why."""
    env, params = ros_env
    out = tmp_path / "runs" / "two_systems"
    proc = ros_run(env, params, out, "--budget", "60", "--exit-when-done")
    stray = None
    try:
        wait_for(lambda: len(rows(out)) >= 1, 240, "a first episode")
        stray = subprocess.Popen([sys.executable, "-m", "robofail_ros.nodes.sim_node", "--ros-args", "--params-file",
                                  str(params), "-r", "__ns:=/worker_0"], env=env)
        proc.wait(timeout=240)
    finally:
        log = stop(proc)
        if stray is not None:
            interrupt([stray])
    assert proc.returncode == 2, log[-3000:]
    assert "2 sim nodes take worker_0's episodes: another robofail system" in log and "ROS_DOMAIN_ID" in log, log[-3000:]
    assert not finished(out) and len(rows(out)) < 60


def test_a_run_does_not_start_on_a_worker_that_two_sim_nodes_serve(ros_env, tmp_path):
    """Two sim nodes in worker_0's namespace before the search starts: after waiting out the DDS
    lease (a killed node's ghost would be gone by then) the search refuses, with no episode sent."""
    import rclpy

    env, params = ros_env
    out = tmp_path / "runs" / "doubled"
    base = ["--ros-args", "--params-file", str(params), "-p", "policy:=external"]
    procs = start_external_policies(env, 1) + [
        subprocess.Popen([sys.executable, "-m", "robofail_ros.nodes.sim_node", *base, "-r", "__ns:=/worker_0"], env=env)
        for _ in range(2)]
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(env["ROS_DOMAIN_ID"]))
    try:
        probe = rclpy.create_node("probe", context=context)
        wait_for(lambda: probe.count_subscribers("/worker_0/perturbation") == 2, 120, "both sim nodes to listen")
        search = subprocess.run([sys.executable, "-m", "robofail_ros.nodes.search_node", *base, "-p", f"out:={out}",
                                 "-p", "exit_when_done:=true", "-p", "budget:=2", "-p", "num_workers:=1"],
                                env=env, capture_output=True, text=True, timeout=240)
    finally:
        rclpy.shutdown(context=context)
        interrupt(procs)
    log = search.stdout + search.stderr
    assert search.returncode == 2, log[-3000:]
    assert "2 sim nodes take worker_0's episodes" in log and "ROS_DOMAIN_ID" in log, log[-3000:]
    assert rows(out) == [], "no episode may be sent to a doubled worker"


def test_a_doubled_worker_that_becomes_single_within_the_patience_is_no_error(ros_env):
    """The start-of-run check waits (a killed node stays in a running node's DDS graph for its
    lease); a worker that stays doubled past the patience is refused, naming it."""
    import threading

    import rclpy

    from robofail_ros.core.config import load_search_config
    from robofail_ros.core.errors import ConfigError
    from robofail_ros.core.run import worker_spec
    from robofail_ros.nodes.search_node import RosTransport
    env, _ = ros_env
    listener = ("import rclpy\nfrom std_msgs.msg import String\nrclpy.init()\n"
                "node = rclpy.create_node('sim_node', namespace='/worker_0')\n"
                "node.create_subscription(String, 'perturbation', lambda msg: None, 10)\n"
                "try:\n    rclpy.spin(node)\nexcept KeyboardInterrupt:\n    pass\n")
    sims = [subprocess.Popen([sys.executable, "-c", listener], env=env) for _ in range(2)]  # two processes, as two systems
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(env["ROS_DOMAIN_ID"]))
    try:
        node = rclpy.create_node("search_node", context=context)
        transport = RosTransport(node, worker_spec(load_search_config()))
        wait_for(lambda: transport._sim_nodes("worker_0") == 2, 60, "both sim nodes in the graph")
        started = time.monotonic()
        with pytest.raises(ConfigError, match=r"2 sim nodes take worker_0's episodes: another robofail system"):
            transport.check_alone(["worker_0"], patience_s=2)
        assert time.monotonic() - started >= 2
        threading.Timer(1.0, sims[1].send_signal, [signal.SIGINT]).start()  # it leaves the graph as it exits
        transport.check_alone(["worker_0"], patience_s=20)  # returns once the second one is gone
        assert transport._sim_nodes("worker_0") == 1
    finally:
        rclpy.shutdown(context=context)
        for sim in sims:
            if sim.poll() is None:
                sim.send_signal(signal.SIGINT)
            sim.wait(timeout=30)


def test_a_sim_node_started_with_another_horizon_runs_no_episode_of_the_search(ros_env, tmp_path):
    """Nodes started by hand with different parameter files: the run would record horizon 200
    while the worker ran 10-step episodes. The worker refuses each request, naming the difference."""
    env, params = ros_env
    out = tmp_path / "runs" / "mismatched_scene"
    base = ["--ros-args", "--params-file", str(params), "-p", "policy:=external"]
    procs = start_external_policies(env, 1) + [subprocess.Popen(
        [sys.executable, "-m", "robofail_ros.nodes.sim_node", *base, "-p", "horizon:=10", "-r", "__ns:=/worker_0"], env=env)]
    search = subprocess.run([sys.executable, "-m", "robofail_ros.nodes.search_node", *base, "-p", f"out:={out}",
                             "-p", "exit_when_done:=true", "-p", "budget:=2", "-p", "num_workers:=1"],
                            env=env, capture_output=True, text=True, timeout=240)
    interrupt(procs)
    log = search.stdout + search.stderr
    assert search.returncode == 2, log[-3000:]
    assert "worker_0's scene is not the one the search records: horizon 10 (the search's: 200)" in log, log[-3000:]
    assert rows(out) == []
