"""Training policies under test with robomimic's own config system and train loop.

    train_policy("data/lift.hdf5", algo="bc_rnn", obs="low_dim", out="data/policies/lift_bc_rnn.pth")

robomimic builds the model, the dataset loader and the loop; this module only fills in its
config (algorithm, observation keys, a small image encoder) and keeps the final checkpoint.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import pathlib
import shutil
import time

from .. import interrupts
from ..errors import ConfigError, lookup
from ..files import written_whole
from ..scenes.scene import IMAGE_SIZE

# robomimic algorithm config per --algo (bc_rnn and bc_transformer are robomimic's BC with its
# RNN or its transformer switched on).
ALGOS = {"bc": "bc", "bc_rnn": "bc", "bc_transformer": "bc", "bcq": "bcq", "hbc": "hbc"}
# What each algorithm can be trained on here. HBC's planner is a VAE that reconstructs the
# subgoal observation (robomimic takes it from next_obs at the subgoal horizon); we give it
# low-dim subgoals only. BCQ's critics and action VAE are trained on low-dim observations.
ALGO_OBS = {"bc": ("low_dim", "image", "image_proprio"), "bc_rnn": ("low_dim", "image", "image_proprio"),
            "bc_transformer": ("low_dim", "image", "image_proprio"), "bcq": ("low_dim",), "hbc": ("low_dim",)}
# Algorithms that learn from next_obs (the dataset must carry it).
NEEDS_NEXT_OBS = {"bcq", "hbc"}
# Low-dim observation keys and whether camera images are read, per --obs (the dataset must
# hold them: see demos.LOW_DIM_KEYS and `robofail demos --cameras`).
PROPRIO = ["robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos"]
OBS_MODALITIES = {
    "low_dim": {"low_dim": PROPRIO + ["object"], "images": False},
    "image": {"low_dim": [], "images": True},
    "image_proprio": {"low_dim": PROPRIO, "images": True},
}


def check_combination(algo: str, obs: str) -> None:
    """Refuses, before any work, an algorithm/observation pair this project cannot train."""
    lookup(ALGOS, "algorithm", algo)
    lookup(OBS_MODALITIES, "observation modality", obs)
    if obs not in ALGO_OBS[algo]:
        raise ConfigError(f"--algo {algo} cannot be trained on --obs {obs} here: {algo} takes "
                          f"{' or '.join(ALGO_OBS[algo])}. For camera images use --algo bc, bc_rnn or bc_transformer")


def check_training(epochs: int, steps_per_epoch: int, batch_size: int, seed: int, device: str,
                   learning_rate: float | None, lr_decay_epochs=(), data_workers: int = 0) -> None:
    """Refuses, before any work, numbers robomimic would fail on halfway (or, for a step count
    of 0, train nothing and still write a checkpoint), and a device it would quietly replace."""
    for flag, value in (("--epochs", epochs), ("--steps-per-epoch", steps_per_epoch), ("--batch-size", batch_size)):
        if value < 1:
            raise ConfigError(f"{flag} must be a whole number >= 1, got {value}")
    if data_workers < 0:
        raise ConfigError(f"--data-workers must be >= 0 (0: load batches in the training process), got {data_workers}")
    if not 0 <= seed < 2**32:
        raise ConfigError(f"--seed must be in [0, {2**32 - 1}], got {seed}")
    if learning_rate is not None and not (math.isfinite(learning_rate) and learning_rate > 0):
        raise ConfigError(f"--learning-rate must be a positive number, got {learning_rate}")
    if any(not 0 < e < epochs for e in lr_decay_epochs):
        raise ConfigError(f"--lr-decay-epochs {list(lr_decay_epochs)} must lie between 0 and --epochs {epochs}")
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be cpu or cuda, got {device!r}")
    if device == "cuda":
        import torch
        if not torch.cuda.is_available():  # robomimic would train on the CPU and the record would say cuda
            raise ConfigError("--device cuda asked for, but torch sees no GPU here (torch.cuda.is_available() is "
                              "False); use --device cpu, or train where a GPU is (`robofail doctor` says what it sees)")


def observation_keys(obs: str, cameras=("agentview",)) -> dict:
    """robomimic's {"low_dim": [...], "rgb": [...]} for an --obs modality and its cameras."""
    modality = lookup(OBS_MODALITIES, "observation modality", obs)
    if modality["images"] and not cameras:
        raise ConfigError(f"--obs {obs} reads camera images; name at least one camera (e.g. --cameras agentview)")
    return {"low_dim": modality["low_dim"], "rgb": [f"{c}_image" for c in cameras] if modality["images"] else []}


