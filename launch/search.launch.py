"""ros2 launch robofail_ros search.launch.py [task:=Lift] [policy:=...] [searcher:=...] [budget:=N]
   [num_workers:=N] [params_file:=/path/search.yaml] [out:=runs/NAME] [resume:=true]
   [extend:=runs/FINISHED] [exit_when_done:=false] [rviz:=false]

Starts one search_node and num_workers pairs of sim_node + policy_node (namespaces worker_<i>),
or only the sim nodes with policy:=external (your own policy nodes announce themselves), all
reading params_file (a ROS 2 parameter file; the package's config/search.yaml by default).
Arguments left empty keep the file's values; resume:=true continues the interrupted run in out:=,
and extend:= continues a finished run to a larger budget:= in a new out:= (README, run store):
both with the config that run recorded, so only the file's task and policy (the workers') must match it.
`robofail ros-run` starts the same processes on machines without ros2 launch
(robofail_ros/nodes/bringup.py).
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = "robofail_ros"
OVERRIDABLE = ("task", "policy", "searcher", "budget")


def _typed(value: str):
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(value.lower(), value)


def _nodes(context):
    from robofail_ros.nodes.bringup import node_plan, overrides_file  # the same nodes as `robofail ros-run`
    params_file = LaunchConfiguration("params_file").perform(context)
    overrides = {name: _typed(LaunchConfiguration(name).perform(context)) for name in OVERRIDABLE
                 if LaunchConfiguration(name).perform(context)}
    search_overrides = {"exit_when_done": _typed(LaunchConfiguration("exit_when_done").perform(context))}
    for name, cast in (("out", str), ("extend", str), ("resume", _typed)):  # the search node's own, only when set
        if LaunchConfiguration(name).perform(context):
            search_overrides[name] = cast(LaunchConfiguration(name).perform(context))
    num_workers = _typed(LaunchConfiguration("num_workers").perform(context))  # node_plan checks it
    plan = node_plan(params_file, num_workers, overrides, search_overrides)
    # A file with a section per node, not a dict: launch_ros writes a dict as a '/**' section,
    # which loses to the params file's own node sections (bringup.overrides_file says why).
    overrides_path = overrides_file(plan)
    return [Node(package=PACKAGE, executable=spec.executable, name=spec.executable, namespace=spec.namespace or None,
                 output="screen", parameters=[params_file, overrides_path]) for spec in plan]


def generate_launch_description():
    share = get_package_share_directory(PACKAGE)
    return LaunchDescription([
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "search.yaml")),
        DeclareLaunchArgument("task", default_value=""),
        DeclareLaunchArgument("policy", default_value=""),
        DeclareLaunchArgument("searcher", default_value=""),
        DeclareLaunchArgument("budget", default_value=""),
        DeclareLaunchArgument("num_workers", default_value="2"),
        DeclareLaunchArgument("out", default_value=""),
        DeclareLaunchArgument("resume", default_value=""),
        DeclareLaunchArgument("extend", default_value=""),
        DeclareLaunchArgument("exit_when_done", default_value="false"),
        DeclareLaunchArgument("rviz", default_value="false"),
        OpaqueFunction(function=_nodes),
        Node(package="rviz2", executable="rviz2", arguments=["-d", os.path.join(share, "config", "robofail.rviz")],
             condition=IfCondition(LaunchConfiguration("rviz"))),
    ])
