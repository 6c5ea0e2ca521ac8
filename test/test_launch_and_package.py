"""What can be checked of the colcon/ros2-launch route without ROS 2 installed: the launch file's
nodes, executables and arguments against CMakeLists.txt, setup.py and config; package.xml."""
import ast
import json
import pathlib
import re
import xml.etree.ElementTree as ET

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[1]


def launch_source():
    return (REPO / "launch" / "search.launch.py").read_text()


def test_launch_file_parses_and_declares_the_documented_arguments():
    tree = ast.parse(launch_source())
    declared = {node.args[0].value for node in ast.walk(tree)
                if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DeclareLaunchArgument"}
    assert {"task", "policy", "searcher", "budget", "num_workers", "params_file", "out", "resume", "extend"} <= declared


def test_the_node_plan_is_built_by_cmake_installed_by_setup_py_and_leaves_out_external_policies(tmp_path, monkeypatch):
    """ros-run and search.launch.py both start bringup.node_plan's nodes."""
    from robofail_ros.core.errors import ConfigError, RoboFailError
    from robofail_ros.nodes.bringup import node_argv, node_plan, overrides_file
    monkeypatch.setenv("ROS_HOME", str(tmp_path))
    params = str(REPO / "config" / "search.yaml")
    plan = node_plan(params, 2, {"budget": 10}, {"exit_when_done": True})
    assert [s.label for s in plan] == ["search_node", "worker_0/sim_node", "worker_0/policy_node",
                                       "worker_1/sim_node", "worker_1/policy_node"]
    assert plan[0].parameters == {"budget": 10, "exit_when_done": True, "num_workers": 2}
    overrides = overrides_file(plan)
    argv = node_argv(params, overrides, plan[2])
    sections = yaml.safe_load(pathlib.Path(overrides).read_text())
    # Named by its content under ROS_HOME: launching again with the same arguments leaves no new file.
    other = overrides_file(node_plan(params, 2, {"budget": 11}, {"exit_when_done": True}))
    assert overrides_file(plan) == overrides and other != overrides
    assert sorted(p.name for p in (tmp_path / "robofail").iterdir()) == sorted(pathlib.Path(p).name for p in (overrides, other))
    assert argv[1:3] == ["-m", "robofail_ros.nodes.policy_node"] and "__ns:=/worker_0" in argv
    assert argv[-4:-2] == ["--params-file", overrides]  # after the user's file, so that it wins (next test)
    assert sections["/worker_0/policy_node"] == {"ros__parameters": {"budget": 10}}
    assert sections["/search_node"] == {"ros__parameters": {"budget": 10, "exit_when_done": True, "num_workers": 2}}
    external = node_plan(params, 2, {"policy": "external"}, {})
    assert [s.label for s in external] == ["search_node", "worker_0/sim_node", "worker_1/sim_node"]
    cmake = (REPO / "CMakeLists.txt").read_text()
    built = set(re.search(r"foreach\(node ([^)]*)\)", cmake).group(1).split())
    assert {s.executable for s in plan} == built == {"search_node", "sim_node", "policy_node"}
    setup = (REPO / "setup.py").read_text()
    for name in built:
        assert f"robofail_ros.nodes.{name}:main" in setup
    assert "node_plan" in launch_source()  # the launch file starts the same plan
    with pytest.raises(ConfigError, match="budget must be a whole number"):
        node_plan(params, 2, {"budget": "ten"}, {})
    with pytest.raises(ConfigError, match="num_workers is 10000, more than this machine can run"):
        node_plan(params, 10000, {}, {})  # 10,000 node pairs would not start here: refused before any does
    with pytest.raises(ConfigError, match=r"num_workers must be >= 1 \(episodes at once\), got 0"):
        node_plan(params, 0, {}, {})
    with pytest.raises(ConfigError, match="episode_timeout_s must be a positive number of seconds, got -3"):
        node_plan(params, 2, {}, {"episode_timeout_s": -3.0})
    # What a node would refuse at its start is refused before any starts (ros-run and the launch file).
    for overrides, message in (({"policy": "nope"}, "unknown policy 'nope'. Known policies: "),
                               ({"policy": str(tmp_path / "gone.pth")}, r"policy checkpoint \S+gone.pth does not exist"),
                               ({"policy": "robomimic"}, "policy 'robomimic' needs its checkpoint"),
                               ({"policy": "push_bc_low_dim"}, "policy 'push_bc_low_dim' was trained on task 'Push', not 'Lift'"),
                               ({"perturbations": ["red_tabel"]}, "unknown perturbation 'red_tabel'. Did you mean 'red_table'")):
        with pytest.raises(RoboFailError, match=message):
            node_plan(params, 2, overrides, {})
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("ROS_HOME", str(tmp_path / "file"))  # not a folder: a clear error, not a traceback
    with pytest.raises(ConfigError, match="cannot write the nodes' parameter overrides .* set ROS_HOME to a folder"):
        overrides_file(plan)


def test_overrides_beat_the_params_file_s_own_node_sections(tmp_path, monkeypatch):
    """A `search_node:` section of the user's file used to beat ros-run's `-p budget:=3`: rcl applies
    `-p` (and any '/**' section) before node sections. A node reads the overrides file's value."""
    import subprocess
    import sys

    from robofail_ros.nodes.bringup import NodeSpec, node_argv, overrides_file
    params = tmp_path / "search.yaml"
    params.write_text("/**:\n  ros__parameters:\n    budget: 7\nsearch_node:\n  ros__parameters:\n    budget: 10\n")
    monkeypatch.setenv("ROS_HOME", str(tmp_path))
    overrides = overrides_file([NodeSpec("search_node", "", {"budget": 3})])
    script = ("import rclpy, sys\nrclpy.init(args=sys.argv)\n"
              "node = rclpy.create_node('search_node', automatically_declare_parameters_from_overrides=True)\n"
              "print('budget', node.get_parameter('budget').value)\n")
    argv = node_argv(str(params), overrides, NodeSpec("search_node", "", {}))
    result = subprocess.run([sys.executable, "-c", script, *argv[argv.index("--ros-args"):]], capture_output=True,
                            text=True, timeout=60)
    assert result.stdout.strip() == "budget 3", result.stdout + result.stderr[-2000:]


def test_launch_overrides_are_config_parameters_and_the_params_file_loads():
    from robofail_ros.core.config import SearchConfig, load_search_config
    overridable = ast.literal_eval(re.search(r"OVERRIDABLE = (\([^)]*\))", launch_source()).group(1))
    fields = {f for f in SearchConfig.__dataclass_fields__}
    assert set(overridable) <= fields
    config = load_search_config(REPO / "config" / "search.yaml")
    assert config.policy == "lift_bc_rnn_low_dim"
    rviz = yaml.safe_load((REPO / "config" / "robofail.rviz").read_text())
    topics = {d["Topic"]["Value"] for d in rviz["Visualization Manager"]["Displays"]}
    assert {"/worker_0/scene_image", "/search_node/failure_markers"} <= topics


def test_package_xml_is_format_3_ament_cmake_with_interfaces():
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.get("format") == "3" and root.findtext("name") == "robofail_ros"
    assert root.find("export/build_type").text == "ament_cmake"
    assert root.findtext("member_of_group") == "rosidl_interface_packages"
    cmake = (REPO / "CMakeLists.txt").read_text()
    for path in list((REPO / "msg").glob("*.msg")) + list((REPO / "srv").glob("*.srv")):
        assert f'"{path.parent.name}/{path.name}"' in cmake, f"{path.name} is not generated"


def test_package_xml_setup_py_and_the_module_give_one_version():
    """The module's __version__ is what a run records where no installed metadata says it (a checkout on
    PYTHONPATH); it must be the version colcon and pip install."""
    import robofail_ros
    xml = ET.parse(REPO / "package.xml").getroot().findtext("version")
    setup = re.search(r'version="([^"]+)"', (REPO / "setup.py").read_text()).group(1)
    assert xml == setup == robofail_ros.__version__


def test_the_readme_shows_the_external_policy_node_the_tests_run():
    example = (REPO / "test" / "ros_external_policy.py").read_text()
    assert f"```python\n{example}```" in (REPO / "README.md").read_text()


def test_package_data_is_found_through_the_ament_index_of_an_install_space(tmp_path, python):
    """A ROS install puts config/ and data/ in <prefix>/share/robofail_ros and registers the
    package in the ament index; robofail_ros then reads them from there, not from the source tree."""
    import shutil
    import subprocess
    prefix = tmp_path / "install"
    share = prefix / "share" / "robofail_ros"
    shutil.copytree(REPO / "config", share / "config")
    (prefix / "share" / "ament_index" / "resource_index" / "packages").mkdir(parents=True)
    (prefix / "share" / "ament_index" / "resource_index" / "packages" / "robofail_ros").write_text("")
    code = ("from robofail_ros.core.config import DEFAULT_SEARCH_CONFIG; "
            "from robofail_ros.core.perturbations import DEFAULT_CATALOG; print(DEFAULT_SEARCH_CONFIG, DEFAULT_CATALOG)")
    env = {**__import__("os").environ, "AMENT_PREFIX_PATH": str(prefix)}
    out = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(share / "config" / "search.yaml"), str(share / "config" / "perturbations" / "default.yaml")]


