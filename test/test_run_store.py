"""The run store and the search command: resume after a kill, never overwrite, clear errors."""
import dataclasses
import json
import os
import pathlib
import re
import shutil
import signal
import sqlite3
import subprocess
import time

import pytest

pytestmark = [pytest.mark.slow]

REPO = pathlib.Path(__file__).resolve().parents[1]

CONFIG = ("/**:\n  ros__parameters:\n    policy: scripted\n    searcher: uniform\n    nominal_episodes: 2\n"
          "    num_workers: 1\n    perturbations: [shaky_arm, laggy_arm, very_heavy_cube]\n    report: false\n")


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "search.yaml"
    path.write_text(CONFIG)
    return path


def policy_record(**fields):
    from robofail_ros.core.provenance import PolicyRecord
    return PolicyRecord(**{"spec": "p", "name": "p", "source": "a test", "sha256": "aaa", **fields})


def search(python, config, out, *extra, timeout=600):
    """`robofail search`; ``config`` None: no --config (a resumed or extended run's recorded one)."""
    given = ["--config", str(config)] if config else []
    return subprocess.run([python, "-m", "robofail_ros.cli", "search", *given, "--out", str(out), "--json", *extra],
                          capture_output=True, text=True, timeout=timeout)


def rows(out):
    with sqlite3.connect(out / "episodes.sqlite") as db:
        return db.execute("SELECT episode_id, perturbations, seed, success, steps FROM episodes ORDER BY episode_id").fetchall()


