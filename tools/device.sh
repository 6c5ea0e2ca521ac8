#!/usr/bin/env bash
# The GPU machine lent through `device` (16 cores, one GPU, Python 3.12, torch with CUDA, no
# package index) lacks the simulator stack. This script packs what it lacks into .device/
# (ignored by git; ~20 MB, and 12 MB of ROS 2 wheels) and runs the scaling and GPU benchmarks there.
#
#   bash tools/device.sh pack     # here: wheels, a robosuite of our five tasks only, EGL loaders, ROS 2 wheels
#   bash tools/device.sh stage    # there (carry the robosuite archive): keep it in /tmp for the next calls
#   bash tools/device.sh run      # there (carry .device/whl, .device/gl): install to /tmp, run the benches, JSON to $OUT
#   bash tools/device.sh search   # there (carry .device/whl, .device/gl): the main job's search on process workers
#   bash tools/device.sh zoo      # there (carry .device/whl, .device/gl): demos + roster models (OBS: low_dim)
#   bash tools/device.sh zoo-wait # there, in the next call while the machine is warm: the same builds, waited for
#   bash tools/device.sh ros      # there (carry .device/whl, .device/gl, .device/ros312.tar.xz and the
#                                 # robosuite archive): ROS 2 in a Python 3.12 venv, our interfaces, bench/scaling.py
#
# With the `device` tool: run(command="bash tools/device.sh run", carry=[".device/whl", ".device/gl",
# ".device/robosuite-tasks.tar.xz"]). A call carries at most 64 MiB, the working tree included (57 MB
# with every bundled checkpoint): move the checkpoints a call does not use out of the checkout
# first and back after (run uses the two Lift BC-RNNs and lift_bc_low_dim; ros only lift_bc_low_dim);
# or send the robosuite archive alone first with `stage` (see robosuite_archive below).
# WORKERS and EPISODES (environment) change the low-dim scaling sweep; TASKS and ONLY (roster model
# names) limit what zoo trains; ROS_WORKERS and ROS_EPISODES the ROS sweep; SEARCH_WORKERS,
# SEARCH_BUDGET and KILL_AFTER the search.
#
# pack: cp312 wheels of mujoco 3.3.7, glfw, PyOpenGL, termcolor and robomimic 0.3.0 (built here,
# pure Python); robosuite 1.5.2's Python code plus only the asset files that building the Lift,
# Stack, Reach, Push and PickPlaceCan scenes with every catalog perturbation opens (traced with strace: about
# 11 MB with xz, of 531 MB installed); the Debian GL loader packages that MuJoCo's EGL renderer needs;
# the cp312 builds of the ROS 2 wheels our venv holds (45 MB as wheels; unpacked and xz'd, 12 MB).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEV="$ROOT/.device"

