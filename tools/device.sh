#!/usr/bin/env bash
# The GPU machine lent through `device` (16 cores, one GPU, Python 3.12, torch with CUDA, no
# package index) lacks the simulator stack. This script packs what it lacks into .device/
# (ignored by git; ~20 MB; with the tracked tree, ~53 MB, it travels in two calls: see stage)
# and runs the scaling and GPU benchmarks there.
#
#   bash tools/device.sh pack     # here: wheels, a robosuite of our four tasks only, EGL loaders
#   bash tools/device.sh stage    # there (carry the robosuite archive): keep it in /tmp for the next calls
#   bash tools/device.sh run      # there (carry .device/whl, .device/gl): install to /tmp, run the benches, JSON to $OUT
#   bash tools/device.sh zoo      # there (carry .device/whl, .device/gl): demos + the low-dim roster
#
# With the `device` tool: first run(command="bash tools/device.sh stage",
# carry=[".device/robosuite-tasks.tar.xz"]), then run(command="bash tools/device.sh run",
# carry=[".device/whl", ".device/gl"]) while the machine is warm (see robosuite_archive below).
# WORKERS and EPISODES (environment) change the low-dim scaling sweep; TASKS and ONLY (roster model
# names) limit what zoo trains.
#
# pack: cp312 wheels of mujoco 3.3.7, glfw, PyOpenGL, termcolor and robomimic 0.3.0 (built here,
# pure Python); robosuite 1.5.2's Python code plus only the asset files that building the Lift,
# Stack, Reach and Push scenes with every catalog perturbation opens (traced with strace: about
# 9 MB with xz, of 531 MB installed); the Debian GL loader packages that MuJoCo's EGL renderer needs.
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
for task in ("Lift", "Stack", "Reach", "Push"):
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
  du -sh "$DEV"
}

# The tracked tree (bundled checkpoints included) is about 53 MB and .device about 20: together
# over the 64 MiB a call carries. So the robosuite archive travels alone first
# (`run(command="bash tools/device.sh stage", carry=[".device/robosuite-tasks.tar.xz"])`) and
# stays in the machine's /tmp while it is warm; later calls carry [".device/whl", ".device/gl"].
robosuite_archive() {
  local cached=/tmp/robofail-robosuite-tasks.tar.xz
  [[ -f "$DEV/robosuite-tasks.tar.xz" ]] && cp "$DEV/robosuite-tasks.tar.xz" "$cached"
  [[ -f "$cached" ]] || { echo "no robosuite archive here: run \`bash tools/device.sh stage\` first (see tools/device.sh)" >&2; exit 2; }
  echo "$cached"
}

install_there() {
  for f in "$DEV"/gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$DEV"/whl/*.whl
  tar -xJf "$(robosuite_archive)" -C /tmp/site
  # config/ and data/ where a pip install puts them (core/resources.py looks there)
  local share
  share="$(python3 -c 'import sys; print(sys.prefix)')/share/robofail_ros"
  mkdir -p "$share" && ln -sfn "$ROOT/config" "$share/config" && ln -sfn "$ROOT/data" "$share/data"
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
    python3 bench/pool_scaling.py --policy lift_bc_rnn_image_proprio --device cuda --workers 1 8 \
      --episodes "${IMAGE_EPISODES:-32}" --perturbations red_table dim_light heavy_cube camera_left \
      --json "$out/pool_scaling_image_cuda.json"
    python3 bench/step_profile.py --policy lift_bc_rnn_low_dim --json "$out/step_profile_lowdim_cpu.json"
    # shellcheck disable=SC2086
    python3 bench/pool_scaling.py --workers ${WORKERS:-1 2 4 8 16} --episodes "${EPISODES:-160}" \
      --json "$out/pool_scaling_lowdim.json"
    ;;
  zoo)
    # Writes the demos and trains the low-dim roster of TASKS (default: all four) on the GPU, one
    # `robofail zoo build` per task at once. Checkpoints, index.yaml and logs land in $OUT/zoo as
    # each finishes (the datasets stay there); `robofail zoo build TASK --zoo <that folder>` here
    # then measures their nominal success.
    install_there
    cd "$ROOT"
    # The zoo lives in /tmp/zoo, which outlives a call while the machine stays warm: a second call
    # resumes it (`zoo build` keeps what is built). $OUT gets one tar (a call returns few files).
    out=/tmp/zoo
    mkdir -p "$out"
    export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
    nvidia-smi --query-gpu=name --format=csv,noheader || true
    for task in ${TASKS:-Lift Stack Push Reach}; do
      # ONLY names models of every task: each build gets its own task's (<task>_...)
      only=()
      for name in ${ONLY:-}; do [[ "$name" == "${task,,}_"* ]] && only+=("$name"); done
      [[ -n "${ONLY:-}" && ${#only[@]} -eq 0 ]] && continue
      timeout "${ZOO_SECONDS:-520}" python3 -m robofail_ros.cli zoo build "$task" --obs low_dim --device cuda \
        --jobs 4 --no-evaluate --zoo "$out" ${only[@]:+--only "${only[@]}"} > "$out/build_$task.log" 2>&1 &
    done
    wait || true
    tail -n 4 "$out"/build_*.log
    tar -C /tmp -cf "${OUT:-$DEV/results}/zoo.tar" --exclude=zoo/datasets --exclude='*.training' --exclude='*.log' zoo
    ;;
  *) echo "usage: bash tools/device.sh pack | stage | run | zoo" >&2; exit 2 ;;
esac