def ctrl_c_after(argv, out, episodes):
    """Runs ``argv`` and presses Ctrl-C (SIGINT to its process group, as a terminal does) once
    ``out`` has recorded ``episodes`` episodes; returns the process, its stderr and the seconds it
    took to stop."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None and not ((out / "episodes.sqlite").exists()
                                                                     and len(rows(out)) >= episodes):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    stopped_at = time.monotonic()
    _, err = proc.communicate(timeout=60)
    return proc, err, time.monotonic() - stopped_at


def test_a_killed_run_resumes_and_matches_an_uninterrupted_one(python, config, tmp_path):
    straight = tmp_path / "straight"
    result = search(python, config, straight, "--budget", "12")
    assert result.returncode == 0
    # Into a log (stderr is no terminal here) the bar is redrawn every 10 s, not once or twice per episode.
    assert 1 <= result.stderr.count("%|") < 14, result.stderr

    killed = tmp_path / "killed"
    proc = subprocess.Popen([python, "-m", "robofail_ros.cli", "search", "--config", str(config), "--out", str(killed),
                             "--budget", "12"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if (killed / "episodes.sqlite").exists() and len(rows(killed)) >= 6:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(rows(killed))
    assert 6 <= done_before < 14, "the kill must land mid-run"
    assert not json.loads((killed / "run.json").read_text())["finished"]

    resumed = search(python, None, killed, "--resume")  # the config the run recorded
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert rows(killed) == rows(straight), "resume must give exactly the episodes of an uninterrupted run"
    assert [r[0] for r in rows(killed)] == list(range(14))
    meta = json.loads((killed / "run.json").read_text())
    assert meta["finished"] and meta["resumed"]


def test_run_records_config_versions_seed_and_policy(python, config, tmp_path):
    out = tmp_path / "run"
    result = search(python, config, out, "--budget", "3")
    assert result.returncode == 0, result.stderr[-2000:]
    meta = json.loads((out / "run.json").read_text())
    assert meta["seed"] == 0 and meta["config"]["budget"] == 3 and meta["policy"]["spec"] == "scripted"
    assert meta["config"]["horizon"] == 200  # the config leaves it to the task: Lift's own
    assert meta["versions"]["robosuite"] == "1.5.2" and meta["versions"]["mujoco"].startswith("3.")
    assert meta["perturbations"] == {"shaky_arm": {"factor": "actuation_noise", "std": 0.3},
                                     "laggy_arm": {"factor": "actuation_latency", "steps": 3},
                                     "very_heavy_cube": {"factor": "object_mass", "scale": 25.0}}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 5 == json.loads(result.stdout)["episodes"]
    # The record gives back the config the run used, as a SearchConfig (replay, report and the
    # search node's service read it so), with the horizon its episodes had (the config's 0: Lift's 200).
    from robofail_ros.core.config import load_search_config
    from robofail_ros.core.store import RunStore
    store = RunStore.open(out)
    used = store.record.search_config
    store.close()
    assert used == load_search_config(config).replace(budget=3, perturbations=("shaky_arm", "laggy_arm", "very_heavy_cube"),
                                                      horizon=200)


def test_a_run_record_whose_config_this_version_refuses_is_a_clear_error():
    from robofail_ros.core.config import SearchConfig
    from robofail_ros.core.errors import ConfigError
    from robofail_ros.core.provenance import PolicyRecord
    from robofail_ros.core.store import RunRecord
    config = SearchConfig(searchers={"identify": {"target_width": 0.2}}).to_dict()
    policy = PolicyRecord(spec="scripted", name="scripted", source="loaded by robofail")
    assert RunRecord(config, "0", policy).search_config.searchers == {"identify": {"target_width": 0.2}}
    with pytest.raises(ConfigError, match="the config in run.json: unknown parameter 'colour'"):
        RunRecord({**config, "colour": "red"}, "0", policy).search_config
    with pytest.raises(ConfigError, match="budget must be a positive number"):
        RunRecord({**config, "budget": 0}, "0", policy).search_config


def test_finished_runs_are_never_overwritten_and_resume_needs_the_same_config(python, config, tmp_path):
    out = tmp_path / "run"
    assert search(python, config, out, "--budget", "2").returncode == 0
    again = search(python, config, out, "--budget", "2")
    assert again.returncode == 2 and "is finished and is never overwritten" in again.stderr
    resumed = search(python, config, out, "--budget", "2", "--resume")
    assert resumed.returncode == 2 and "never overwritten; there is nothing to resume" in resumed.stderr
    rows_before = rows(out)
    meta = json.loads((out / "run.json").read_text())
    meta["finished"] = None
    (out / "run.json").write_text(json.dumps(meta))
    changed = search(python, config, out, "--budget", "5", "--resume")
    assert changed.returncode == 2 and "different config (differs in: budget)" in changed.stderr
    plain = search(python, config, out, "--budget", "2")
    assert plain.returncode == 2 and "--resume" in plain.stderr
    assert rows(out) == rows_before
    # How it runs may differ (more workers on a larger machine), and a run kept for a comparison too.
    elsewhere = search(python, config, out, "--budget", "2", "--resume", "--num-workers", "2")
    assert elsewhere.returncode == 0, elsewhere.stderr[-2000:]
    assert rows(out) == rows_before and json.loads((out / "run.json").read_text())["finished"]


def test_a_finished_run_extends_to_a_larger_budget_in_a_new_folder_and_stays_as_it_was(python, config, tmp_path):
    first, extended, straight = tmp_path / "first", tmp_path / "extended", tmp_path / "straight"
    assert search(python, config, first, "--budget", "6").returncode == 0
    files = {name: (first / name).read_bytes() for name in ("run.json", "episodes.sqlite", "summary.json")}
    result = search(python, None, extended, "--extend", str(first), "--budget", "12")
    assert result.returncode == 0, result.stderr[-2000:]
    assert search(python, config, straight, "--budget", "12").returncode == 0
    assert rows(extended) == rows(straight) and len(rows(extended)) == 14, \
        "an extension must give exactly the episodes of a run with the larger budget from the start"
    assert json.loads(result.stdout)["episodes"] == 14
    meta = json.loads((extended / "run.json").read_text())
    assert meta["config"]["budget"] == 12 and meta["finished"]
    assert meta["extends"]["run"] == str(first) and meta["extends"]["episodes"] == 8
    report = subprocess.run([python, "-m", "robofail_ros.cli", "report", str(extended), "--out", str(tmp_path / "report"),
                             "--no-gallery"], capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr[-2000:]
    assert f"<td>extends</td><td style='text-align:left'><code>{first} (8 episodes, finished 20" in \
        (tmp_path / "report" / "index.html").read_text()

    def refused(*extra, config_path=None):
        out = tmp_path / "refused"
        result = search(python, config_path, out, *extra)
        assert result.returncode == 2 and {p.name for p in out.iterdir()} <= {".lock"}, "nothing is left behind"
        return result.stderr

    assert "had a budget of 6; an extension needs a larger one (--budget; got 6)" in refused("--extend", str(first),
                                                                                               "--budget", "6")
    assert "ran another search (differs in: seed)" in refused("--extend", str(first), "--budget", "12", "--seed", "3")
    assert "give one of them" in refused("--extend", str(first), "--budget", "12", "--resume")
    for inside in (first, first / "more"):
        result = search(python, None, inside, "--extend", str(first), "--budget", "12")
        assert result.returncode == 2 and "would lie in the run it extends" in result.stderr
    meta = json.loads((first / "run.json").read_text())
    meta["finished"] = None  # an interrupted run is resumed, not extended
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "run.json").write_text(json.dumps(meta))
    assert f"run {unfinished} is not finished; finish it first" in refused("--extend", str(unfinished), "--budget", "12")
    damaged = tmp_path / "damaged"
    shutil.copytree(first, damaged)
    (damaged / "episodes.sqlite").write_bytes(b"not a database" * 100)
    assert "episodes.sqlite is not a readable episode store" in refused("--extend", str(damaged), "--budget", "12")
    assert {name: (first / name).read_bytes() for name in files} == files, "the extended run must stay as it was"
    assert sorted(p.name for p in first.iterdir()) == [".lock", "episodes.sqlite", "run.json", "summary.json"]


@pytest.mark.parametrize("extra, config_text, message", [
    (["--searcher", "ppp"], CONFIG, "unknown searcher 'ppp'. Did you mean 'ppo'"),
    (["--budget", "0"], CONFIG, "budget must be a positive number of episodes"),
    (["--budget", "-3"], CONFIG, "budget must be a positive number of episodes"),
    ([], CONFIG.replace("[shaky_arm, laggy_arm, very_heavy_cube]", "[]"), "perturbations is empty"),
    ([], CONFIG.replace("[shaky_arm, laggy_arm, very_heavy_cube]", "[shaky_arm, laggy_arm, shaky_arm]"),
     "perturbations lists 'shaky_arm' more than once"),
    ([], CONFIG.replace("[shaky_arm, laggy_arm, very_heavy_cube]", "[all, shaky_arm]"), "'all' (the task's whole catalog) stands alone"),
    ([], CONFIG.replace("searcher: uniform", "searchr: uniform"), "unknown parameter 'searchr'. Did you mean 'searcher'"),
    # run.json's shape, copied into a parameter file: the sections belong directly under ros__parameters
    ([], CONFIG + "    searchers: {identify: {discover_trials: 3}}\n",
     "'searchers' is no parameter: each searcher's section goes directly under ros__parameters"),
    ([], CONFIG.replace("shaky_arm,", "shaky_arms,"), "unknown perturbation 'shaky_arms'. Did you mean 'shaky_arm'"),
    (["--policy", "/nonexistent/model.pth"], CONFIG, "policy checkpoint /nonexistent/model.pth does not exist"),
    ([], "search_node:\n  parameters: {}\n", "must hold 'ros__parameters:'"),
    ([], CONFIG.replace("budget: 2", "budget: true") if "budget: 2" in CONFIG else CONFIG + "    budget: true\n",
     "budget must be a whole number"),
    ([], CONFIG + "    horizon: 50.7\n", "horizon must be a whole number"),
    ([], CONFIG + "    render_quality: ultra\n", "render_quality must be 'default' or 'fast'"),
    ([], CONFIG + "    device: tpu\n", "device must be cpu or cuda"),
    ([], CONFIG + "    task: Lfit\n", "unknown task 'Lfit'. Did you mean 'Lift'"),
    ([], CONFIG + "    top_k: 9\n", "top_k is 9 but only 3 perturbation(s) are searched"),
    ([], CONFIG + "    margin: 1.5\n", "margin must be in [0, 1)"),
    ([], CONFIG.replace("[shaky_arm, laggy_arm, very_heavy_cube]", "red_cube"), "perturbations must be a list"),
    ([], CONFIG.replace("/**:", "/**:\n  ros__parameters: {}\nserach_node:", 1), "unknown section 'serach_node'"),
    ([], "task: Lift\nbudget: 3\n", "'task' is a parameter, not a section: a ROS 2 parameter file nests parameters"),
    (["--num-workers", "0"], CONFIG, "num_workers must be >= 1 (episodes at once), got 0"),
    ([], CONFIG + "    horizon: -1\n", "horizon must be >= 0 (control steps per episode; 0: the task's own), got -1"),
    ([], CONFIG + "    ppo: {n_env: 8}\n", "searcher 'ppo' has no hyperparameter(s) ['n_env']"),  # not the chosen searcher
    ([], CONFIG + "    thompson: {prior_failures: -1.0}\n", "thompson: prior_failures must be > 0, got -1.0"),
    (["--num-workers", "10000"], CONFIG, "num_workers is 10000, more than this machine can run"),
    ([], CONFIG + "    seed: -5\n", "seed must be in [0, 4294967295], got -5"),
    (["--seed", str(2**32)], CONFIG, "seed must be in [0, 4294967295], got 4294967296"),
    (["--policy", "robomimic"], CONFIG, "policy 'robomimic' needs its checkpoint"),
    (["--policy", "external"], CONFIG, "policy 'external' is a ROS node of your own"),
])
def test_bad_search_input_is_a_clear_error_before_anything_runs(python, tmp_path, extra, config_text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(config_text)
    out = tmp_path / "run"
    result = search(python, path, out, *extra, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.startswith("robofail search: error:"), "nothing (a progress bar) may come before the error"
    assert not (out / "episodes.sqlite").exists() and not (out / "run.json").exists()


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "--episodes", "0"], "--episodes must be at least 1"),
    (["compare", "--policies", "nope", "scripted", "--budget", "2"], "unknown policy 'nope'. Known policies: "),
    # The bad policy listed last is found before the first one's search runs (nothing is written).
    (["compare", "--policies", "scripted", "nope", "--budget", "2"], "unknown policy 'nope'. Known policies: "),
    (["compare", "--policies", "scripted", "random", "scripted", "--budget", "2"],
     "--policies scripted and scripted would share the run folder"),
    (["compare", "--policies", "a/last.pth", "b/last.pth", "--budget", "2"], "--policies a/last.pth and b/last.pth would share"),
    # Policies of several tasks were told "test it with --task Push", which then refused the Lift one.
    (["compare", "--policies", "lift_bc_low_dim", "push_bc_low_dim", "stack_bc_low_dim", "--budget", "2"],
     "compare runs every policy on one task (--task Lift), but push_bc_low_dim was trained on Push, stack_bc_low_dim "
     "was trained on Stack; compare each task's policies apart"),
    (["compare", "--policies", "push_bc_low_dim", "--budget", "2"],
     "every policy given was trained on task Push, not Lift; compare them with --task Push"),
])
def test_bad_evaluate_and_compare_input_is_a_clear_error(python, config, tmp_path, argv, message):
    out = tmp_path / "run"
    result = subprocess.run([python, "-m", "robofail_ros.cli", *argv, "--config", str(config), "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert not out.exists()


def test_a_finished_run_is_kept_only_for_the_config_it_ran(python, config, tmp_path):
    """What compare and reproduce-paper check before they keep a run instead of running it again."""
    from robofail_ros.core.errors import ConfigError
    from robofail_ros.core.store import RunStore
    out = tmp_path / "run"
    assert not RunStore.finished_run_of(out, {}, None, {})
    assert search(python, config, out, "--budget", "2").returncode == 0
    record = RunStore.open(out).record
    assert RunStore.finished_run_of(out, record.config, record.policy, record.perturbations)
    assert RunStore.finished_run_of(out, {**record.config, "num_workers": 8, "report": True}, record.policy,
                                    record.perturbations)
    with pytest.raises(ConfigError, match=r"finished run of another config \(differs in: budget\)"):
        RunStore.finished_run_of(out, {**record.config, "budget": 3}, record.policy, record.perturbations)
    with pytest.raises(ConfigError, match="recorded with policy 'scripted'.*restore that checkpoint"):
        RunStore.finished_run_of(out, record.config, dataclasses.replace(record.policy, sha256="0" * 64),
                                 record.perturbations)  # retrained


def test_an_unusable_out_and_a_run_in_use_are_refused_clearly(python, config, tmp_path):
    from robofail_ros.core.errors import ConfigError
    from robofail_ros.core.store import RunStore
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    result = search(python, config, blocker / "run", "--budget", "2")
    assert result.returncode == 2 and "cannot use the run folder" in result.stderr and "Traceback" not in result.stderr
    with pytest.raises(ConfigError, match="the run folder .*a_file is a file, not a folder; choose another --out"):
        RunStore.create(blocker, {"x": 1}, policy_record(), {})
    out = tmp_path / "busy"
    holder = RunStore.create(out, {"x": 1}, policy_record(), {})  # another process's run, still going
    try:
        result = search(python, config, out, "--budget", "2", "--resume")
        assert result.returncode == 2 and "is in use by another robofail process" in result.stderr
    finally:
        holder.close()


def test_an_output_that_cannot_be_written_is_a_clear_error_found_before_the_work(python, config, tmp_path):
    blocker = tmp_path / "a_file"  # a file where the output's folder should be
    blocker.write_text("")
    run = tmp_path / "run"
    assert search(python, config, run, "--budget", "2").returncode == 0
    for argv in (["render", "--perturbation", "red_table", "--out", str(blocker / "r.png")],
                 ["replay", str(run), "--episode", "1", "--out", str(blocker / "c.mp4")],
                 ["demos", "--task", "Lift", "--episodes", "1", "--out", str(blocker / "d.hdf5")],
                 ["report", str(run), "--out", str(blocker / "report")]):
        result = subprocess.run([python, "-m", "robofail_ros.cli", *argv], capture_output=True, text=True, timeout=300)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
        assert f"cannot write {blocker}/" in result.stderr or f"cannot use {blocker}/" in result.stderr, result.stderr
        assert "%|" not in result.stderr, "refused before any episode ran (no progress bar)"


def test_a_new_run_is_refused_in_a_folder_that_holds_other_files_and_they_are_kept(tmp_path):
    from robofail_ros.core.errors import ConfigError
    from robofail_ros.core.store import RunStore
    from robofail_ros.core.episode import EpisodeOutcome
    run = tmp_path / "run"
    old = RunStore.create(run, {"x": 1}, policy_record(), {})
    old.append(EpisodeOutcome(("red_cube",), 7, False, 200, None, 0, "w"))
    old.close()
    (run / "run.json").unlink()  # a run whose record was lost: its episodes must not become a new run's
    before = (run / "episodes.sqlite").read_bytes()
    with pytest.raises(ConfigError, match=r"holds no run \(no run.json\) but is not empty \(episodes.sqlite\)"):
        RunStore.create(run, {"x": 2}, policy_record(name="q"), {})
    assert (run / "episodes.sqlite").read_bytes() == before and not (run / "run.json").exists()
    (tmp_path / "empty").mkdir()
    RunStore.create(tmp_path / "empty", {"x": 2}, policy_record(name="q"), {}).close()  # an empty folder is a new run's


def test_a_run_that_stopped_before_its_first_episode_gives_its_folder_to_the_next_run(tmp_path):
    """A policy this scene cannot run stops the search at its first episode; the user fixes the
    policy and runs again with the same --out: nothing was recorded, so nothing is refused or lost."""
    from robofail_ros.core.errors import ConfigError
    from robofail_ros.core.store import RunStore
    from robofail_ros.core.episode import EpisodeOutcome
    run = tmp_path / "run"
    RunStore.create(run, {"x": 1}, policy_record(), {}).close()
    store = RunStore.create(run, {"x": 2}, policy_record(sha256="bbb"), {})
    store.close()
    assert (store.record.config, store.record.policy.sha256) == ({"x": 2}, "bbb")
    store = RunStore.create(run, {"x": 2}, policy_record(sha256="bbb"), {}, resume=True)
    store.append(EpisodeOutcome((), 7, True, 50, None, 0, "w"))
    store.close()
    with pytest.raises(ConfigError, match=r"exists \(unfinished, 1 episode\); continue it with --resume"):
        RunStore.create(run, {"x": 3}, policy_record(), {})
    assert RunStore(run).count() == 1 and RunStore(run).record.config == {"x": 2}
    other = tmp_path / "other"  # no episode, but a file of the user's beside the record: not ours to drop
    RunStore.create(other, {"x": 1}, policy_record(), {}).close()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"exists \(unfinished, 0 episodes\)"):
        RunStore.create(other, {"x": 2}, policy_record(), {})
    assert (other / "notes.txt").read_text() == "mine" and RunStore(other).record.config == {"x": 1}


def test_resume_refuses_a_replaced_checkpoint(tmp_path):
    from robofail_ros.core.errors import ConfigError
    from robofail_ros.core.store import RunStore
    RunStore.create(tmp_path / "run", {"x": 1}, policy_record(), {}).close()
    with pytest.raises(ConfigError, match="recorded with policy 'p' \\(sha256 aaa\\), but the policy now is 'p' \\(sha256 bbb\\)"):
        RunStore.create(tmp_path / "run", {"x": 1}, policy_record(sha256="bbb"), {}, resume=True)
    RunStore.create(tmp_path / "run", {"x": 1}, policy_record(), {}, resume=True).close()


def test_resume_and_keeping_a_run_refuse_perturbations_defined_otherwise_since(python, config, tmp_path):
    """A catalog entry edited between a run's start and its resume (same config, same catalog
    path): the resumed episodes would be counted under a perturbation that means something else."""
    from robofail_ros.core.errors import ConfigError
    from robofail_ros.core.store import RunStore
    definitions = {"red_table": {"factor": "table_color", "rgba": [0.85, 0.1, 0.1, 1.0]},
                   "heavy_cube": {"factor": "object_mass", "scale": 5.0}}
    RunStore.create(tmp_path / "run", {"x": 1}, policy_record(), definitions).close()
    edited = {**definitions, "red_table": {"factor": "table_color", "rgba": [0.1, 0.1, 0.85, 1.0]}}
    with pytest.raises(ConfigError, match=r'other perturbation definitions \(red_table was .*0\.85, 0\.1, 0\.1.*is now '
                                          r'.*0\.1, 0\.1, 0\.85.*\); .*restore the catalog it ran, or choose a new --out'):
        RunStore.create(tmp_path / "run", {"x": 1}, policy_record(), edited, resume=True)
    with pytest.raises(ConfigError, match=r"other perturbation definitions \(added: camera_left; removed: heavy_cube\)"):
        RunStore.create(tmp_path / "run", {"x": 1}, policy_record(),
                        {"red_table": definitions["red_table"], "camera_left": {"factor": "camera_position"}}, resume=True)
    RunStore.create(tmp_path / "run", {"x": 1}, policy_record(), definitions, resume=True).close()
    # Through the CLI, on a finished run kept by compare: its catalog file edited since.
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("perturbations:\n  - {name: shaky_arm, factor: actuation_noise, std: 0.15}\n")
    params = tmp_path / "compare.yaml"
    params.write_text(CONFIG.replace("[shaky_arm, laggy_arm, very_heavy_cube]", "[shaky_arm]") + f"    catalog: {catalog}\n    top_k: 1\n")
    args = ["compare", "--policies", "scripted", "--config", str(params), "--budget", "1", "--no-gallery",
            "--out", str(tmp_path / "cmp")]
    first = subprocess.run([python, "-m", "robofail_ros.cli", *args], capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    catalog.write_text("perturbations:\n  - {name: shaky_arm, factor: actuation_noise, std: 0.6}\n")
    again = subprocess.run([python, "-m", "robofail_ros.cli", *args], capture_output=True, text=True, timeout=600)
    assert again.returncode == 2 and "shaky_arm was {" in again.stderr and '"std": 0.6' in again.stderr, again.stderr[-2000:]


def test_a_worker_refuses_a_catalog_changed_since_the_run_started(tmp_path):
    """A worker process restarted mid-run loads the catalog file again."""
    from robofail_ros.core.errors import ConfigError
    from robofail_ros.core.workers import EpisodeRunner, WorkerSpec
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("perturbations:\n  - {name: shaky_arm, factor: actuation_noise, std: 0.15}\n")
    from robofail_ros.core.perturbations import Catalog
    spec = WorkerSpec(task="Lift", policy="scripted", catalog=str(catalog), horizon=5,
                      catalog_digest=Catalog.load(catalog).for_task("Lift").digest())
    EpisodeRunner(spec).close()
    catalog.write_text("perturbations:\n  - {name: shaky_arm, factor: actuation_noise, std: 0.6}\n")
    with pytest.raises(ConfigError, match=rf"the perturbation catalog {catalog} changed since the run started"):
        EpisodeRunner(spec)


def test_resume_refuses_other_simulator_versions(tmp_path):
    """Episodes of two MuJoCo versions must not mix in one run; a rebuilt Python or another
    kernel (not part of an episode's outcome) is no reason to refuse."""
    from robofail_ros.core.errors import ConfigError
    from robofail_ros.core.store import RunStore
    RunStore.create(tmp_path / "run", {"x": 1}, policy_record(), {}).close()
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    installed = record["versions"]["mujoco"]
    (tmp_path / "run" / "run.json").write_text(json.dumps(
        {**record, "versions": {**record["versions"], "python": "3.0.0", "platform": "elsewhere"}}))
    RunStore.create(tmp_path / "run", {"x": 1}, policy_record(), {}, resume=True).close()
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    (tmp_path / "run" / "run.json").write_text(json.dumps({**record, "versions": {**record["versions"], "mujoco": "2.3.0"}}))
    with pytest.raises(ConfigError, match=rf"recorded under other versions \(mujoco 2.3.0 -> {installed}\).*choose a new --out"):
        RunStore.create(tmp_path / "run", {"x": 1}, policy_record(), {}, resume=True)
    (tmp_path / "run" / "run.json").write_text(json.dumps({**record, "versions": {**record["versions"], "mujoco": "2.3.0"},
                                                           "finished": "2026-01-01T00:00:00+00:00"}))
    with pytest.raises(ConfigError, match=r"recorded under other versions \(mujoco 2.3.0"):  # compare keeps no such run
        RunStore.finished_run_of(tmp_path / "run", {"x": 1}, policy_record(), {})


def test_a_run_from_a_source_checkout_records_the_versions_of_packages_it_has_no_metadata_of(tmp_path, python):
    """robofail_ros from a checkout on PYTHONPATH and a copy of robosuite without its dist-info (as
    the GPU machine's trimmed stack runs them) are recorded with their versions, not as absent:
    an absent version on both sides let a resume under another robosuite pass."""
    import sysconfig

    from robofail_ros.core.versions import component_versions
    site = pathlib.Path(sysconfig.get_paths()["purelib"])
    bare = tmp_path / "site"  # every installed package, with no metadata of robosuite's or ours
    bare.mkdir()
    for entry in site.iterdir():
        if not re.match(r"(robosuite|robofail_ros)[-_.].*(dist-info|egg-info|egg-link|pth)$|__editable__.*robofail|"
                        r"robofail_ros$", entry.name):
            (bare / entry.name).symlink_to(entry)
    probe = ("import importlib.metadata as m, json\n"
             "from robofail_ros.core.versions import component_versions\n"
             "hidden = []\n"
             "for d in ('robosuite', 'robofail_ros'):\n"
             "    try: m.version(d)\n"
             "    except m.PackageNotFoundError: hidden.append(d)\n"
             "print(json.dumps([hidden, component_versions()]))")
    done = subprocess.run([python, "-S", "-c", probe], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{bare}"})
    assert done.returncode == 0, done.stderr[-3000:]
    hidden, versions = json.loads(done.stdout.strip().splitlines()[-1])
    assert hidden == ["robosuite", "robofail_ros"]  # the metadata really is out of reach
    installed = component_versions()
    assert (versions["robosuite"], versions["robofail_ros"]) == (installed["robosuite"], installed["robofail_ros"])
    assert versions["robosuite"] is not None and versions["mujoco"] == installed["mujoco"]


def test_a_resume_records_how_the_run_ran_from_then_on(tmp_path):
    """A run started on 1 worker and resumed on 4 says so (run.json, the report's metadata); what
    it asks for is the config it started with."""
    from robofail_ros.core.store import RunRecord, RunStore
    run = tmp_path / "run"
    RunStore.create(run, {"x": 1, "num_workers": 1, "report": False}, policy_record(), {}).close()
    RunStore.create(run, {"x": 1, "num_workers": 1, "report": False}, policy_record(), {}, resume=True).close()
    RunStore.create(run, {"x": 1, "num_workers": 4, "report": True}, policy_record(), {}, resume=True).close()
    record = RunRecord.read(run / "run.json")
    assert [r.changed for r in record.resumed] == [{}, {"num_workers": 4, "report": True}]
    assert str(record.resumed[1]).endswith(", num_workers 4, report True")
    assert record.config["num_workers"] == 1
    # A run recorded before resumes said how they ran holds only their times, and still reads.
    legacy = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**legacy, "resumed": ["2026-01-01T00:00:00+00:00"]}))
    assert str(RunRecord.read(run / "run.json").resumed[0]) == "2026-01-01T00:00:00+00:00"


