#!/usr/bin/env bash
# Generates our msg/, srv/ and action/ with rosidl into a virtual environment that holds the
# ROS 2 wheels, and places the generated Python code inside the package folder so that exactly
# one robofail_ros is importable (the source tree's). Used by tools/setup.sh (here) and by
# tools/device.sh (the GPU machine's Python 3.12).
#
#   bash tools/build_interfaces.sh VENV
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$(cd "${1:?usage: build_interfaces.sh VENV}" && pwd)"
PY="$VENV/bin/python"
SITE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

# Some wheels' exported CMake files hard-code their builder's Python and numpy include dirs
# (/opt/python/cp3XX-cp3XX/...): point them at this interpreter's.
PY_INCLUDE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
NP_INCLUDE="$("$PY" -c 'import numpy; print(numpy.get_include())')"
[[ -f "$PY_INCLUDE/Python.h" ]] || { echo "no Python.h in $PY_INCLUDE: install this Python's headers (Debian: python3-dev)" >&2; exit 1; }
{ grep -rl --include='*.cmake' '/opt/python/cp3' "$VENV/share" 2>/dev/null || true; } | while read -r f; do
  sed -i -E -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_core/include#$NP_INCLUDE#g" \
            -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#$PY_INCLUDE#g" "$f"
done

BUILD="$VENV/.robofail-interfaces-build"
cd "$ROOT"
rm -rf "$BUILD" "$SITE/robofail_ros" robofail_ros/msg robofail_ros/srv robofail_ros/action robofail_ros/*.so robofail_ros/_robofail_ros_s.*
mkdir -p "$BUILD"
(
  cd "$BUILD"
  export PATH="$VENV/bin:$PATH" AMENT_PREFIX_PATH="$VENV"
  cmake "$ROOT" -DCMAKE_PREFIX_PATH="$VENV" -DCMAKE_INSTALL_PREFIX="$VENV" \
    -DPython3_EXECUTABLE="$PY" -DROBOFAIL_INSTALL_PYTHON=OFF -DBUILD_TESTING=OFF >cmake.log 2>&1 \
    || { tail -30 cmake.log >&2; exit 1; }
  make -j"$(nproc)" install >make.log 2>&1 || { tail -30 make.log >&2; exit 1; }
) || { echo "building the ROS interfaces failed (logs: $BUILD)" >&2; exit 1; }
mv "$SITE/robofail_ros/msg" "$SITE/robofail_ros/srv" "$SITE/robofail_ros/action" robofail_ros/
mv "$SITE"/robofail_ros/*.so robofail_ros/
rm -rf "$SITE/robofail_ros" "$SITE"/robofail_ros-*.egg-info
