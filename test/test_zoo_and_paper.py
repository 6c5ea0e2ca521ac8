"""The model zoo (robofail zoo build) and the paper's comparison (robofail reproduce-paper), on a
roster small enough to train here in seconds: real demos, real robomimic training, real searches."""
import json
import pathlib
import subprocess

import pytest
import yaml

from robofail_ros.core.errors import ConfigError, RoboFailError, UnknownNameError
from robofail_ros.core.paper import EntropyRow, PaperConfig, point_labels
from robofail_ros.core.perturbations import FACTORS, Catalog
from robofail_ros.core.store import RunStore
from robofail_ros.core.zoo import Roster, Zoo, build

pytestmark = [pytest.mark.slow]
REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = """
demos: {episodes: 3, seed: 1000}
evaluation: {episodes: 2, seed: 0}
training:
  bc: {epochs: 1, steps_per_epoch: 3, batch_size: 8}
  bc_rnn: {epochs: 1, steps_per_epoch: 3, batch_size: 8}
  hbc: {epochs: 1, steps_per_epoch: 3, batch_size: 8}
models:
  - {task: Reach, algo: bc, obs: low_dim}
  - {task: Reach, algo: bc_rnn, obs: low_dim}
  - {task: Reach, algo: hbc, obs: low_dim}
"""


def cli(python, *args, cwd):
    return subprocess.run([python, "-m", "robofail_ros.cli", *args], capture_output=True, text=True, timeout=900, cwd=cwd)