def test_a_continued_run_takes_its_recorded_config_but_for_how_it_runs(tmp_path):
    """What a ROS search node resumes and extends with: its parameter file cannot tell which values
    a user gave, so the run's record decides all but the keys a resume (an extension) may change."""
    from robofail_ros.core.config import SearchConfig
    from robofail_ros.core.run import continued_config
    from robofail_ros.core.store import RunStore
    recorded = SearchConfig(budget=10, seed=3, num_workers=1)
    RunStore.create(tmp_path / "run", recorded.to_dict(), policy_record(), {}).close()
    parameters = SearchConfig(budget=40, seed=7, num_workers=4, searcher="uniform")
    resumed, unused = continued_config(parameters, tmp_path / "run")
    # (compared as recorded: the record holds the horizon the task's 0 stands for)
    assert resumed.to_dict() == recorded.replace(num_workers=4).to_dict() and unused == ["budget", "searcher", "seed"]
    extended, unused = continued_config(parameters, tmp_path / "run", extend=True)
    assert extended.to_dict() == recorded.replace(num_workers=4, budget=40).to_dict() and unused == ["searcher", "seed"]


@pytest.mark.parametrize("damage", ["run.json truncated", "run.json of something else", "run.json of another version",
                                    "policy of another version", "policy not a record", "extension not a record",
                                    "resumes not a list", "resume not a record", "episodes.sqlite garbage"])
