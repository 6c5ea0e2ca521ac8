#!/usr/bin/env bash
# The main job: sets everything up (tools/setup.sh), then runs the ROS system on the bundled
# defaults (config/search.yaml: the bundled low-dim BC-RNN Lift policy, the identify search,
# 2 workers). It prints the failure-mode table, writes the run folder under runs/, and keeps
# the failure-probability service answering until Ctrl-C. Extra arguments go to
# `robofail ros-run` (e.g. --exit-when-done, --budget 100, --searcher ppo).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup.sh"
cd "$ROOT"
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
exec .venv/bin/robofail ros-run --params-file config/search.yaml "$@"
