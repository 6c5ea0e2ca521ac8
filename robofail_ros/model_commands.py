"""`robofail` commands for the policies under test: demos, training, the model zoo and the
paper's comparison (cli.py registers them with add_model_parsers)."""
from __future__ import annotations

import sys

from .core.errors import RoboFailError
from .core.paper import DEFAULT_PAPER_CONFIG
from .core.policies.training import ALGO_OBS, OBS_MODALITIES
from .core.scenes.scene import IMAGE_SIZE
from .core.zoo import DEFAULT_ROSTER as DEFAULT_ZOO_ROSTER
from .progress import ProgressBar


def cmd_demos(args) -> int:
    from .core.perturbations import Catalog
    from .core.policies import load_policy
    from .core.policies.demos import check_demo_request, write_demos
    from .core.scenes import Scene
    from .cli import check_image_size
    check_demo_request(args.out, args.episodes, args.seed)  # before the scene is built and a progress bar is drawn
    check_image_size(args.image_size, "--image-size")
    scene = Scene(args.task, catalog=Catalog.load(), cameras=tuple(args.cameras), image_size=args.image_size,
                  horizon=args.horizon)
    bar = ProgressBar(args.episodes, "demos")
    report = write_demos(scene, load_policy("scripted", task=args.task), args.episodes, args.out, seed=args.seed,
                         exclude_next_obs=args.exclude_next_obs, progress=lambda done, kept: bar.tick(kept=kept))
    bar.close()
    print(f"wrote {report.kept} demonstrations ({report.samples} samples) to {report.path}; "
          f"expert success rate {report.expert_success_rate:.1%} over {report.attempted} episodes")
    return 0


def cmd_train_policy(args) -> int:
    from .core.policies.training import check_combination, check_dataset, check_training, train_policy
    check_combination(args.algo, args.obs)  # bad input is refused before anything is printed or written
    check_training(args.epochs, args.steps_per_epoch, args.batch_size, args.seed, args.device, args.learning_rate,
                   args.lr_decay_epochs, args.data_workers)
    check_dataset(args.dataset, args.obs, tuple(args.cameras), args.algo, args.batch_size)
    print(f"training {args.algo} on {args.obs} observations of {args.dataset} (robomimic; log in "
          f"{args.out.rsplit('.', 1)[0]}.training/train.log)")
    result = train_policy(args.dataset, args.algo, args.obs, args.out, epochs=args.epochs,
                          steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size, seed=args.seed,
                          device=args.device, learning_rate=args.learning_rate, cameras=tuple(args.cameras),
                          lr_decay_epochs=tuple(args.lr_decay_epochs), data_workers=args.data_workers)
    print(f"wrote {result.checkpoint} (sha256 {result.sha256}) in {result.seconds:.0f} s")
    return 0


def cmd_zoo(args) -> int:
    from .core import zoo
    roster = zoo.Roster.load(args.roster)
    if args.action == "list":
        built = zoo.Zoo(args.zoo)
        from .core.policies.bundled import bundled_policies
        bundled = {b.name: b for b in bundled_policies()}
        for m in roster.models:
            entry = built.entries.get(m.name)
            state = "bundled" if m.name in bundled else "built" if entry else "not built"
            measured = bundled.get(m.name) or entry
            rate = measured.nominal_success if measured else None
            steps = f" at {measured.nominal_horizon} steps" if rate is not None and measured.nominal_horizon else ""
            print(f"{m.name:34s} {m.task:6s} {m.algo:7s} {m.obs:14s} {state:10s} "
                  + (f"nominal success {rate:.0%}{steps}" if rate is not None else ""))
        return 0
    if not args.task:
        raise RoboFailError("`robofail zoo build` needs a task, e.g. `robofail zoo build Push`")
    zoo.build(args.task, args.zoo, roster, device=args.device, evaluate=not args.no_evaluate, jobs=args.jobs,
              observations=tuple(args.obs), only=tuple(args.only), say=lambda text: print(text, flush=True))
    return 0