def test_a_damaged_run_folder_is_a_clear_error_and_is_left_as_it_was(python, config, tmp_path, damage):
    from robofail_ros.core.errors import ConfigError
    from robofail_ros.core.store import RunStore
    run = tmp_path / "run"
    store = RunStore.create(run, {"x": 1}, policy_record(), {})
    store.close()
    name, text = {"run.json truncated": ("run.json", (run / "run.json").read_text()[:25]),
                  "run.json of something else": ("run.json", '["a list"]'),
                  "run.json of another version": ("run.json", '{"config": {"x": 1}, "config_hash": "0", "colour": 1}'),
                  "policy of another version": ("run.json", json.dumps({**json.loads((run / "run.json").read_text()),
                                                                        "policy": {"name": "p", "colour": 1}})),
                  "policy not a record": ("run.json", json.dumps({**json.loads((run / "run.json").read_text()),
                                                                  "policy": ["p"]})),
                  "extension not a record": ("run.json", json.dumps({**json.loads((run / "run.json").read_text()),
                                                                     "extends": {"run": "elsewhere"}})),
                  "resumes not a list": ("run.json", json.dumps({**json.loads((run / "run.json").read_text()),
                                                                 "resumed": "yesterday"})),
                  "resume not a record": ("run.json", json.dumps({**json.loads((run / "run.json").read_text()),
                                                                  "resumed": [{"at": "2026-01-01", "colour": 1}]})),
                  "episodes.sqlite garbage": ("episodes.sqlite", "not a database " * 20)}[damage]
    (run / name).write_text(text)
    with pytest.raises(ConfigError, match="nothing in the folder was changed"):
        RunStore.open(run).record if name == "run.json" else RunStore.open(run).outcomes()
    if name == "run.json":
        with pytest.raises(ConfigError, match=f"{run / name} "):
            RunStore.create(run, {"x": 1}, policy_record(), {}, resume=True)
        result = search(python, config, run, "--resume", timeout=300)  # the CLI says the same, no traceback
        assert result.returncode == 2 and "nothing in the folder was changed" in result.stderr, result.stderr[-2000:]
        assert "Traceback" not in result.stderr
    assert (run / name).read_text() == text


