"""What can be checked of the colcon/ros2-launch route without ROS 2 installed: the launch file's
nodes, executables and arguments against CMakeLists.txt, setup.py and config; package.xml."""
import ast
import pathlib
import re
import xml.etree.ElementTree as ET

import yaml

REPO = pathlib.Path(__file__).resolve().parents[1]


def launch_source():
    return (REPO / "launch" / "search.launch.py").read_text()


def test_launch_file_parses_and_declares_the_documented_arguments():
    tree = ast.parse(launch_source())
    declared = {node.args[0].value for node in ast.walk(tree)
                if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DeclareLaunchArgument"}
    assert {"task", "policy", "searcher", "budget", "num_workers", "params_file"} <= declared


def test_every_launched_executable_is_built_by_cmake_and_installed_by_setup_py():
    executables = set(re.findall(r'executable="(\w+)"', launch_source())) | set(
        re.findall(r'for executable in \(([^)]*)\)', launch_source())[0].replace('"', "").replace(" ", "").split(","))
    executables.discard("rviz2")
    cmake = (REPO / "CMakeLists.txt").read_text()
    built = set(re.search(r"foreach\(node ([^)]*)\)", cmake).group(1).split())
    assert executables == built == {"search_node", "sim_node", "policy_node"}
    setup = (REPO / "setup.py").read_text()
    for name in built:
        assert f"robofail_ros.nodes.{name}:main" in setup
        assert (REPO / "robofail_ros" / "nodes" / f"{name}.py").is_file()


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