@pytest.fixture(scope="module")
def built(tmp_path_factory, python):
    folder = tmp_path_factory.mktemp("zoo")
    (folder / "roster.yaml").write_text(TINY)
    result = cli(python, "zoo", "build", "Reach", "--roster", "roster.yaml", "--zoo", "zoo", cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder, result


def test_zoo_build_trains_records_and_evaluates_every_model_of_the_task(built, python):
    folder, result = built
    index = {e["name"]: e for e in yaml.safe_load((folder / "zoo" / "index.yaml").read_text())}
    assert set(index) == {"reach_bc_rnn_low_dim", "reach_hbc_low_dim"}  # reach_bc_low_dim is bundled: kept
    for name, entry in index.items():
        assert (folder / "zoo" / entry["file"]).is_file() and len(entry["sha256"]) == 64
        assert entry["command"].startswith("robofail train-policy --dataset zoo/datasets/reach_low_dim_3.hdf5")
        assert f"--algo {entry['algo']}" in entry["command"] and entry["nominal_episodes"] == 2
        assert 0.0 <= entry["nominal_success"] <= 1.0 and entry["nominal_seeds"] == "0-1"
        assert entry["nominal_horizon"] == 200  # Reach's own horizon
    assert "nominal success" in result.stdout and "reach_bc_low_dim: bundled, kept" in result.stdout
    listed = {line.split()[0]: line for line in cli(python, "zoo", "list", "--roster", "roster.yaml", "--zoo", "zoo",
                                                    cwd=folder).stdout.splitlines()}
    assert " built " in listed["reach_hbc_low_dim"] and listed["reach_hbc_low_dim"].endswith("at 200 steps")
    assert " bundled " in listed["reach_bc_low_dim"] and listed["reach_bc_low_dim"].endswith("100% at 200 steps")


def test_a_second_build_keeps_what_is_built_and_a_changed_checkpoint_is_refused(built, python):
    folder, _ = built
    again = cli(python, "zoo", "build", "Reach", "--roster", "roster.yaml", "--zoo", "zoo", cwd=folder)
    assert again.returncode == 0 and again.stdout.count("built, kept") == 2 and "training" not in again.stdout
    assert "reach_bc_low_dim: bundled, kept" in again.stdout
    zoo = Zoo(folder / "zoo")
    assert zoo.resolve("reach_bc_rnn_low_dim").endswith("reach_bc_rnn_low_dim.pth")
    assert zoo.resolve("reach_bc_low_dim") == "reach_bc_low_dim"  # bundled: by name
    with pytest.raises(ConfigError, match="neither bundled nor built.*robofail zoo build Push --only push_hbc_low_dim"):
        zoo.resolve("push_hbc_low_dim")
    with pytest.raises(UnknownNameError, match="unknown model of the zoo roster 'push_hbc_lowdim'. Did you mean 'push_hbc_low_dim'"):
        zoo.resolve("push_hbc_lowdim")  # a typo: the nearest roster names, not a build command for task "Push"
    checkpoint = folder / "zoo" / "reach_bc_rnn_low_dim.pth"
    original = checkpoint.read_bytes()
    checkpoint.write_bytes(original + b"x")
    try:
        changed = cli(python, "zoo", "build", "Reach", "--roster", "roster.yaml", "--zoo", "zoo", cwd=folder)
        assert changed.returncode == 2 and "does not match the sha256" in changed.stderr and "delete it" in changed.stderr
        with pytest.raises(ConfigError, match="does not match the sha256"):
            zoo.resolve("reach_bc_rnn_low_dim")
    finally:
        checkpoint.write_bytes(original)


def test_reproduce_paper_runs_every_model_and_writes_per_task_figures_and_the_entropy_table(built, python):
    folder, _ = built
    (folder / "paper.yaml").write_text(
        "searcher: uniform\nbudget: 4\nnominal_episodes: 1\nnum_workers: 1\nzoo: zoo\n"
        "tasks:\n  Reach: [reach_bc_low_dim, reach_hbc_low_dim]\n")
    result = cli(python, "reproduce-paper", "--config", "paper.yaml", "--out", "paper", cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    report = folder / "paper" / "report"
    summary = json.loads((report / "figures.json").read_text())
    assert [r["model"] for r in summary["models"]] == ["reach_bc_low_dim", "reach_hbc_low_dim"]
    assert {r["algo"] for r in summary["models"]} == {"bc", "hbc"} and all(r["episodes"] == 5 for r in summary["models"])
    task = json.loads((report / "Reach" / "figures.json").read_text())
    names = {f["png"].split("/")[-1] for f in task["figures"]}
    assert {"stacked_failure_modes.png", "heatmap.png", "grouped_bars.png"} <= names
    assert sum(n.startswith("radar_") for n in names) == 2
    assert (report / "figures" / "entropy_vs_vulnerability.png").is_file() and (report / "index.html").is_file()
    # Failures under appearance-only perturbations, counted again from each run's own episodes.
    catalog = Catalog.load()
    for row in summary["models"]:
        store = RunStore.open(folder / "paper" / "runs" / row["model"])
        outcomes = [o for o in store.outcomes() if o.sim_error is None]  # simulator errors are no policy outcome
        store.close()
        appearance = [o.success for o in outcomes
                      if o.perturbations and FACTORS[catalog[o.perturbations[0]].factor_name].APPEARANCE]
        assert (row["appearance_episodes"], row["appearance_failures"]) == (len(appearance), appearance.count(False))
    assert sum(row["appearance_episodes"] for row in summary["models"]) > 0  # the check above had episodes to count
    again = cli(python, "reproduce-paper", "--config", "paper.yaml", "--out", "paper", cwd=folder)
    assert again.returncode == 2 and "never overwritten" in again.stderr


def test_ctrl_c_in_reproduce_paper_says_how_to_go_on_and_the_same_command_does(built, python):
    import os
    import signal
    import sqlite3
    import time
    folder, _ = built
    (folder / "paper2.yaml").write_text("searcher: uniform\nbudget: 12\nnominal_episodes: 1\nnum_workers: 1\nzoo: zoo\n"
                                        "tasks:\n  Reach: [reach_bc_low_dim, reach_hbc_low_dim]\n")
    argv = [python, "-m", "robofail_ros.cli", "reproduce-paper", "--config", "paper2.yaml", "--out", "paper2"]
    proc = subprocess.Popen(argv, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    episodes = folder / "paper2" / "runs" / "reach_bc_low_dim" / "episodes.sqlite"

    def recorded():
        with sqlite3.connect(episodes) as db:
            return db.execute("SELECT COUNT(*) FROM episodes").fetchone()[0]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None and not (episodes.exists() and recorded() >= 3):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "run the same command again to go on" in err, err[-2000:]
    assert recorded() < 13 and not (folder / "paper2" / "report").exists()
    again = cli(python, *argv[3:], cwd=folder)
    assert again.returncode == 0, again.stderr[-3000:]
    assert recorded() == 13 and (folder / "paper2" / "report" / "index.html").is_file()


@pytest.mark.parametrize("text,message", [
    ("training: {bc: {epochs: 1, epoks: 2}}\nmodels: [{task: Lift, algo: bc}]", "unknown key 'epoks'.*'epochs'"),
    ("models: [{task: Lift, algo: hbc, obs: image}]", "--algo hbc cannot be trained on --obs image"),
    ("models: [{task: Lfit, algo: bc}]", "unknown task 'Lfit'.*Lift"),
    ("training: {bc: {epochs: many}}\nmodels: [{task: Lift, algo: bc}]", "epochs must be int"),
])
def test_a_bad_roster_is_refused_with_what_to_fix(tmp_path, text, message):
    path = tmp_path / "roster.yaml"
    path.write_text(text)
    with pytest.raises(RoboFailError, match=message):
        Roster.load(path)


@pytest.mark.parametrize("content", [b"- {name: x, sha256: 1, colour: red}\n", b"[unclosed\n", b"\xff\xfe\x00"])
def test_a_damaged_zoo_index_is_refused_with_what_to_do(tmp_path, content):
    (tmp_path / "index.yaml").write_bytes(content)
    with pytest.raises(ConfigError, match="(?s)is not a zoo index.*move it away and rebuild"):
        Zoo(tmp_path)


def test_a_model_not_built_is_refused_with_the_command_that_builds_it(tmp_path):
    """An image model's command says to train on a GPU: on a CPU it takes hours."""
    zoo = Zoo(tmp_path / "zoo")
    with pytest.raises(ConfigError, match=r"`robofail zoo build Push --only push_bc_rnn_image --zoo \S+ --device cuda` "
                                          r"\(an image model"):
        zoo.resolve("push_bc_rnn_image")
    with pytest.raises(ConfigError, match=r"`robofail zoo build Push --only push_hbc_low_dim --zoo \S+`$"):
        zoo.resolve("push_hbc_low_dim")


@pytest.mark.parametrize("only, observations, message", [
    ("lift_bc_low_dim", (), r"a model of task Lift, not Push; build it with `robofail zoo build Lift --only lift_bc_low_dim`"),
    ("push_bc_rnn_image", ("low_dim",), r"a model on image observations, which this build's --obs leaves out; add --obs image"),
    ("push_bc_lowdim", (), r"no model of Push's roster; did you mean 'push_bc_low_dim'.*Its models: push_bc_low_dim, "),
])
def test_an_only_name_that_is_no_model_of_the_build_says_what_builds_it(tmp_path, only, observations, message):
    with pytest.raises(ConfigError, match=message):
        build("Push", tmp_path / "zoo", observations=observations, only=(only,))
    assert not (tmp_path / "zoo").exists(), "nothing is made before the names are checked"


def test_the_committed_comparison_is_of_the_committed_paper_config():
    """docs/paper is what `robofail reproduce-paper` writes for config/paper.yaml: its models in
    that order, each searched with that budget, and per task a radar of each of them and the
    figures the report draws for that many models (a model swapped in the config and not run
    again fails here)."""
    paper, docs = PaperConfig.load(), REPO / "docs" / "paper"
    committed = json.loads((docs / "figures.json").read_text())["models"]
    assert [(m["task"], m["model"]) for m in committed] == [(t, m) for t, names in paper.tasks.items() for m in names]
    assert {m["episodes"] for m in committed} == {paper.settings.budget + paper.settings.nominal_episodes}
    for task, names in paper.tasks.items():
        figures = {p.name for p in (docs / task / "figures").iterdir()}
        comparisons = {"stacked_failure_modes.png", "heatmap.png"} if len(names) > 1 else set()  # of several models
        assert {p for p in figures if not p.startswith("radar_")} == {"grouped_bars.png", *comparisons}, task
        assert {p for p in figures if p.startswith("radar_")} == {f"radar_{name}.png" for name in names}, task
        assert [m["model"] for m in json.loads((docs / task / "figures.json").read_text())["models"]] == names


def test_the_bundled_configs_load_and_the_paper_compares_at_least_8_models_over_3_tasks(tmp_path):
    roster, paper = Roster.load(), PaperConfig.load()
    names = {m.name for m in roster.models}
    assert all(name in names for models in paper.tasks.values() for name in models)
    assert sum(len(m) for m in paper.tasks.values()) >= 8 and len(paper.tasks) >= 3
    bad = tmp_path / "paper.yaml"
    bad.write_text("budgt: 3\ntasks: {Lift: [lift_bc_low_dim]}\n")
    with pytest.raises(ConfigError, match="unknown key 'budgt'.*'budget'"):
        PaperConfig.load(bad)
    bad.write_text("tasks: {Lift: lift_bc_low_dim}\n")
    with pytest.raises(ConfigError, match="tasks.Lift must be a non-empty list"):
        PaperConfig.load(bad)
    bad.write_text("tasks: {Lift: [lift_bc_low_dim, lift_bc_rnn_low_dim, lift_bc_low_dim]}\n")
    with pytest.raises(ConfigError, match="tasks.Lift lists 'lift_bc_low_dim' more than once"):
        PaperConfig.load(bad)
    bad.write_text("tasks: {Push: [push_bc_low_dim, lift_bc_low_dim]}\n")  # found before a model of it is loaded
    with pytest.raises(ConfigError, match="tasks.Push lists 'lift_bc_low_dim', a model of task Lift; list it under Lift"):
        PaperConfig.load(bad)
    bad.write_text("tasks: {Lift: [lift_bc_lowdim]}\n")
    with pytest.raises(ConfigError, match="unknown model of the zoo roster 'lift_bc_lowdim'. Did you mean 'lift_bc_low_dim'"):
        PaperConfig.load(bad)


def test_models_at_one_point_of_the_entropy_figure_share_one_label():
    """Reach's BC and BCQ never fail (0 nats, mean 0): one label names both, not two drawn over each other;
    a model of another task at the same point keeps its task in the name."""
    def row(model, task, entropy, mean):
        return EntropyRow(model=model, sha256=None, searcher="ppo", episodes=170, failures=0, sim_errors=0,
                          nominal_success=1.0, nominal_trials=10, pi_entropy=4.0, p_fail_entropy=entropy,
                          mean_severity=mean, worst_mode=None, worst_p_fail=None, task=task, algo=None, obs=None,
                          mean_p_fail=mean, failing_modes=0, appearance_episodes=0, appearance_failures=0)
    rows = [row("reach_bc_low_dim", "Reach", 0.0, 0.0), row("reach_bcq_low_dim", "Reach", 0.0, 0.0),
            row("lift_bc_low_dim", "Lift", 1.142, 0.034), row("push_bc_low_dim", "Push", None, None)]
    assert point_labels(rows) == [(0.0, 0.0, "bc_low_dim, bcq_low_dim"), (1.142, 0.034, "bc_low_dim")]
    rows.append(row("stack_bc_low_dim", "Stack", 0.0, 0.0))
    assert point_labels(rows)[0] == (0.0, 0.0, "reach_bc_low_dim, reach_bcq_low_dim, stack_bc_low_dim")