def test_a_simulator_that_rejects_a_catalog_entry_ends_the_search_with_its_own_message(python, tmp_path):
    """A table 3 m high passes the catalog's range check but MuJoCo refuses the model: the
    episode is retried once, then the search stops with MuJoCo's message (no traceback, no spinning)."""
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("perturbations:\n  - {name: tall_table, factor: table_size, size: [0.8, 0.8, 3.0]}\n")
    config = tmp_path / "search.yaml"
    config.write_text(CONFIG.replace("[shaky_arm, laggy_arm, very_heavy_cube]", "[tall_table]")
                      + f"    catalog: {catalog}\n    top_k: 1\n")
    result = search(python, config, tmp_path / "run", "--budget", "3")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "could not run" in result.stderr and "must be positive" in result.stderr
    assert "Traceback" not in result.stderr
    assert all(json.loads(r[1]) == [] for r in rows(tmp_path / "run")), "only the unperturbed episodes are recorded"


def test_ctrl_c_stops_a_two_worker_search_promptly_and_the_run_resumes(python, config, tmp_path):
    out = tmp_path / "run"
    proc, err, stopping_s = ctrl_c_after([python, "-m", "robofail_ros.cli", "search", "--config", str(config), "--budget",
                                          "40", "--num-workers", "2", "--out", str(out)], out, 4)
    assert stopping_s < 20, "Ctrl-C must stop the search and its workers promptly"
    assert proc.returncode == 130 and "interrupted" in err and "--resume" in err and "Traceback" not in err, err[-2000:]
    assert not json.loads((out / "run.json").read_text())["finished"]
    before = rows(out)
    told = err.split("Continue it with: robofail ")[1].split(" (")[0].split()  # the command the message gives
    resumed = subprocess.run([python, "-m", "robofail_ros.cli", *told], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = rows(out)
    assert after[:len(before)] == before and len(after) == 42


RUN_A_SEARCH = r"""
from robofail_ros.core.config import load_search_config
from robofail_ros.core.run import run_search
config = load_search_config(sys.argv[1]).replace(budget=30)
try:
    run_search(config, sys.argv[2])
    print("finished")
except KeyboardInterrupt:
    print("interrupted")
"""


def test_a_ctrl_c_that_got_lost_on_its_way_stops_the_search_at_its_next_episode(python, config, tmp_path,
                                                                                lost_ctrl_c):
    """A search went on to the end of its budget when its KeyboardInterrupt had been swallowed
    (a finaliser, a library's catch-all): it now stops at its next episode or model build, resumable."""
    out = tmp_path / "run"
    done = subprocess.run([python, "-c", lost_ctrl_c + RUN_A_SEARCH, str(config), str(out)], capture_output=True, text=True,
                          timeout=600)
    assert done.stdout.splitlines() == ["interrupted"], done.stdout + done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]  # no "Exception ignored in" for a Ctrl-C
    assert not json.loads((out / "run.json").read_text())["finished"]


