"""Policies under test: demos in robomimic's format, robomimic training, checkpoint loading."""
import os
import subprocess
import warnings

import h5py
import numpy as np
import pytest

from robofail_ros.core.episode import run_episode
from robofail_ros.core.errors import ConfigError, PolicyError
from robofail_ros.core.policies import load_policy
from robofail_ros.core.policies.demos import write_demos
from robofail_ros.core.policies.training import check_dataset

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def demos(tmp_path_factory, lift_lowdim):
    path = tmp_path_factory.mktemp("demos") / "lift.hdf5"
    report = write_demos(lift_lowdim, load_policy("scripted"), 4, path, seed=1000)
    assert report.kept == 4 and report.expert_success_rate == 1.0
    return path


def test_demos_are_read_by_robomimics_own_dataset_class(demos):
    import robomimic.utils.obs_utils as ObsUtils
    from robomimic.utils.dataset import SequenceDataset
    keys = ("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "object")
    ObsUtils.initialize_obs_modality_mapping_from_dict({"low_dim": list(keys)})
    data = SequenceDataset(hdf5_path=str(demos), obs_keys=keys, dataset_keys=("actions", "rewards", "dones"),
                           seq_length=10, load_next_obs=True, hdf5_cache_mode=None)
    item = data[0]
    assert item["obs"]["object"].shape == (10, 10) and item["actions"].shape == (10, 7)
    with h5py.File(demos) as f:
        assert len(f["mask/train"]) + len(f["mask/valid"]) == 4
        assert f["data/demo_0/rewards"][-1] == 1.0


def train(python, demos, obs, out):
    # A separate process, as users run it: robomimic's training disturbs this process's GL context.
    return subprocess.run([python, "-m", "robofail_ros.cli", "train-policy", "--dataset", str(demos), "--algo", "bc",
                           "--obs", obs, "--epochs", "1", "--steps-per-epoch", "5", "--batch-size", "16", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)


def test_short_real_training_gives_a_loadable_checkpoint(demos, tmp_path, lift_lowdim, python):
    out = tmp_path / "bc.pth"
    result = train(python, demos, "low_dim", out)
    assert result.returncode == 0, result.stderr[-2000:]
    policy = load_policy(str(out), task="Lift")
    assert policy.sha256 in result.stdout and policy.modality == "low_dim"
    outcome = run_episode(lift_lowdim, policy, [], seed=0)
    assert outcome.steps > 0 and outcome.sim_error is None
    again = train(python, demos, "low_dim", out)
    assert again.returncode == 2 and "never overwritten" in again.stderr
    image = train(python, demos, "image", tmp_path / "img.pth")
    assert image.returncode == 2 and "lacks observation keys ['agentview_image']" in image.stderr


INTERRUPTED_COPY = r"""
import os, shutil, signal, sys
from robofail_ros.cli import main
out_folder = os.path.dirname(os.path.abspath(sys.argv[sys.argv.index("--out") + 1]))
copying = {shutil._fastcopy_sendfile.__code__, shutil.copyfileobj.__code__}
def ctrl_c_while_the_checkpoint_is_copied(frame, event, arg):  # into --out's folder (robomimic's own are deeper)
    if (event == "call" and frame.f_code in copying
            and os.path.dirname(os.path.abspath(frame.f_locals["fdst"].name)) == out_folder):
        sys.setprofile(None)
        os.kill(os.getpid(), signal.SIGINT)
sys.setprofile(ctrl_c_while_the_checkpoint_is_copied)
sys.exit(main(sys.argv[1:]))
"""


def test_a_ctrl_c_while_the_checkpoint_is_copied_leaves_none_and_the_same_command_trains_again(demos, tmp_path,
                                                                                               python):
    """Ctrl-C as the trained checkpoint was copied out left a truncated file at --out: the same
    command then refused it as existing ("never overwritten"), and loading it failed."""
    out = tmp_path / "bc.pth"
    argv = ["train-policy", "--dataset", str(demos), "--algo", "bc", "--obs", "low_dim", "--epochs", "1",
            "--steps-per-epoch", "5", "--batch-size", "16", "--out", str(out)]
    interrupted = subprocess.run([python, "-c", INTERRUPTED_COPY, *argv], capture_output=True, text=True, timeout=600)
    assert interrupted.returncode == 130 and "interrupted" in interrupted.stderr, interrupted.stderr[-2000:]
    assert not out.exists() and not list(tmp_path.glob(".bc.pth*")), list(tmp_path.iterdir())
    again = subprocess.run([python, "-m", "robofail_ros.cli", *argv], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert load_policy(str(out), task="Lift").sha256 in again.stdout


def test_a_bc_transformer_trains_and_rolls_out_on_its_stacked_frames(demos, tmp_path, lift_lowdim, python):
    """robomimic's BC-Transformer reads the last 10 observations: the loader stacks them as
    robomimic's own FrameStackWrapper does (a single frame used to reach the transformer)."""
    out = tmp_path / "transformer.pth"
    result = subprocess.run([python, "-m", "robofail_ros.cli", "train-policy", "--dataset", str(demos), "--algo",
                             "bc_transformer", "--obs", "low_dim", "--epochs", "1", "--steps-per-epoch", "2",
                             "--batch-size", "8", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    policy = load_policy(str(out), task="Lift")
    assert policy.frame_stack == 10 and policy.algo == "bc"
    outcome = run_episode(lift_lowdim, policy, [], seed=0)
    assert outcome.steps > 1 and outcome.sim_error is None
    assert {len(frames) for frames in policy._frames.values()} == {10}


def test_lean_demos_train_with_a_decaying_learning_rate(tmp_path, lift_lowdim, python):
    lean = tmp_path / "lean.hdf5"
    write_demos(lift_lowdim, load_policy("scripted"), 2, lean, seed=1000, exclude_next_obs=True)
    with h5py.File(lean) as f:
        assert "next_obs" not in f["data/demo_0"] and "object" in f["data/demo_0/obs"]
    out = tmp_path / "rnn.pth"
    result = subprocess.run([python, "-m", "robofail_ros.cli", "train-policy", "--dataset", str(lean), "--algo", "bc_rnn",
                             "--epochs", "2", "--steps-per-epoch", "3", "--batch-size", "4", "--learning-rate", "0.001",
                             "--lr-decay-epochs", "1", "--data-workers", "1", "--out", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    log = (tmp_path / "rnn.training" / "train.log").read_text()
    # robomimic logs the optimizer's rate per epoch: 1e-3 in the first, x0.1 after epoch 1.
    assert '"Optimizer/policy0_lr": 0.001,' in log and '"Optimizer/policy0_lr": 0.0001' in log
    bcq = subprocess.run([python, "-m", "robofail_ros.cli", "train-policy", "--dataset", str(lean), "--algo", "bcq",
                          "--out", str(tmp_path / "bcq.pth")], capture_output=True, text=True, timeout=600)
    assert bcq.returncode == 2 and "has no next_obs" in bcq.stderr


def test_bundled_default_rolls_out_and_succeeds(lift_lowdim):
    policy = load_policy("lift_bc_rnn_low_dim", task="Lift")
    assert all(run_episode(lift_lowdim, policy, [], seed=s).success for s in range(3))


def test_a_rollout_records_no_autograd_graph(lift_lowdim):
    # robomimic's RolloutPolicy runs with gradients on; BC-RNN's hidden state then carries a
    # graph through every step of its RNN horizon (slower, and memory that grows with it).
    policy = load_policy("lift_bc_rnn_low_dim", task="Lift")
    obs = lift_lowdim.reset([], seed=0)
    policy.start_episode(0)
    for _ in range(3):
        action = policy.act(obs)
        obs = lift_lowdim.step(action)
    hidden = policy._policy.policy._rnn_hidden_state
    assert hidden is not None and not any(h.requires_grad for h in hidden)


def test_a_policy_reading_an_observation_the_scene_lacks_is_told_what_to_change(lift_lowdim):
    image_policy = load_policy("lift_bc_rnn_image_proprio", task="Lift")
    with pytest.raises(PolicyError, match=r"reads observation keys \['agentview_image', 'robot0_eye_in_hand_image'\] that this "
                                          r"scene does not provide .*give the scene the policy's cameras "
                                          r"\(Scene\(\.\.\., cameras=\['agentview', 'robot0_eye_in_hand'\]\)\)$"):
        run_episode(lift_lowdim, image_policy, [], seed=0)
    # A key no camera gives: the policy is for another environment; no camera would help.
    policy = load_policy("lift_bc_low_dim", task="Lift")
    policy.observation_keys = (*policy.observation_keys, "door_handle_pos")
    with pytest.raises(PolicyError, match=r"\['door_handle_pos'\] that this scene does not provide .*trained on observations "
                                          r"of another environment .*`robofail train-policy`\)$"):
        run_episode(lift_lowdim, policy, [], seed=0)


def test_bad_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(PolicyError, match="does not exist"):
        load_policy(str(tmp_path / "missing.pth"), task="Lift")
    with pytest.raises(PolicyError, match="is a folder, not a checkpoint file"):
        load_policy(str(tmp_path), task="Lift")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint" * 100)
    with pytest.raises(PolicyError, match=r"could not be loaded as a robomimic checkpoint \(UnpicklingError: Unsupported "
                       r"operand \d+\); it may be truncated or corrupt") as bytes_error:
        load_policy(str(corrupt), task="Lift")
    import torch
    truncated = tmp_path / "truncated.pth"
    torch.save({"algo_name": "bc"}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:300])
    with pytest.raises(PolicyError, match=r"\(RuntimeError: PytorchStreamReader failed reading zip archive: [^.]*\); "
                                          "it may be truncated") as zip_error:
        load_policy(str(truncated), task="Lift")
    numpy_inside = tmp_path / "numpy_inside.pth"  # a robomimic checkpoint with a numpy array added: torch's safe loader refuses it
    torch.save({"algo_name": "bc", "obs_normalization_stats": np.zeros(3)}, numpy_inside)
    with pytest.raises(PolicyError, match=r"holds a Python object \(numpy\.[\w.]+\) that torch will not load.*"
                                          r"\.tolist\(\)") as numpy_error:
        load_policy(str(numpy_inside), task="Lift")
    # One line each, without torch's page of advice (which ends in turning its safe loader off).
    for error in (bytes_error, zip_error, numpy_error):
        assert "\n" not in str(error.value) and "weights_only` set to `False`" not in str(error.value)
    state_dict = tmp_path / "state_dict.pth"
    torch.save(torch.nn.Linear(2, 2).state_dict(), state_dict)
    with pytest.raises(PolicyError, match="a PyTorch file but not a robomimic checkpoint .*'algo_name'.*policy: external"):
        load_policy(str(state_dict), task="Lift")
    tensor = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), tensor)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # robomimic used to index the tensor as a dict: a torch warning, then an IndexError
        with pytest.raises(PolicyError, match="not a robomimic checkpoint \\(it holds a Tensor, not a dictionary\\)"):
            load_policy(str(tensor), task="Lift")
    with pytest.raises(PolicyError, match="trained on task 'Lift', not 'Stack'"):
        load_policy("lift_bc_low_dim", task="Stack")
    # A policy for another robot, arm controller or control rate would run without an error, its
    # actions meaning something else: refused. robosuite 1.5 nests the arm's controller; 1.4 does not.
    from robofail_ros.core.policies.bundled import bundled_policies
    checkpoint = torch.load(next(b.path for b in bundled_policies() if b.name == "lift_bc_low_dim"),
                            map_location="cpu", weights_only=False)
    for change, trained_on in (({"robots": ["Sawyer"]}, r"Sawyer \(arm controller OSC_POSE, 20 Hz\)"),
                               ({"controller_configs": {"type": "JOINT_VELOCITY"}}, r"Panda \(arm controller JOINT_VELOCITY"),
                               ({"controller_configs": {"type": "BASIC", "body_parts": {"right": {"type": "OSC_POSITION"}}}},
                                r"Panda \(arm controller OSC_POSITION"),
                               ({"control_freq": 10}, r"Panda \(arm controller OSC_POSE, 10 Hz\)")):
        other = tmp_path / "other.pth"
        env = checkpoint["env_metadata"]
        torch.save({**checkpoint, "env_metadata": {**env, "env_kwargs": {**env["env_kwargs"], **change}}}, other)
        with pytest.raises(PolicyError, match=f"trained on {trained_on}.*robofail's scenes run a Panda"):
            load_policy(str(other), task="Lift")
    newer = tmp_path / "newer.pth"  # an algorithm of another robomimic: not called a corrupt file
    torch.save({**checkpoint, "algo_name": "diffusion_policy"}, newer)
    with pytest.raises(PolicyError, match=r"robomimic algorithm 'diffusion_policy', which robomimic [\d.]+, the version "
                                          r"installed, does not have \(it has bc, bcq, .*\).*policy: external"):
        load_policy(str(newer), task="Lift")
    door = tmp_path / "door.pth"  # a task robofail has no scene for: no `--task Door` to suggest
    torch.save({**checkpoint, "env_metadata": {**env, "env_name": "Door", "env_kwargs": {
        k: v for k, v in env["env_kwargs"].items() if k != "robofail_task"}}}, door)
    with pytest.raises(PolicyError, match=r"trained on task 'Door', not 'Lift'; robofail has no scene for 'Door' \(its "
                                          r"tasks: Lift, .*\); train a policy on one of them"):
        load_policy(str(door), task="Lift")
    same = tmp_path / "same.pth"  # robomimic's own datasets record the controller robofail runs
    torch.save({**checkpoint, "env_metadata": {**env, "env_kwargs": {**env["env_kwargs"], "controller_configs": {
        "type": "BASIC", "body_parts": {"right": {"type": "OSC_POSE"}}}}}}, same)
    assert load_policy(str(same), task="Lift").observation_keys


def test_every_bundled_policy_matches_its_index_entry():
    from robofail_ros.core.policies.bundled import bundled_policies
    from robofail_ros.core.policies.training import sha256_of
    entries = bundled_policies()
    assert {(e.algo, e.obs) for e in entries} >= {("bc_rnn", "low_dim"), ("bc_rnn", "image_proprio")}
    for e in entries:
        assert sha256_of(e.path) == e.sha256, f"{e.file} differs from the sha256 in index.yaml"
        assert os.path.getsize(e.path) <= 20 * 2**20 and e.nominal_episodes >= 50


def test_bad_demo_requests_are_refused_before_anything_runs(python, tmp_path):
    existing = tmp_path / "mine.hdf5"
    existing.write_bytes(b"keep me")
    for out, episodes, extra, message in (
            (tmp_path / "new.hdf5", "0", [], "--episodes must be positive, got 0"),
            (existing, "3", [], "exists; demos are never overwritten"),
            (tmp_path / "new.hdf5", "3", ["--image-size", "8"], "--image-size must be between 16 and 2048 pixels, got 8"),
            (tmp_path / "new.hdf5", "3", ["--seed", "-1"], "--seed must be in [0, 4294967293] for 3 episodes")):
        result = subprocess.run([python, "-m", "robofail_ros.cli", "demos", "--episodes", episodes, "--out", str(out),
                                 *extra], capture_output=True, text=True, timeout=120)
        assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
        assert result.stderr.startswith("robofail demos: error:"), "nothing (a progress bar) may come before the error"
    assert existing.read_bytes() == b"keep me" and not (tmp_path / "new.hdf5").exists()
    # robosuite's own ValueError ("Current sensor for observable agentveiw_image is invalid") used to end it
    result = subprocess.run([python, "-m", "robofail_ros.cli", "demos", "--episodes", "1", "--cameras", "agentveiw",
                             "--out", str(tmp_path / "new.hdf5")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "unknown camera of task Lift 'agentveiw'. Did you mean 'agentview'" in result.stderr
    assert not list(tmp_path.glob("new.hdf5*"))


def test_demos_stopped_midway_leave_no_half_written_file(tmp_path, lift_lowdim):
    def interrupt_after_the_first(done, kept):
        if done == 1:
            raise KeyboardInterrupt  # Ctrl-C
    out = tmp_path / "lift.hdf5"
    with pytest.raises(KeyboardInterrupt):
        write_demos(lift_lowdim, load_policy("scripted"), 3, out, seed=1000, progress=interrupt_after_the_first)
    assert not list(tmp_path.iterdir()), "a .partial file was left behind"


def test_listing_into_a_pipe_nobody_reads_ends_quietly(python):
    # `robofail policies | head -1`, with the reader gone before the first line is written.
    read, write = os.pipe()
    os.close(read)
    try:
        result = subprocess.run([python, "-m", "robofail_ros.cli", "policies"], stdout=write, stderr=subprocess.PIPE,
                                text=True, timeout=120)
    finally:
        os.close(write)
    assert result.returncode == 141 and result.stderr == "", result.stderr


def test_bundled_image_policy_reads_both_cameras_and_rolls_out(python):
    # Its own process: a second rendering Scene made and closed in the pytest process would
    # leave no GL context current for the session's scenes.
    script = (
        "from robofail_ros.core.policies import load_policy\n"
        "from robofail_ros.core.scenes import Scene\n"
        "from robofail_ros.core.episode import run_episode\n"
        "p = load_policy('lift_bc_rnn_image_proprio', task='Lift')\n"
        "assert set(p.cameras) == {'agentview', 'robot0_eye_in_hand'} and p.modality == 'image_proprio'\n"
        "o = run_episode(Scene('Lift', cameras=p.cameras), p, [], seed=0)\n"
        "assert o.sim_error is None and o.success, o\n"
        "print('rolled out', o.steps)\n")
    result = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "rolled out" in result.stdout, result.stderr[-2000:]


def test_hbc_and_bcq_train_on_push_demos_and_load(tmp_path, python):
    from robofail_ros.core.scenes import Scene
    scene = Scene("Push")
    demos = tmp_path / "push.hdf5"
    write_demos(scene, load_policy("scripted", task="Push"), 3, demos, seed=1000)
    for algo in ("hbc", "bcq"):
        out = tmp_path / f"{algo}.pth"
        result = subprocess.run([python, "-m", "robofail_ros.cli", "train-policy", "--dataset", str(demos), "--algo", algo,
                                 "--epochs", "1", "--steps-per-epoch", "3", "--batch-size", "8", "--out", str(out)],
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-2000:]
        policy = load_policy(str(out), task="Push")
        assert policy.name == algo and "object" in policy.observation_keys
        assert run_episode(scene, policy, [], seed=0).steps > 0
        with pytest.raises(PolicyError, match="trained on task 'Push', not 'Lift'"):
            load_policy(str(out), task="Lift")
    scene.close()


@pytest.mark.parametrize("algo,obs", [("hbc", "image"), ("bcq", "image_proprio")])
def test_a_combination_robomimic_cannot_train_here_is_refused_before_any_work(tmp_path, python, algo, obs):
    out = tmp_path / "x.pth"
    result = subprocess.run([python, "-m", "robofail_ros.cli", "train-policy", "--dataset", str(tmp_path / "none.hdf5"),
                             "--algo", algo, "--obs", obs, "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and f"--algo {algo} cannot be trained on --obs {obs}" in result.stderr
    assert "bc, bc_rnn or bc_transformer" in result.stderr and not list(tmp_path.iterdir())


def test_a_dataset_path_that_is_a_folder_or_missing_is_named_as_such(tmp_path):
    with pytest.raises(ConfigError, match=f"dataset {tmp_path} is a folder, not a dataset file; give the .hdf5 file"):
        check_dataset(tmp_path, "low_dim")
    with pytest.raises(ConfigError, match="dataset .*none.hdf5 does not exist; make one with `robofail demos --out"):
        check_dataset(tmp_path / "none.hdf5", "low_dim")


def test_an_image_policy_trained_at_another_size_runs_at_that_size(tmp_path, python):
    """Demos recorded at 48x48, a one-epoch image BC trained on them, and a real search with it:
    the workers' scenes render the cameras at the size the checkpoint was trained on. They used to
    render 84x84 whatever the checkpoint; the policy's centre crop then ran without an error on a
    view it was never trained on."""
    cli = [python, "-m", "robofail_ros.cli"]
    demos = tmp_path / "small.hdf5"
    result = subprocess.run([*cli, "demos", "--episodes", "2", "--image-size", "48", "--exclude-next-obs",
                             "--out", str(demos)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    with h5py.File(demos) as f:
        assert f["data/demo_0/obs/agentview_image"].shape[1:] == (48, 48, 3)
    checkpoint = tmp_path / "img48.pth"
    result = subprocess.run([*cli, "train-policy", "--dataset", str(demos), "--algo", "bc", "--obs", "image",
                             "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "8", "--out", str(checkpoint)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    script = ("from robofail_ros.core.perturbations import DEFAULT_CATALOG\n"
              "from robofail_ros.core.workers import EpisodeRunner, WorkerSpec\n"
              f"runner = EpisodeRunner(WorkerSpec('Lift', {str(checkpoint)!r}, DEFAULT_CATALOG, horizon=3))\n"
              "print(runner.policy.image_size, runner.scene.reset([], seed=0)['agentview_image'].shape)\n")
    result = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.stdout.split("\n")[-2] == "48 (48, 48, 3)", result.stderr[-2000:]
    config = tmp_path / "search.yaml"
    config.write_text(f"/**:\n  ros__parameters:\n    policy: {checkpoint}\n    searcher: uniform\n    budget: 1\n"
                      "    nominal_episodes: 1\n    horizon: 3\n    num_workers: 1\n    report: false\n"
                      "    perturbations: [red_table]\n    top_k: 1\n")
    run = tmp_path / "run"
    result = subprocess.run([*cli, "search", "--config", str(config), "--out", str(run)], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "2 episodes, 2 policy failures, 0 simulator errors" in result.stdout  # 3 steps cannot lift the cube


@pytest.mark.parametrize("change, message", [
    ({"epochs": 0}, r"--epochs must be a whole number >= 1, got 0"),
    ({"steps_per_epoch": -3}, r"--steps-per-epoch must be a whole number >= 1, got -3"),  # wrote an untrained checkpoint
    ({"batch_size": 0}, r"--batch-size must be a whole number >= 1, got 0"),
    ({"learning_rate": float("nan")}, r"--learning-rate must be a positive number, got nan"),
    ({"learning_rate": -1.0}, r"--learning-rate must be a positive number"),
    ({"lr_decay_epochs": (5, 60)}, r"--lr-decay-epochs \[5, 60\] must lie between 0 and --epochs 50"),
    ({"seed": -4}, r"--seed must be in \[0, 4294967295\], got -4"),
    ({"data_workers": -1}, r"--data-workers must be >= 0"),
    ({"device": "gpu"}, r"--device must be cpu or cuda, got 'gpu'"),
])
def test_training_numbers_robomimic_would_fail_on_are_refused_first(change, message):
    from robofail_ros.core.policies.training import check_training
    settings = dict(epochs=50, steps_per_epoch=100, batch_size=100, seed=0, device="cpu", learning_rate=None)
    check_training(**settings)
    with pytest.raises(ConfigError, match=message):
        check_training(**{**settings, **change})


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the refusal where torch sees no GPU")
def test_training_on_cuda_without_a_gpu_is_refused_not_quietly_done_on_the_cpu():
    # robomimic's get_torch_device falls back to the CPU, and the .train.json would say cuda
    from robofail_ros.core.policies.training import check_training
    with pytest.raises(ConfigError, match="--device cuda asked for, but torch sees no GPU here"):
        check_training(epochs=1, steps_per_epoch=1, batch_size=1, seed=0, device="cuda", learning_rate=None)


def test_a_dataset_smaller_than_one_batch_is_refused_before_any_work(demos, tmp_path, python):
    """robomimic drops an incomplete batch; with none its loop died on a bare StopIteration."""
    out = tmp_path / "bc.pth"
    result = subprocess.run([python, "-m", "robofail_ros.cli", "train-policy", "--dataset", str(demos), "--algo", "bc",
                             "--batch-size", "100000", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "training samples, fewer than one batch (--batch-size 100000)" in result.stderr
    assert not out.exists() and not (tmp_path / "bc.training").exists()