@dataclasses.dataclass(frozen=True)
class TrainingResult:
    checkpoint: str
    sha256: str
    seconds: float
    log: str


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_config(dataset, algo: str, obs: str, work_dir, epochs: int, steps_per_epoch: int,
                 batch_size: int, seed: int, learning_rate: float | None = None, cameras=("agentview",),
                 lr_decay_epochs=(), data_workers: int = 0, image_size: int = IMAGE_SIZE):
    """robomimic's config for this training run (see robomimic.config for every field);
    ``image_size``: the side of the dataset's camera images."""
    from robomimic.config import config_factory
    algo_name = lookup(ALGOS, "algorithm", algo)
    modalities = observation_keys(obs, cameras)
    config = config_factory(algo_name)
    with config.values_unlocked():
        config.experiment.name = f"{algo}_{obs}"
        config.experiment.validate = False
        config.experiment.rollout.enabled = False  # robomimic's rollouts need mujoco_py; we evaluate ourselves
        config.experiment.logging.terminal_output_to_txt = False
        config.experiment.logging.log_tb = False
        config.experiment.save.enabled = True
        config.experiment.save.every_n_epochs = max(1, epochs // 5)  # earlier ones survive an interrupted run
        config.experiment.save.on_best_validation = False
        config.experiment.save.on_best_rollout_return = False
        config.experiment.save.on_best_rollout_success_rate = False
        config.experiment.epoch_every_n_steps = steps_per_epoch
        config.train.data = str(pathlib.Path(dataset).resolve())
        config.train.output_dir = str(pathlib.Path(work_dir).resolve())  # robomimic resolves relative paths in its own folder
        config.train.num_epochs = epochs
        config.train.batch_size = batch_size
        config.train.seed = seed
        config.train.hdf5_cache_mode = "all"
        config.train.num_data_workers = data_workers
        config.train.hdf5_filter_key = "train"
        if algo == "hbc":  # a planner and an actor, each with its own observation config
            config.observation.planner.modalities.obs.low_dim = modalities["low_dim"]
            config.observation.planner.modalities.subgoal.low_dim = modalities["low_dim"]
            config.observation.actor.modalities.obs.low_dim = modalities["low_dim"]
        else:
            config.observation.modalities.obs.low_dim = modalities["low_dim"]
            config.observation.modalities.obs.rgb = modalities["rgb"]
        if modalities["rgb"]:
            # A shallow conv + spatial softmax keeps checkpoints small (ResNet18 alone is 45 MB).
            config.observation.encoder.rgb.core_kwargs.backbone_class = "ShallowConv"
            config.observation.encoder.rgb.core_kwargs.backbone_kwargs = {"input_channel": 3, "output_channel": 32}
            config.observation.encoder.rgb.core_kwargs.pool_class = "SpatialSoftmax"
            config.observation.encoder.rgb.core_kwargs.pool_kwargs.num_kp = 32
            config.observation.encoder.rgb.core_kwargs.feature_dimension = 64
            # Random crops of 76/84 of the side in training (the centre crop at test time):
            # robomimic's standard augmentation for image policies (76x76 of its 84x84 images).
            crop = 2 * round(image_size * 38 / 84)  # even: ShallowConv miscounts its output shape for odd sides
            config.observation.encoder.rgb.obs_randomizer_class = "CropRandomizer"
            config.observation.encoder.rgb.obs_randomizer_kwargs.crop_height = crop
            config.observation.encoder.rgb.obs_randomizer_kwargs.crop_width = crop
        if algo == "bc_rnn":
            config.algo.rnn.enabled = True
            config.algo.rnn.horizon = 10
            config.train.seq_length = 10
            # The scripted expert is deterministic (one mode); robomimic's 5-mode GMM head
            # learned input-independent modes on it in 10k steps, while a plain head fits quickly.
            config.algo.gmm.enabled = False
        if algo == "bc_transformer":  # robomimic's BC-Transformer: the last 10 observations in, one action out
            config.algo.transformer.enabled = True
            config.algo.transformer.context_length = 10
            config.train.frame_stack = 10
            config.train.seq_length = 1
        algo_parts = [config.algo.planner, config.algo.actor] if algo == "hbc" else [config.algo]
        for optim in (o for part in algo_parts for o in part.optim_params.values()):
            if learning_rate is not None:
                optim.learning_rate.initial = learning_rate
            optim.learning_rate.epoch_schedule = sorted(lr_decay_epochs)  # x decay_factor (0.1) at each
    return config


def check_dataset(dataset, obs: str, cameras=("agentview",), algo: str = "bc", batch_size: int = 1) -> int:
    """Refuses a dataset that cannot train this policy, or that holds fewer training samples than
    one batch (robomimic drops an incomplete batch, and with none its loop fails on StopIteration);
    returns the side of its camera images."""
    import h5py
    path = pathlib.Path(dataset)
    if not path.is_file():
        if path.is_dir():
            raise ConfigError(f"dataset {path} is a folder, not a dataset file; give the .hdf5 file that "
                              "`robofail demos --out FILE` wrote")
        raise ConfigError(f"dataset {path} does not exist; make one with `robofail demos --out {path}`")
    keys = observation_keys(obs, cameras)
    wanted = keys["low_dim"] + keys["rgb"]
    try:
        with h5py.File(path, "r") as f:
            demos = list(f["data"].keys())
            if not demos or "mask/train" not in f:
                raise ConfigError(f"dataset {path} has no demonstrations or no mask/train; regenerate it with `robofail demos`")
            samples = sum(int(f[f"data/{d.decode() if isinstance(d, bytes) else d}"].attrs["num_samples"])
                          for d in f["mask/train"][()])
            first = f[f"data/{demos[0]}/obs"]
            have = set(first.keys())
            has_next_obs = f"data/{demos[0]}/next_obs" in f
            sizes = {first[key].shape[1:3] for key in keys["rgb"] if key in have}  # (T, H, W, 3)
    except (OSError, KeyError) as exc:
        raise ConfigError(f"dataset {path} is not a robomimic hdf5 file ({exc}); regenerate it with `robofail demos`") from None
    missing = sorted(set(wanted) - have)
    if missing:
        raise ConfigError(f"dataset {path} lacks observation keys {missing} needed for --obs {obs} (it has "
                          f"{sorted(have)}); record them with `robofail demos --cameras {' '.join(cameras) or 'agentview'}`")
    if algo in NEEDS_NEXT_OBS and not has_next_obs:
        raise ConfigError(f"dataset {path} has no next_obs, which {algo} learns from; record demos without --exclude-next-obs")
    if len(sizes) > 1 or any(h != w for h, w in sizes):
        raise ConfigError(f"dataset {path} holds camera images of {sorted(sizes)} (height, width) pixels; robofail runs "
                          "a policy's cameras at one square size: record them with `robofail demos --image-size`")
    if samples < batch_size:
        raise ConfigError(f"dataset {path} holds {samples} training samples, fewer than one batch (--batch-size "
                          f"{batch_size}); record more demos (`robofail demos --episodes`) or lower --batch-size")
    return int(sizes.pop()[0]) if sizes else IMAGE_SIZE


def train_policy(dataset, algo: str, obs: str, out, epochs: int = 50, steps_per_epoch: int = 100,
                 batch_size: int = 100, seed: int = 0, device: str = "cpu", learning_rate: float | None = None,
                 cameras=("agentview",), lr_decay_epochs=(), data_workers: int = 0) -> TrainingResult:
    """Trains with robomimic and copies the final checkpoint to ``out`` (never overwriting it)."""
    import robomimic.utils.torch_utils as TorchUtils
    from robomimic.scripts.train import train

    out = pathlib.Path(out)
    if out.exists():
        raise ConfigError(f"{out} exists; checkpoints are never overwritten. Choose another --out")
    check_combination(algo, obs)
    check_training(epochs, steps_per_epoch, batch_size, seed, device, learning_rate, lr_decay_epochs, data_workers)
    image_size = check_dataset(dataset, obs, cameras, algo, batch_size)
    work = out.parent / (out.stem + ".training")
    config = build_config(dataset, algo, obs, work, epochs, steps_per_epoch, batch_size, seed, learning_rate, cameras,
                          lr_decay_epochs, data_workers, image_size)
    config.lock()
    shutil.rmtree(work, ignore_errors=True)  # scratch of an earlier attempt; robomimic would stop to ask
    work.mkdir(parents=True)
    log = work / "train.log"
    start = time.time()
    with open(log, "w") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
        train(config, device=TorchUtils.get_torch_device(try_to_use_cuda=device == "cuda"))
    checkpoints = sorted(work.glob(f"{config.experiment.name}/*/models/model_epoch_{epochs}.pth"))
    if not checkpoints:
        raise RuntimeError(f"robomimic finished without a checkpoint; see {log}")
    with written_whole(out) as partial:  # a Ctrl-C mid-copy leaves no truncated checkpoint
        shutil.copy(checkpoints[-1], partial)
        interrupts.check()
        meta = {"dataset": str(dataset), "algo": algo, "obs": obs, "cameras": list(cameras) if obs != "low_dim" else [],
                "epochs": epochs, "steps_per_epoch": steps_per_epoch,
                "batch_size": batch_size, "learning_rate": learning_rate, "lr_decay_epochs": sorted(lr_decay_epochs),
                "data_workers": data_workers, "seed": seed, "device": device, "seconds": round(time.time() - start, 1)}
        (out.parent / (out.stem + ".train.json")).write_text(json.dumps(meta, indent=2))
    return TrainingResult(str(out), sha256_of(out), time.time() - start, str(log))