KILLED_AS_THE_RUN_IS_RECORDED_FINISHED = r"""
import os, signal, sys
from robofail_ros.cli import main
def written(name):
    return os.path.basename(str(name))  # a path, or a file descriptor
def kill_as_run_json_is_written(frame, event, arg):
    if event == "c_call" and getattr(arg, "__name__", "") == "write":
        name = written(getattr(getattr(arg, "__self__", None), "name", "") or "")
        if name.startswith(("run.", ".run.")) and name.endswith(".json"):
            os.kill(os.getpid(), signal.SIGKILL)  # run.json is open for writing, not yet written
def finishing(event, args):  # the summary is written first: from then on, watch run.json's write
    if event == "open" and "summary" in written(args[0]) and "w" in str(args[1]):
        sys.setprofile(kill_as_run_json_is_written)
sys.addaudithook(finishing)
sys.exit(main(sys.argv[1:]))
"""


def test_a_run_killed_as_it_records_that_it_finished_resumes(python, config, tmp_path):
    """A kill (the OOM killer, a power cut) while run.json was rewritten at the end left it empty:
    the run could then not be resumed, reported or even read ("run.json is not valid JSON")."""
    out = tmp_path / "run"
    killed = subprocess.run([python, "-c", KILLED_AS_THE_RUN_IS_RECORDED_FINISHED, "search", "--config", str(config),
                             "--budget", "4", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not json.loads((out / "run.json").read_text())["finished"]
    before = rows(out)
    resumed = search(python, None, out, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((out / "run.json").read_text())["finished"] and rows(out) == before and len(before) == 6
    assert sorted(p.name for p in out.iterdir()) == [".lock", "episodes.sqlite", "run.json", "summary.json"]


def test_ctrl_c_stops_a_whole_comparison_and_the_same_command_continues_it(python, config, tmp_path):
    """Ctrl-C in `robofail compare` used to stop only the current policy's search and go on to the next."""
    out = tmp_path / "cmp"
    argv = [python, "-m", "robofail_ros.cli", "compare", "--config", str(config), "--policies", "scripted", "random",
            "--budget", "12", "--no-gallery", "--out", str(out)]
    first = out / "scripted"
    proc, err, _ = ctrl_c_after(argv, first, 3)
    assert proc.returncode == 130 and "the same `robofail compare` command again" in err, err[-2000:]
    assert not (out / "random").exists() and not (out / "report").exists()
    again = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(rows(first)) == len(rows(out / "random")) == 14 and (out / "report" / "index.html").is_file()


def test_an_evaluation_tries_the_perturbations_its_config_lists(python, config, tmp_path):
    """evaluate took every catalog perturbation whatever --config listed (57 x --episodes)."""
    out = tmp_path / "truth"
    done = subprocess.run([python, "-m", "robofail_ros.cli", "evaluate", "--config", str(config), "--episodes", "1",
                           "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    tried = sorted(tuple(json.loads(row[1])) for row in rows(out))
    assert tried == [(), ("laggy_arm",), ("shaky_arm",), ("very_heavy_cube",)]


def test_an_interrupted_evaluation_resumes_with_what_it_recorded(python, config, tmp_path):
    """`robofail evaluate --out X --resume` alone goes on with the run's perturbations and episodes
    (not the defaults: all perturbations, 20 each), and two perturbations need no top_k below 3."""
    out = tmp_path / "truth"
    proc, err, _ = ctrl_c_after([python, "-m", "robofail_ros.cli", "evaluate", "--config", str(config), "--perturbations",
                                 "shaky_arm", "laggy_arm", "--episodes", "5", "--out", str(out)], out, 3)
    assert proc.returncode == 130 and "robofail evaluate --out" in err, err[-2000:]
    resumed = subprocess.run([python, "-m", "robofail_ros.cli", "evaluate", "--out", str(out), "--resume"],
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    tried = [json.loads(row[1]) for row in rows(out)]
    assert sorted(map(tuple, tried)) == [()] * 5 + [("laggy_arm",)] * 5 + [("shaky_arm",)] * 5