pack() {
  local py="$ROOT/.venv/bin/python" site
  site="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  rm -rf "$DEV" && mkdir -p "$DEV/whl" "$DEV/gl"
  "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    -d "$DEV/whl" mujoco==3.3.7 glfw==2.11.0 PyOpenGL==3.1.10 termcolor==3.3.0
  "$py" -m pip wheel -q --no-deps robomimic==0.3.0 -w "$DEV/whl"
  command -v strace >/dev/null || apt-get install -y -qq strace >/dev/null
  strace -f -e trace=openat,newfstatat -o "$DEV/trace.log" "$py" - <<'PY'
from robofail_ros.core.perturbations import DEFAULT_CATALOG, Catalog
from robofail_ros.core.scenes import Scene
for task in ("Lift", "Stack", "Reach", "Push", "PickPlaceCan"):
    catalog = Catalog.load(DEFAULT_CATALOG).for_task(task)
    for cameras in (("agentview", "robot0_eye_in_hand"), ()):
        scene = Scene(task, catalog=catalog, cameras=cameras)
        for name in catalog.names:
            scene.reset([name], seed=1)
            scene.render("agentview", 84)
        scene.close()
PY
  (cd "$site" && {
    find robosuite -type f ! -path "robosuite/models/assets/*" ! -path "*/__pycache__/*"
    grep -o "$site/robosuite/models/assets/[^\"]*" "$DEV/trace.log" | sed "s#$site/##" | sort -u | while read -r f; do [[ -f "$f" ]] && echo "$f"; done
    find robosuite/models/assets/objects robosuite/models/assets/arenas -type f
  } | sort -u | tar -cf - -T - | xz -6 -T0 > "$DEV/robosuite-tasks.tar.xz")
  rm "$DEV/trace.log"
  mkdir -p /tmp/amd64/partial
  local o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
  apt-get "${o[@]}" update -qq && (cd "$DEV/gl" && apt-get "${o[@]}" download -qq libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
  pack_ros
  du -sh "$DEV"
}

# The same ROS 2 wheels as .venv, built for Python 3.12, with rosidl's build tools. Wheels are zip
# files that xz cannot shrink; their unpacked contents tar+xz to a quarter (45 -> 12 MB).
pack_ros() {
  local py="$ROOT/.venv/bin/python" tmp
  tmp="$(mktemp -d)"
  "$py" -m pip freeze 2>/dev/null | grep -E '^(ros-|catkin-pkg|docutils|lark-parser)' > "$tmp/requirements.txt"
  "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d "$tmp/whl" -r "$tmp/requirements.txt"
  "$py" -m pip wheel -q --no-deps "$("$py" -m pip freeze | grep '^empy==')" -w "$tmp/whl"  # an sdist
  mkdir -p "$tmp/ros312"
  for w in "$tmp"/whl/*.whl; do "$py" -m zipfile -e "$w" "$tmp/ros312/$(basename "$w" .whl)"; done
  tar -C "$tmp" -cf - ros312 | xz -9 -T0 > "$DEV/ros312.tar.xz"
  rm -rf "$tmp"
}

# When the tree and .device together pass the 64 MiB a call carries, the robosuite archive travels alone first
# (`run(command="bash tools/device.sh stage", carry=[".device/robosuite-tasks.tar.xz"])`) and
# stays in the machine's /tmp while it is warm; later calls carry [".device/whl", ".device/gl"].
robosuite_archive() {
  local cached=/tmp/robofail-robosuite-tasks.tar.xz
  [[ -f "$DEV/robosuite-tasks.tar.xz" ]] && cp "$DEV/robosuite-tasks.tar.xz" "$cached"
  [[ -f "$cached" ]] || { echo "no robosuite archive here: run \`bash tools/device.sh stage\` first (see tools/device.sh)" >&2; exit 2; }
  echo "$cached"
}

# ros_venv VENV ARCHIVE: a venv over this machine's python3 that also sees its packages (a .pth),
# with the wheels unpacked in ARCHIVE (pack_ros) zipped again and installed into it.
ros_venv() {
  local venv="$1" archive="$2" image_site tmp
  image_site="$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  python3 -m venv --without-pip "$venv"
  echo "$image_site" > "$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/image-packages.pth"
  tmp="$(mktemp -d)"
  tar -xJf "$archive" -C "$tmp"
  mkdir -p "$tmp/whl"
  for d in "$tmp"/ros312/*/; do (cd "$d" && python3 -m zipfile -c "$tmp/whl/$(basename "$d").whl" ./*); done
  python3 -m pip --python "$venv/bin/python" install -q --no-index --no-deps --no-compile "$tmp"/whl/*.whl
  rm -rf "$tmp"
}

# link_share PREFIX: config/ and data/ where a pip install into PREFIX puts them (core/resources.py looks there)
link_share() {
  mkdir -p "$1/share/robofail_ros" && ln -sfn "$ROOT/config" "$1/share/robofail_ros/config" \
    && ln -sfn "$ROOT/data" "$1/share/robofail_ros/data"
}

install_there() {
  # Once per machine: a second call on a warm machine must not rewrite files that a build still
  # running from the first call (zoo) imports from.
  if [[ ! -f /tmp/site/.robofail-installed ]]; then
    for f in "$DEV"/gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$DEV"/whl/*.whl
    tar -xJf "$(robosuite_archive)" -C /tmp/site
    touch /tmp/site/.robofail-installed
  fi
  link_share "$(python3 -c 'import sys; print(sys.prefix)')"
  export PYTHONPATH="/tmp/site:$ROOT" MUJOCO_GL=egl PYOPENGL_PLATFORM=egl PYTHONUNBUFFERED=1
}

case "${1:-}" in
  pack) pack ;;
  stage)
    robosuite_archive >/dev/null && echo "robosuite archive staged in /tmp"
    # what building ROS 2 interfaces there would need
    for tool in cmake make gcc g++ cc; do printf '%s: %s\n' "$tool" "$(command -v "$tool" || echo missing)"; done
    python3 -c 'import sysconfig, os; d = sysconfig.get_paths()["include"]; print("Python.h:", os.path.exists(d + "/Python.h"), d)'
    ;;
  run)
    install_there
    cd "$ROOT"
    out="${OUT:-$DEV/results}"
    mkdir -p "$out"
    nproc; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
    python3 -m robofail_ros.cli doctor || true  # no ROS or SB3 there: those checks fail, the rest must pass
    # The GPU path first: it is what only this machine can measure.
    python3 bench/step_profile.py --policy lift_bc_rnn_image_proprio --device cuda --json "$out/step_profile_image_cuda.json"
    # The image policy on the GPU, then on the CPU (renders stay on the GPU): eight CUDA contexts
    # time-slice one GPU, so with many workers the CPU may hold the network better.
    for device in ${IMAGE_DEVICES-cuda cpu}; do  # IMAGE_DEVICES="" skips them
      python3 bench/pool_scaling.py --policy lift_bc_rnn_image_proprio --device "$device" --workers 1 8 \
        --episodes "${IMAGE_EPISODES:-32}" --perturbations red_table dim_light heavy_cube camera_left \
        --json "$out/pool_scaling_image_$device.json"
    done
    python3 bench/step_profile.py --policy lift_bc_rnn_low_dim --json "$out/step_profile_lowdim_cpu.json"
    # shellcheck disable=SC2086
    python3 bench/pool_scaling.py --workers ${WORKERS:-1 2 4 8 16} --episodes "${EPISODES:-160}" \
      --json "$out/pool_scaling_lowdim.json"
    # what the cores give independent copies of the same loop: the ceiling those speed-ups are read against
    # shellcheck disable=SC2086
    python3 bench/cpu_ceiling.py --copies ${WORKERS:-1 2 4 8 16} --json "$out/cpu_ceiling.json"
    ;;
  ros)
    # ROS worker pairs over DDS on this machine's cores (issue 15). The ROS wheels need a venv
    # (ros-wheels-bootstrapper puts its lib/ on the library path): one over this image's Python,
    # seeing the image's packages (torch, numpy) through a .pth, our interfaces built into it.
    install_there
    cd "$ROOT"
    out="${OUT:-$DEV/results}"
    mkdir -p "$out"
    nproc
    venv=/tmp/rosvenv
    [[ -x "$venv/bin/python" ]] || ros_venv "$venv" "$DEV/ros312.tar.xz"
    bash tools/build_interfaces.sh "$venv"
    link_share "$venv"
    "$venv/bin/python" -m robofail_ros.cli doctor || true
    # shellcheck disable=SC2086
    "$venv/bin/python" bench/scaling.py --workers ${ROS_WORKERS:-1 8} --episodes "${ROS_EPISODES:-120}" \
      --policy "${ROS_POLICY:-lift_bc_low_dim}" --json "$out/scaling_ros.json"
    ;;
  search)
    # The main job's search (config/search.yaml: identify on the bundled low-dim BC-RNN) in the core,
    # on this machine's cores as process workers, one of which is killed (SIGKILL) KILL_AFTER seconds
    # in (empty: none): its episode must run again elsewhere. The run folder comes back in $OUT/run.
    install_there
    cd "$ROOT"
    out="${OUT:-$DEV/results}"
    if [[ -n "${KILL_AFTER-90}" ]]; then
      (sleep "${KILL_AFTER-90}" && pkill -9 -n -f multiprocessing.spawn && echo "killed the newest worker process") &
    fi
    python3 -m robofail_ros.cli search --config config/search.yaml --num-workers "${SEARCH_WORKERS:-16}" \
      --budget "${SEARCH_BUDGET:-2000}" --out "$out/run"
    ;;
  zoo | zoo-wait)
    # zoo: writes the demos and trains the roster models of TASKS (default: Lift Stack Push Reach)
    # whose observations are OBS (default low_dim; e.g. OBS=image ONLY=reach_bc_rnn_image), one
    # `robofail zoo build` per task at once, on the GPU. The builds run detached in /tmp/zoo, which
    # outlives a call while the machine stays warm, and the call waits up to ZOO_SECONDS for them.
    # zoo-wait, called before the machine goes back (it is warm for 30 s), starts nothing and waits
    # for the same builds again: an image model's 200 epochs (~16 min on an H100) outlast one call.
    # $OUT gets zoo.tar (index.yaml, .train.json, log tails) and each checkpoint apart (a call returns
    # at most 8 files of 16 MiB): every finished one, and of a training still running its newest
    # epoch checkpoint. `robofail zoo build TASK --zoo <a folder of them>` here measures their
    # nominal success.
    install_there
    cd "$ROOT"
    out=/tmp/zoo results="${OUT:-$DEV/results}"
    mkdir -p "$out" "$results"
    export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
    nvidia-smi --query-gpu=name --format=csv,noheader || true
    building() { pgrep -f "robofail_ros.cli zoo build" >/dev/null; }
    if [[ "$1" == zoo ]]; then
      building && { echo "builds of an earlier call are still running: zoo-wait waits for them" >&2; exit 2; }
      for task in ${TASKS:-Lift Stack Push Reach}; do
        # ONLY names models of every task: each build gets its own task's (<task>_...)
        only=()
        for name in ${ONLY:-}; do [[ "$name" == "${task,,}_"* ]] && only+=("$name"); done
        [[ -n "${ONLY:-}" && ${#only[@]} -eq 0 ]] && continue
        # shellcheck disable=SC2086
        setsid python3 -m robofail_ros.cli zoo build "$task" --obs ${OBS:-low_dim} --device cuda --jobs 4 \
          --no-evaluate --zoo "$out" ${only[@]:+--only "${only[@]}"} > "$out/build_$task.log" 2>&1 < /dev/null &
      done
      sleep 5
    fi
    deadline=$((SECONDS + ${ZOO_SECONDS:-520}))
    while building && ((SECONDS < deadline)); do sleep 10; done
    tail -n 4 "$out"/build_*.log || true
    for work in "$out"/*.training; do  # a training not finished: how far it got, and its newest checkpoint
      [[ -d "$work" ]] || continue
      name="$(basename "$work" .training)"
      tail -n 30 "$work/train.log" > "$out/$name.train_tail.log" 2>/dev/null || true
      { grep "^Train Epoch" "$work/train.log" 2>/dev/null || true; } | tail -n 1 | sed "s/^/$name: /"
      newest="$(find "$work" -name 'model_epoch_*.pth' | sort -V | tail -n 1)"
      [[ -z "$newest" || -f "$out/$name.pth" ]] || cp "$newest" "$results/${name}_$(basename "$newest")"
    done
    cp "$out"/*.pth "$results"/ 2>/dev/null || true
    tar -C /tmp -cf "$results/zoo.tar" --exclude=zoo/datasets --exclude='*.training' --exclude='*.pth' zoo
    ls -la "$results"
    (($(find "$results" -maxdepth 1 -type f | wc -l) <= 8)) || echo "more than the 8 files a call returns: build fewer models a call (ONLY)" >&2
    ;;
  *) echo "usage: bash tools/device.sh pack | stage | run | search | zoo | zoo-wait | ros" >&2; exit 2 ;;
esac