def cmd_reproduce_paper(args) -> int:
    from .core.paper import PaperConfig, reproduce
    from .core.run import RunObserver
    paper = PaperConfig.load(args.config)

    class Progress(RunObserver):  # one bar per model's search
        def started(self, searcher, catalog, store):
            self.bar = ProgressBar(paper.settings.budget + paper.settings.nominal_episodes, store.folder.name)
            self.bar.tick(store.count())

        def recorded(self, outcomes, store):
            self.bar.tick(len(outcomes))

    index = reproduce(paper, args.out, observer=Progress,
                      say=lambda text: print(text, file=sys.stderr, flush=True))
    print(f"wrote {index} (per-task figures in {index.parent}/<task>/, the entropy table in {index.parent}/figures.json)")
    return 0


def add_model_parsers(sub) -> None:
    p = sub.add_parser("demos", help="write scripted-expert demonstrations in robomimic's hdf5 format")
    p.add_argument("--task", default="Lift")
    p.add_argument("--episodes", type=int, default=200)
    p.add_argument("--cameras", nargs="*", default=["agentview"], help="camera images to record (none: low-dim only)")
    p.add_argument("--image-size", type=int, default=IMAGE_SIZE,
                   help="side of the square camera images, in pixels (a policy trained on them is run at this size)")
    p.add_argument("--horizon", type=int, default=200)
    p.add_argument("--seed", type=int, default=1000, help="first episode seed (evaluation uses seeds from 0)")
    p.add_argument("--exclude-next-obs", action="store_true",
                   help="leave out next_obs (half the size; bc and bc_rnn never read it, bcq needs it)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_demos)

    p = sub.add_parser("train-policy", help="train a policy under test with robomimic")
    p.add_argument("--dataset", required=True)
    p.add_argument("--algo", choices=sorted(ALGO_OBS), default="bc_rnn")
    p.add_argument("--obs", choices=sorted(OBS_MODALITIES), default="low_dim",
                   help="; ".join(f"{a}: {', '.join(o)}" for a, o in sorted(ALGO_OBS.items())))
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--steps-per-epoch", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--learning-rate", type=float, help="default: robomimic's for the algorithm (1e-4 for bc)")
    p.add_argument("--lr-decay-epochs", type=int, nargs="+", default=[],
                   help="epochs after which the learning rate is multiplied by 0.1 (robomimic's multistep schedule)")
    p.add_argument("--cameras", nargs="+", default=["agentview"], help="cameras an image policy reads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--data-workers", type=int, default=0, help="robomimic's num_data_workers (DataLoader processes)")
    p.add_argument("--out", required=True, help="checkpoint to write (.pth)")
    p.set_defaults(func=cmd_train_policy)

    p = sub.add_parser("zoo", help="build the paper's model roster (config/zoo.yaml) for a task, or list it")
    p.add_argument("action", choices=["build", "list"])
    p.add_argument("task", nargs="?", help="task to build (build only)")
    p.add_argument("--zoo", default="zoo", help="folder of built models and their index.yaml")
    p.add_argument("--roster", default=str(DEFAULT_ZOO_ROSTER), help="the roster file")
    p.add_argument("--obs", nargs="+", default=[], choices=sorted(OBS_MODALITIES), help="only these observation kinds")
    p.add_argument("--only", nargs="+", default=[], metavar="MODEL", help="only these roster models (`robofail zoo list`)")
    p.add_argument("--device", default="cpu", help="where robomimic trains (cpu or cuda)")
    p.add_argument("--jobs", type=int, default=1, help="trainings at once")
    p.add_argument("--no-evaluate", action="store_true", help="skip measuring nominal success (a later build does it)")
    p.set_defaults(func=cmd_zoo, on_interrupt="run the same command again to go on: built and measured models are "
                                              "kept, an interrupted training starts again")

    p = sub.add_parser("reproduce-paper", help="the paper's model comparison over its tasks: figures and entropy table")
    p.add_argument("--config", default=str(DEFAULT_PAPER_CONFIG), help="which models, which search (config/paper.yaml)")
    p.add_argument("--out", required=True, help="folder for one run per model (runs/) and the report (report/)")
    p.set_defaults(func=cmd_reproduce_paper, on_interrupt="run the same command again to go on: finished runs are "
                                                          "kept, the interrupted one resumes")