def test_a_wheel_carries_the_config_and_the_bundled_policies(tmp_path, python):
    import shutil
    import subprocess
    import zipfile
    source = tmp_path / "source"  # a copy: building writes egg-info and build/ beside the sources
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".venv", ".git", "runs", ".device", "build", "*.egg-info",
                                                               "__pycache__", "*.so", "msg", "srv", "action"))
    built = subprocess.run([python, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
                            str(source)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    names = zipfile.ZipFile(next(tmp_path.glob("robofail_ros-*.whl"))).namelist()
    data = "robofail_ros-0.1.0.data/data/share/robofail_ros/"
    for expected in ("config/search.yaml", "config/perturbations/default.yaml", "data/policies/index.yaml",
                     "data/policies/lift_bc_rnn_low_dim.pth"):
        assert data + expected in names


@pytest.mark.slow
@pytest.mark.ros
def test_colcon_builds_the_package_and_a_search_runs_from_the_install_space(tmp_path, python):
    """As a ROS user: colcon build (the venv as underlay), then the nodes' executables from the
    install space, which finds its config and bundled data through the ament index."""
    import os
    import subprocess
    import sys
    venv = pathlib.Path(sys.prefix)
    source = tmp_path / "ws" / "src" / "robofail_ros"
    source.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True).stdout
    for name in filter(None, archive.decode().split("\0")):  # the tracked tree, as a clone has it
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        if (REPO / name).is_file():
            (source / name).write_bytes((REPO / name).read_bytes())
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "AMENT_PREFIX_PATH": str(venv),
           "CMAKE_PREFIX_PATH": str(venv)}
    build = subprocess.run([str(venv / "bin" / "colcon"), "build", "--cmake-args", f"-DPython3_EXECUTABLE={python}",
                            "-DBUILD_TESTING=OFF"], cwd=tmp_path / "ws", env=env, capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, (build.stdout + build.stderr)[-3000:]
    install = tmp_path / "ws" / "install" / "robofail_ros"
    share = install / "share" / "robofail_ros"
    assert (share / "config" / "search.yaml").is_file() and (share / "data" / "policies" / "index.yaml").is_file()
    libraries = f"{install / 'lib'}:{os.environ.get('LD_LIBRARY_PATH', '')}"  # ours, then the venv's ROS libraries
    run_env = {**os.environ, "AMENT_PREFIX_PATH": f"{install}:{venv}", "LD_LIBRARY_PATH": libraries,
               "PYTHONPATH": str(install / "lib" / "python3.11" / "site-packages"),
               "ROS_DOMAIN_ID": str(int(os.environ["ROS_DOMAIN_ID"]) + 130)}
    where = subprocess.run([python, "-c", "import robofail_ros.core.resources as r, robofail_ros; "
                            "print(robofail_ros.__file__); print(r.share_dir())"], env=run_env, capture_output=True, text=True,
                           cwd=tmp_path)  # not the source checkout's folder: its package would come first
    assert where.stdout.split() == [str(install / "lib" / "python3.11" / "site-packages" / "robofail_ros" / "__init__.py"),
                                    str(share)], where.stderr
    params = tmp_path / "params.yaml"
    params.write_text(f"/**:\n  ros__parameters:\n    policy: scripted\n    nominal_episodes: 1\n    num_workers: 1\n"
                      f"    perturbations: [shaky_arm, red_table]\n    top_k: 2\n    report: false\n"
                      f"    output_dir: {tmp_path / 'runs'}\n")
    lib = install / "lib" / "robofail_ros"
    base = ["--ros-args", "--params-file", str(params)]
    workers = [subprocess.Popen([python, str(lib / kind), *base, "-r", "__ns:=/worker_0"], env=run_env, cwd=tmp_path)
               for kind in ("sim_node", "policy_node")]
    try:
        search = subprocess.run([python, str(lib / "search_node"), *base, "-p", f"out:={tmp_path / 'runs' / 'installed'}",
                                 "-p", "exit_when_done:=true", "-p", "budget:=2"], env=run_env, capture_output=True,
                                text=True, timeout=300, cwd=tmp_path)
    finally:
        for w in workers:
            w.terminate()
            w.wait(timeout=30)
    assert search.returncode == 0, search.stderr[-3000:]
    summary = json.loads((tmp_path / "runs" / "installed" / "summary.json").read_text())
    assert summary["episodes"] == 3


def test_ros_run_tells_the_search_node_s_teardown_limit_from_a_kill():
    """A search node ended by its own teardown limit (SIGALRM, after it closed its run) has nothing to
    resume, and a search that had finished succeeded; one killed by anything else is told how to resume."""
    import signal

    from robofail_ros.nodes.bringup import killed_outcome
    from robofail_ros.nodes.common import TEARDOWN_LIMIT_S
    status, teardown = killed_outcome(signal.SIGALRM, "finished", "search.yaml", "runs/a", {})
    assert status == 0
    assert f"DDS teardown hung after it had closed its run and was ended {TEARDOWN_LIMIT_S} s on" in teardown
    assert "nothing was lost" in teardown and "its search had finished" in teardown and "--resume" not in teardown
    for state in ("cancelled", "running", None):  # stopped by Ctrl-C, or no status was heard: not a success
        status, teardown = killed_outcome(signal.SIGALRM, state, "search.yaml", "runs/a", {})
        assert status == 1 and "nothing was lost" in teardown and "--resume" not in teardown
    status, killed = killed_outcome(signal.SIGKILL, "finished", "search.yaml", "runs/a", {"budget": 30, "seed": 2})
    assert status == 1
    assert "killed by SIGKILL" in killed  # with the flags the run was started with: a resume needs them again
    assert "robofail ros-run --params-file search.yaml --budget 30 --seed 2 --out runs/a --resume" in killed
    assert "--out <its run folder> --resume" in killed_outcome(signal.SIGTERM, None, "search.yaml", None, {})[1]
