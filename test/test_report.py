"""Reports: the numbers behind every figure come from the runs, the page references only files
that exist, the gallery's replays reproduce the recorded outcomes, bad input is refused."""
import json
import re
import subprocess

import pytest

from robofail_ros.core.analysis import RunResult
from robofail_ros.core.errors import ConfigError
from robofail_ros.core.provenance import PolicyRecord
from robofail_ros.core.report import write_report
from robofail_ros.core.stats import Goal, assess
from robofail_ros.core.store import RunStore

pytestmark = [pytest.mark.slow, pytest.mark.render]


def small_run(python, folder, policy="lift_bc_rnn_low_dim", perturbations="small_table, shaky_arm, red_table",
              task="Lift", report=False, budget=6, nominal=1, horizon=120):
    """A real search, in its own process as users run it: several MuJoCo GL contexts made and
    freed in the pytest process would garble the offscreen renders of later tests."""
    config = folder.parent / f"{folder.name}.yaml"
    config.write_text(f"/**:\n  ros__parameters:\n    task: {task}\n    policy: {policy}\n    searcher: uniform\n"
                      f"    budget: {budget}\n    nominal_episodes: {nominal}\n    horizon: {horizon}\n"
                      f"    report: {str(report).lower()}\n    num_workers: 1\n    perturbations: [{perturbations}]\n"
                      f"    top_k: {min(3, len(perturbations.split(',')))}\n")
    result = subprocess.run([python, "-m", "robofail_ros.cli", "search", "--config", str(config), "--out", str(folder)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory, python):
    base = tmp_path_factory.mktemp("runs")
    a = small_run(python, base / "a", report=True)  # the end-of-run report, as `robofail search` writes it
    b = small_run(python, base / "b", policy="lift_bc_low_dim", perturbations="small_table, shaky_arm, heavy_cube")
    return a, b


def episodes_by_mode(folder):
    store = RunStore(folder)
    counts = {}
    for o in store.outcomes():
        for name in o.perturbations or ("none",):
            trials, failures = counts.get(name, (0, 0))
            counts[name] = (trials + 1, failures + o.failure)
    store.close()
    return counts


def test_a_finished_search_writes_its_report_and_the_radar_shows_its_numbers(runs):
    a, _ = runs
    data = json.loads((a / "report" / "figures.json").read_text())
    radar = next(f for f in data["figures"] if f["title"].startswith("Radar"))["data"]
    counts = episodes_by_mode(a)
    for name, p, low, high in zip(radar["perturbations"], radar["p_fail"], radar["ci_low"], radar["ci_high"]):
        trials, failures = counts[name]
        assert p == pytest.approx(failures / trials) and low <= p <= high
    assert set(radar["perturbations"]) == {"small_table", "shaky_arm", "red_table"}
    trials, failures = counts["none"]  # the reference line: the unperturbed rate of this run
    assert radar["nominal_p_fail"] == pytest.approx(failures / trials)
    # The class on each spoke and the bounds that decide it: those of the run's table.
    verdict = assess([counts[n][1] for n in radar["perturbations"]], [counts[n][0] for n in radar["perturbations"]],
                     Goal(top_k=3), failures, trials)
    assert radar["cs_low"] == pytest.approx(verdict.low.tolist()) and radar["cs_high"] == pytest.approx(verdict.high.tolist())
    assert radar["status"] == list(verdict.status)
    assert all(cs_low <= low and high <= cs_high for cs_low, low, high, cs_high
               in zip(radar["cs_low"], radar["ci_low"], radar["ci_high"], radar["cs_high"]))
    assert sum(radar["pi"]) == pytest.approx(1.0), "uniform's pi over every tried perturbation"
    assert data["models"][0]["sha256"] == json.loads((a / "run.json").read_text())["policy"]["sha256"]


def test_the_bars_list_modes_that_fail_equally_often_in_the_table_s_rank_order():
    """Four modes at 6 of 6 (top-3): the bars run rank 1, 2, 3, then the fourth, as the table
    lists them, whatever the catalog's order."""
    import pathlib

    from robofail_ros.core.analysis import failure_table, run_result
    from robofail_ros.core.episode import EpisodeOutcome
    from robofail_ros.core.perturbations import Catalog
    from robofail_ros.core.report import RunData, distribution
    names = ["very_heavy_cube", "small_table", "huge_cube", "heavy_cube", "red_table"]
    outcomes = [EpisodeOutcome((), 0, True, 40, None)] * 10 + [
        EpisodeOutcome((name,), 0, name == "red_table", 200, None) for name in names for _ in range(6)]
    table = failure_table(outcomes, Catalog.load().subset(names))
    run = RunData(pathlib.Path("run"), "policy", None, None, run_result("run", table, outcomes))
    catalog_order = sorted(names)  # report.align passes the perturbations in the catalog's order
    assert distribution([run], catalog_order)[0] == [m.name for m in table.perturbed[:4]] + ["other"]
    assert [m.rank for m in table.perturbed[:4]] == [1, 2, 3, None]


def test_a_comparison_aligns_on_shared_perturbations_and_says_so(runs, tmp_path):
    a, b = runs
    index = write_report([a, b], tmp_path / "cmp", with_gallery=False)
    data = json.loads((index.parent / "figures.json").read_text())
    assert data["perturbations"] == ["small_table", "shaky_arm"]
    assert any("red_table" in n for n in data["notes"]) and any("heavy_cube" in n for n in data["notes"])
    figures = {f["title"]: f["data"] for f in data["figures"]}
    heat = figures["Heatmap"]
    assert heat["models"] == ["lift_bc_rnn_low_dim", "lift_bc_low_dim"]
    for row, folder in zip(heat["p_fail"], (a, b)):
        counts = episodes_by_mode(folder)
        for name, value in zip(heat["perturbations"], row):
            assert value == (pytest.approx(counts[name][1] / counts[name][0]) if name in counts else None)
    for label, shares in figures["Stacked failure modes"]["shares"].items():
        assert sum(shares) == pytest.approx(1.0) or sum(shares) == 0
    bars = figures["Grouped bars"]["models"]
    assert list(bars) == heat["models"]
    for label, folder in zip(bars, (a, b)):  # each model's own unperturbed rate, drawn as its reference line
        trials, failures = episodes_by_mode(folder)["none"]
        assert bars[label]["nominal_p_fail"] == pytest.approx(failures / trials)
        # The bars carry each mode's class, rank and anytime-valid bounds, as the run's table has them.
        table = RunResult.from_dict(json.loads((folder / "summary.json").read_text())).table
        for k, name in enumerate(figures["Grouped bars"]["modes"]):
            mode = table.mode(name)
            assert (bars[label]["status"][k], bars[label]["rank"][k]) == (mode.status, mode.rank)
            assert (bars[label]["cs_low"][k], bars[label]["cs_high"][k]) == (mode.cs_low, mode.cs_high)
    assert "<td>red_table</td>" not in index.read_text(), "left-out perturbations stay out of the tables"


def test_a_model_that_never_failed_has_no_worst_mode(runs, tmp_path, python):
    """The worst mode is the table's first failing one; a model with no failure has none (it used
    to get whichever of its modes at 0.00 sorted first)."""
    a, _ = runs
    calm = small_run(python, tmp_path / "calm", perturbations="red_table", budget=2)
    assert episodes_by_mode(calm)["red_table"] == (2, 0), "the test needs a run without a perturbed failure"
    index = write_report([calm], tmp_path / "calm_report", with_gallery=False)
    (row,) = json.loads((index.parent / "figures.json").read_text())["models"]
    assert (row["worst_mode"], row["worst_p_fail"]) == (None, None)
    table = RunResult.from_dict(json.loads((a / "summary.json").read_text())).table
    (row,) = json.loads((a / "report" / "figures.json").read_text())["models"]
    assert table.worst is not None and (row["worst_mode"], row["worst_p_fail"]) == (table.worst.name, table.worst.p_fail)


def test_the_page_references_only_files_that_exist(runs):
    a, _ = runs
    page = (a / "report" / "index.html").read_text()
    refs = re.findall(r'(?:src|href)="([^"]+)"', page)
    local = [r for r in refs if not r.startswith("data:")]
    assert local and all((a / "report" / r).is_file() for r in local), local
    assert not [r for r in refs if r.startswith(("http:", "https:", "//"))], "the page must open offline"
    summary = json.loads((a / "summary.json").read_text())
    for mode in summary["modes"]:  # every mode's row, with the class its anytime-valid bounds give it
        assert f"<td>{mode['name']}</td>" in page
        if mode["name"] != "none":
            assert f"<td>{mode['name']}</td><td>{mode['factor']}</td><td>{mode['status']}</td>" in page


def test_gallery_replays_reproduce_the_recorded_failures(runs):
    a, _ = runs
    data = json.loads((a / "report" / "figures.json").read_text())
    assert data["gallery"], "the bundled policy fails under small_table/shaky_arm: the gallery must show it"
    recorded = {o.episode_id: o for o in RunStore(a).outcomes()}
    for item in data["gallery"]:
        episode = recorded[item["episode_id"]]
        assert episode.failure and item["mode"] in episode.perturbations
        assert item["reproduced"] and item["replay_steps"] == episode.steps
        assert (a / "report" / item["strip"]).is_file() and f"--episode {item['episode_id']}" in item["command"]


def replay(python, run, episode_id, out, size):
    return subprocess.run([python, "-m", "robofail_ros.cli", "replay", str(run), "--episode", str(episode_id),
                           "--out", str(out), "--size", str(size)], capture_output=True, text=True, timeout=300)


def test_replay_command_writes_a_clip_and_reproduces_a_success(runs, tmp_path, python):
    a, _ = runs
    success = next(o for o in RunStore(a).outcomes() if o.success)
    clip = tmp_path / "ok.mp4"
    result = replay(python, a, success.episode_id, clip, 96)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"replay success=True in {success.steps} steps" in result.stdout
    import imageio.v2 as imageio
    frames = imageio.mimread(clip)
    assert len(frames) >= success.steps // 4 and frames[0].shape == (96, 96, 3)


def test_replay_refuses_a_perturbation_defined_otherwise_since_the_run(runs, tmp_path, python):
    """The catalog's red_table was blue when the run ran (as its run.json records): replayed with
    today's red one, the episode would show another scene than the one recorded."""
    import shutil
    a, _ = runs
    run = tmp_path / "a"
    shutil.copytree(a, run, ignore=shutil.ignore_patterns("report"))
    record = json.loads((run / "run.json").read_text())
    record["perturbations"]["red_table"]["rgba"] = [0.1, 0.1, 0.85, 1.0]
    (run / "run.json").write_text(json.dumps(record))
    result = replay(python, run, 0, tmp_path / "x.mp4", 64)
    assert result.returncode == 2 and "perturbations are defined otherwise now (red_table was {" in result.stderr, \
        result.stderr[-2000:]
    assert "restore the catalog it ran" in result.stderr and not (tmp_path / "x.mp4").exists()
    # Its report is written all the same, with a note in place of the gallery.
    index = write_report([run], tmp_path / "report")
    notes = json.loads((tmp_path / "report" / "figures.json").read_text())["notes"]
    assert any(note.startswith("No failure gallery for") and "red_table was {" in note for note in notes), notes
    assert "No failure gallery for" in index.read_text()


def test_a_failing_episode_replays_into_an_mcap_file_of_ros_2_messages(runs, tmp_path, python):
    from mcap_ros2.reader import read_ros2_messages
    a, _ = runs
    failure = next(o for o in RunStore(a).outcomes() if o.failure)
    out = tmp_path / "failure.mcap"
    result = replay(python, a, failure.episode_id, out, 64)
    assert result.returncode == 0, result.stderr[-2000:]
    messages = list(read_ros2_messages(str(out)))
    by_topic = {}
    for m in messages:
        by_topic.setdefault(m.channel.topic, []).append(m)
    assert len(by_topic["/robofail/observation"]) == len(by_topic["/robofail/action"]) == failure.steps
    assert by_topic["/robofail/observation"][0].schema.name == "robofail_ros/Observation"
    first = by_topic["/robofail/observation"][0].ros_msg
    assert "robot0_eef_pos" in first.low_dim_keys and len(first.low_dim) == sum(first.low_dim_sizes)
    assert len(by_topic["/robofail/action"][0].ros_msg.action) == 7
    image = by_topic["/robofail/scene_image"][0].ros_msg
    assert (image.encoding, image.height, image.width, len(image.data)) == ("rgb8", 64, 64, 64 * 64 * 3)
    (end,) = by_topic["/robofail/episode_result"]
    assert (end.ros_msg.success, end.ros_msg.steps, list(end.ros_msg.names)) == (False, failure.steps, list(failure.perturbations))


def test_bad_input_is_refused_clearly(runs, tmp_path, python):
    a, b = runs
    with pytest.raises(ConfigError, match="already holds a report"):
        write_report([a], a / "report")
    stack = small_run(python, tmp_path / "stack", task="Stack", policy="random", perturbations="red_table",
                      budget=1, nominal=0, horizon=3)
    with pytest.raises(ConfigError, match="different tasks"):
        write_report([a, stack], tmp_path / "mixed")
    store = RunStore.create(tmp_path / "unfinished", {"task": "Lift"}, PolicyRecord(spec="x", name="x", source="a test"), {})
    with pytest.raises(ConfigError, match="has no episodes"):
        write_report([tmp_path / "unfinished"], tmp_path / "r1")
    for outcome in RunStore(a).outcomes()[:2]:
        store.append(outcome)
    with pytest.raises(ConfigError, match=r"unfinished \(2 episodes so far\).*--resume"):
        write_report([tmp_path / "unfinished"], tmp_path / "r2")
    with pytest.raises(ConfigError, match="not a robofail run folder"):
        write_report([tmp_path], tmp_path / "r3")
    with pytest.raises(ConfigError, match=f"run {a} is given twice; give each run once"):
        write_report([a, b, a], tmp_path / "r4")
    with pytest.raises(ConfigError, match=r"is given twice \(as .* and .*\); give each run once"):
        write_report([a, a.parent / ".." / a.parent.name / a.name], tmp_path / "r5")
    assert not any((tmp_path / r).exists() for r in ("r4", "r5"))
    from robofail_ros.core.replay import replay_episode
    with pytest.raises(ConfigError, match="has no episode 999"):
        replay_episode(a, 999)


def test_ctrl_c_while_a_report_is_written_leaves_nothing_half_written(runs, tmp_path, python):
    import os
    import signal
    import time
    a, b = runs
    out = tmp_path / "interrupted"
    proc = subprocess.Popen([python, "-m", "robofail_ros.cli", "report", str(a), str(b), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".interrupted.partial-*")) and time.monotonic() < deadline:  # writing has begun
        time.sleep(0.05)
    assert list(tmp_path.glob(".interrupted.partial-*")), "the report never started writing"
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, err[-2000:]
    assert not out.exists() and not list(tmp_path.glob(".interrupted*")), list(tmp_path.iterdir())


WRITE_A_REPORT = r"""
from robofail_ros.core.report import write_report
print("went on")
try:
    write_report(sys.argv[1:-1], sys.argv[-1], with_gallery=False)
    print("written")
except KeyboardInterrupt:
    print("interrupted")
"""


def test_a_ctrl_c_that_got_lost_on_its_way_still_leaves_no_report(runs, tmp_path, python, lost_ctrl_c):
    # The Ctrl-C test above once got exit 0 and a whole report: the interrupt had been swallowed
    # on its way (a finaliser, a library's catch-all) and the report went on to the end.
    a, _ = runs
    out = subprocess.run([python, "-c", lost_ctrl_c + WRITE_A_REPORT, str(a), str(tmp_path / "report")],
                         capture_output=True, text=True, timeout=300)
    assert out.stdout.splitlines() == ["went on", "interrupted"], out.stdout + out.stderr[-2000:]
    assert list(tmp_path.iterdir()) == [], list(tmp_path.iterdir())
    assert "Traceback" not in out.stderr, out.stderr[-2000:]  # no "Exception ignored in" for a Ctrl-C


PYBIND_INTERRUPT = r"""
import os, signal, numpy as np
from matplotlib import _path
from robofail_ros.core import interrupts
interrupts.install()
try:
    _path.affine_transform("not points", np.eye(3))
except TypeError as exc:
    interrupts.reraise(exc)  # a genuine error stays what it is
    print("genuine error:", interrupts.interrupted(exc))
class Points:  # Ctrl-C arrives while pybind11 converts this argument
    def __array__(self, dtype=None, copy=None):
        os.kill(os.getpid(), signal.SIGINT)
        return np.zeros((1, 2))
try:
    _path.affine_transform(Points(), np.eye(3))
except BaseException as exc:
    print("ctrl-c:", type(exc).__name__, interrupts.interrupted(exc))
    try:
        interrupts.reraise(exc)  # where every error of an episode is caught: a Ctrl-C gets through
    except KeyboardInterrupt:
        print("raised again as KeyboardInterrupt")
"""


def test_a_ctrl_c_that_pybind11_reports_as_a_type_error_is_still_an_interrupt(python):
    # The report's Ctrl-C test once exited 1 with a traceback: the interrupt landed in
    # matplotlib's pybind11 transform, which turned it into "incompatible function arguments".
    out = subprocess.run([python, "-c", PYBIND_INTERRUPT], capture_output=True, text=True, timeout=120)
    assert out.stdout.splitlines() == ["genuine error: False", "ctrl-c: TypeError True",
                                       "raised again as KeyboardInterrupt"], out.stdout + out.stderr
