"""`robofail`: every capability of robofail_ros from the command line.

Each subcommand is a function ``cmd_<name>(args)``, registered with its arguments in
``_parser()``. Errors that are the user's to fix (RoboFailError) print one clear message and
exit with status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import select
import shlex
import sys

from .core import interrupts
from .core.errors import RoboFailError, WrongTaskError, check_writable
from .model_commands import add_model_parsers
from .progress import ProgressBar


# ------------------------------------------------------------------------------- doctor
def cmd_doctor(args) -> int:
    failed = 0
    from .doctor import CHECKS
    for check in CHECKS:
        for label, ok, detail, fix in check():
            print(f"[{'ok' if ok else 'FAIL':>4}] {label}: {detail}" + ("" if ok else f"\n       fix: {fix}"))
            failed += not ok
    print("all components work" if not failed else f"{failed} problem(s) found")
    return 1 if failed else 0


# ------------------------------------------------------------------------ perturbations
def cmd_perturbations(args) -> int:
    from .core.perturbations import FACTORS, Catalog
    from .core.scenes import get_task
    if args.factors:
        rows = [{"factor": name, "parameters": [f.name for f in __import__("dataclasses").fields(cls)],
                 "doc": (cls.__doc__ or "").strip().splitlines()[0]} for name, cls in sorted(FACTORS.items())]
        print(json.dumps(rows, indent=2) if args.json else
              "\n".join(f"{r['factor']:<20} {', '.join(r['parameters']):<28} {r['doc']}" for r in rows))
        return 0
    task = get_task(args.task)
    catalog = Catalog.load(args.catalog).for_task(task.name)
    rows = [{"name": p.name, "label": p.label, "factor": p.factor_name,
             "params": {k: v for k, v in p.factor.__dict__.items()}} for p in catalog]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{len(rows)} perturbations over {len(catalog.factors())} factors for {task.name} ({catalog.path})")
        for r in rows:
            params = ", ".join(f"{k}={v}" for k, v in r["params"].items())
            print(f"  {r['name']:<20} {r['factor']:<20} {params}")
    return 0


def check_image_size(size: int, flag: str = "--size") -> None:
    """An image side given on the command line (render, replay, demos), checked before any work."""
    from .core.scenes.scene import IMAGE_SIZES
    if size not in IMAGE_SIZES:
        raise RoboFailError(f"{flag} must be between {IMAGE_SIZES.start} and {IMAGE_SIZES[-1]} pixels, got {size}")


def cmd_render(args) -> int:
    import pathlib

    from PIL import Image
    from .core.files import written_whole
    from .core.perturbations import Catalog
    from .core.scenes import Scene
    check_image_size(args.size)
    out = pathlib.Path(args.out)
    if out.suffix.lower() != ".png":
        raise RoboFailError(f"--out {out}: write a .png file")
    check_writable(out)
    scene = Scene(args.task, catalog=Catalog.load(args.catalog))
    scene.reset(args.perturbation or [], seed=args.seed)
    with written_whole(out) as partial:
        Image.fromarray(scene.render(args.camera, args.size)).save(partial)
    print(f"wrote {args.out} ({args.task}, perturbations: {', '.join(scene.applied) or 'none'}, seed {args.seed})")
    return 0


# ----------------------------------------------------------------------------- policies
def cmd_policies(args) -> int:
    from .core.policies.bundled import bundled_policies
    rows = bundled_policies()
    if args.json:
        print(json.dumps([{**dataclasses.asdict(r), "path": str(r.path)} for r in rows], indent=2))
        return 0
    print(f"{'name':<26} {'task':<12} {'algo':<7} {'obs':<14} {'nominal success':<22} sha256")
    for r in rows:
        nominal = f"{r.nominal_success:.0%} of {r.nominal_episodes}, {r.nominal_horizon} steps"
        print(f"{r.name:<26} {r.task:<12} {r.algo:<7} {r.obs:<14} {nominal:<22} {r.sha256[:16]}")
    return 0


# ------------------------------------------------------------------------------ search
def _config_from_args(args, base=None):
    """``base`` (default: --config, or config/search.yaml) with the command line's overrides."""
    from .core.config import DEFAULT_SEARCH_CONFIG, load_search_config
    config = base or load_search_config(args.config or DEFAULT_SEARCH_CONFIG)
    return config.replace(policy=args.policy, searcher=getattr(args, "searcher", None),
                          budget=getattr(args, "budget", None), num_workers=args.num_workers, seed=args.seed,
                          task=args.task)


def _out_folder(args, config, default_name):
    import pathlib
    return pathlib.Path(args.out) if args.out else pathlib.Path(config.output_dir) / default_name


def _run_and_print(args, config, out, continue_with=None) -> int:
    """Runs the search and prints its table; on Ctrl-C, says how to go on (``continue_with``: the
    command that does, by default this command with --resume) and returns 130."""
    from .core.analysis import format_table
    from .core.run import RunObserver, run_search

    class Progress(RunObserver):
        """The progress bar starts once the run is checked and begun: a bad config, searcher or
        policy is refused before anything else is printed."""
        failures, bar = 0, None

        def started(self, searcher, catalog, store):
            self.bar = ProgressBar(config.budget + config.nominal_episodes, config.searcher)
            done = store.outcomes()
            self.failures = sum(o.failure for o in done)
            self.bar.tick(len(done), failures=self.failures)

        def recorded(self, outcomes, store):
            self.failures += sum(o.failure for o in outcomes)
            self.bar.tick(len(outcomes), failures=self.failures)

        def close(self):
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    progress = Progress()
    try:
        result = run_search(config, out, resume=args.resume, observer=progress, extend=getattr(args, "extend", None))
    except BaseException as exc:
        if not interrupts.interrupted(exc):
            raise
        progress.close()  # before the message, so the bar's last line does not follow it
        continue_with = continue_with or (f"robofail {args.command} --out {shlex.quote(str(out))} --resume (it goes "
                                          "on with the config it recorded)")
        print(f"robofail {args.command}: interrupted; the run in {out} is kept (every finished episode is recorded). "
              f"Continue it with: {continue_with}", file=sys.stderr)
        return 130
    finally:
        progress.close()
    print(json.dumps(result.to_dict(), indent=2, default=str) if args.json else format_table(result))
    return 0


def _recorded_base(args, continued):
    """The run's recorded config when a command continues the run in ``continued`` (a resume or an
    extension) and --config is not given; else None (--config, or config/search.yaml)."""
    import pathlib
    from .core.run import recorded_config
    if args.config or not continued or not (pathlib.Path(continued) / "run.json").is_file():
        return None
    return recorded_config(continued)


def cmd_search(args) -> int:
    import datetime
    config = _config_from_args(args, base=_recorded_base(args, args.extend or (args.out if args.resume else None)))
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return _run_and_print(args, config, _out_folder(args, config, f"{config.searcher}-{stamp}"))


def cmd_evaluate(args) -> int:
    """Monte Carlo ground truth: every perturbation (and none) exactly --episodes times."""
    import datetime
    from .core.run import resolve_catalog
    from .core.search import EVALUATION_SEARCHER
    from .core.errors import ConfigError
    recorded = _recorded_base(args, args.out if args.resume else None)
    # A resume takes the run's recorded perturbations and episodes; others given are refused as another config.
    episodes = args.episodes if args.episodes is not None else recorded.nominal_episodes if recorded else 20
    if episodes < 1:
        raise ConfigError(f"--episodes must be at least 1 (each perturbation, and none, is tried that many times), "
                          f"got {episodes}")
    # the config's perturbations (config/search.yaml's: all) unless the command line names others
    config = _config_from_args(args, base=recorded).replace(
        searcher=EVALUATION_SEARCHER, perturbations=tuple(args.perturbations) if args.perturbations else None)
    n = len(resolve_catalog(config))
    # Every mode is tried alike, so the table can rank no more modes than there are.
    config = config.replace(budget=n * episodes, nominal_episodes=episodes, top_k=min(config.top_k, n))
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return _run_and_print(args, config, _out_folder(args, config, f"evaluate-{stamp}"))


# ------------------------------------------------------------------------------ reports
def cmd_report(args) -> int:
    from .core.report import write_report
    index = write_report(args.runs, args.out, with_gallery=not args.no_gallery)
    print(f"wrote {index} (figures in {index.parent / 'figures'}, numbers in {index.parent / 'figures.json'})")
    return 0


def cmd_compare(args) -> int:
    """The paper's Section 5 experiment: the same search for several policies, one report."""
    import pathlib
    from .core.report import write_report
    from .core.run import policy_record, resolve_catalog
    from .core.store import RunStore
    out = pathlib.Path(args.out)
    folders = {}  # one run folder per policy, named after it
    for spec in args.policies:
        folder = out / pathlib.Path(spec).stem
        if folder in folders.values():
            other = next(s for s, f in folders.items() if f == folder)
            raise RoboFailError(f"--policies {other} and {spec} would share the run folder {folder}; give each policy "
                                f"once, and checkpoints file names of their own")
        folders[spec] = folder
    # Every checkpoint and every folder is checked before any search runs: a bad last policy must
    # not wait for the searches before it. A finished run of this config and checkpoint is kept.
    configs = {spec: _config_from_args(args).replace(policy=spec) for spec in folders}
    kept, other_task = {}, {}
    for spec, config in configs.items():
        try:
            kept[spec] = RunStore.finished_run_of(folders[spec], config.to_dict(), policy_record(config),
                                                  resolve_catalog(config).definitions())
        except WrongTaskError as exc:  # "test it with --task X" cannot help a comparison of several tasks
            other_task[spec] = exc.trained_on
    if other_task:
        task = next(iter(configs.values())).task
        if len(other_task) == len(configs) and len(set(other_task.values())) == 1:
            trained_on = next(iter(other_task.values()))
            raise RoboFailError(f"every policy given was trained on task {trained_on}, not {task}; compare them with "
                                f"--task {trained_on}")
        raise RoboFailError(f"compare runs every policy on one task (--task {task}), but "
                            + ", ".join(f"{spec} was trained on {t}" for spec, t in other_task.items())
                            + "; compare each task's policies apart (`robofail compare --task TASK --policies ...`), "
                              "or list them under their tasks in a `robofail reproduce-paper` config")
    for spec, folder in folders.items():
        config = configs[spec]
        print(f"== {spec}: {config.searcher}, {config.budget} episodes -> {folder}", file=sys.stderr)
        if not kept[spec]:  # an interrupted run is resumed
            args.resume = (folder / "run.json").is_file()
            status = _run_and_print(args, config, folder, continue_with="the same `robofail compare` command again "
                                                                        "(finished runs are kept, this one resumes)")
            if status:  # interrupted: the comparison stops here, not only this policy's search
                return status
    index = write_report(list(folders.values()), out / "report", with_gallery=not args.no_gallery)
    print(f"wrote {index}")
    return 0


def cmd_replay(args) -> int:
    import pathlib

    from .core.replay import check_clip_out, replay_episode, write_clip
    check_image_size(args.size)
    check_clip_out(args.out)  # before the episode runs again
    replay = replay_episode(args.run, args.episode, frame_size=args.size)
    if args.out.endswith(".mcap"):
        from .core.mcap_record import write_mcap
        clip = write_mcap(args.out, replay.steps, list(zip(replay.frame_steps, replay.frames)), replay.outcome,
                          run_id=pathlib.Path(args.run).name)
    else:
        clip = write_clip(replay.frames, args.out)
    r, o = replay.recorded, replay.outcome
    print(f"episode {args.episode} (seed {r.seed}, perturbations {list(r.perturbations) or 'none'}): recorded "
          f"success={r.success} in {r.steps} steps; replay success={o.success} in {o.steps} steps"
          f"{'' if o.sim_error is None else f' (simulator error: {o.sim_error})'}; wrote {clip}")
    if not replay.reproduced:
        print("robofail replay: the replay did not reproduce the recorded outcome", file=sys.stderr)
        return 1
    return 0


def cmd_bench(args) -> int:
    import subprocess
    from .core.resources import share_dir
    suite = share_dir() / "bench" / "run_all.py"
    if not suite.is_file():
        raise RoboFailError(f"the benchmark suite {suite} is not here: run `robofail bench` from a source checkout")
    extra = (["--quick"] if args.quick else []) + (["--out", args.out] if args.out else []) \
        + (["--ground-truth", args.ground_truth] if args.ground_truth else [])
    return subprocess.call([sys.executable, str(suite), *extra])


# --------------------------------------------------------------------------------- ROS
def cmd_ros_run(args) -> int:
    from .nodes.commands import ros_run_command
    return ros_run_command(args)


def cmd_run(args) -> int:
    from .nodes.commands import run_command
    return run_command(args)


def cmd_query(args) -> int:
    from .nodes.commands import query_command
    return query_command(args)


# ------------------------------------------------------------------------------ parser
def _parser() -> argparse.ArgumentParser:
    from .core.perturbations import DEFAULT_CATALOG
    parser = argparse.ArgumentParser(prog="robofail", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("doctor", help="check every component and say how to fix what is broken")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("perturbations", help="list the perturbation catalog of a task")
    p.add_argument("--task", default="Lift")
    p.add_argument("--catalog", default=str(DEFAULT_CATALOG), help="perturbation catalog YAML")
    p.add_argument("--factors", action="store_true", help="list the factor types and their parameters instead")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_perturbations)

    p = sub.add_parser("render", help="render what a perturbation looks like")
    p.add_argument("--task", default="Lift")
    p.add_argument("--perturbation", action="append", help="catalog name; repeat to compose")
    p.add_argument("--catalog", default=str(DEFAULT_CATALOG))
    p.add_argument("--camera", default="agentview")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="PNG file to write")
    p.set_defaults(func=cmd_render)

    add_model_parsers(sub)

    p = sub.add_parser("policies", help="list the bundled policies")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_policies)

    from .core.config import DEFAULT_SEARCH_CONFIG
    for name, func, text in (("search", cmd_search, "search for failure modes (the main job)"),
                             ("evaluate", cmd_evaluate, "Monte Carlo over every perturbation: the ground truth")):
        p = sub.add_parser(name, help=text)
        continued = "--resume or --extend" if name == "search" else "--resume"
        p.add_argument("--config", help=f"ROS 2 parameter file (default: {DEFAULT_SEARCH_CONFIG}; "
                                        f"with {continued}: the config that run recorded)")
        p.add_argument("--policy", help="bundled name, checkpoint path, scripted or random")
        p.add_argument("--task")
        p.add_argument("--num-workers", type=int)
        p.add_argument("--seed", type=int)
        p.add_argument("--out", help=f"run folder (default: <output_dir>/{'<searcher>' if name == 'search' else name}-<time>)")
        p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
        p.add_argument("--json", action="store_true", help="print the result as JSON")
        if name == "search":
            p.add_argument("--searcher")
            p.add_argument("--budget", type=int, help="episodes the searcher spends")
            p.add_argument("--extend", metavar="RUN", help="continue the finished run RUN to a larger --budget, in a "
                                                           "new --out (RUN's episodes are copied; RUN stays as it is)")
        else:
            p.add_argument("--perturbations", nargs="+",
                           help="catalog names (default: the config's, all in config/search.yaml; with --resume: the run's)")
            p.add_argument("--episodes", type=int,
                           help="episodes per perturbation and unperturbed (default: 20; with --resume: the run's)")
        p.set_defaults(func=func)

    p = sub.add_parser("report", help="HTML report with figures and a failure gallery of finished runs")
    p.add_argument("runs", nargs="+", help="run folders (several: a comparison)")
    p.add_argument("--out", required=True, help="report folder to write")
    p.add_argument("--no-gallery", action="store_true", help="skip replaying failing episodes for the gallery")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("compare", help="the same search for several policies, then one comparison report")
    p.add_argument("--policies", nargs="+", required=True, help="bundled names or checkpoint paths")
    p.add_argument("--config", default=str(DEFAULT_SEARCH_CONFIG), help="ROS 2 parameter file")
    p.add_argument("--task")
    p.add_argument("--searcher")
    p.add_argument("--budget", type=int)
    p.add_argument("--num-workers", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--out", required=True, help="folder for one run per policy and report/")
    p.add_argument("--no-gallery", action="store_true")
    p.add_argument("--json", action="store_true", help="print each run's result as JSON")
    p.set_defaults(func=cmd_compare, policy=None)

    p = sub.add_parser("replay", help="run a recorded episode again from its seed and write a clip")
    p.add_argument("run", help="run folder")
    p.add_argument("--episode", type=int, required=True, help="episode id (see the run's episodes.sqlite or report)")
    p.add_argument("--out", required=True, help=".mp4, .gif, .png (a frame strip), or .mcap (ROS 2 messages: "
                                                "observations, actions, scene images, the result)")
    p.add_argument("--size", type=int, default=256)
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("bench", help="run the benchmark suite (bench/) and write its JSON results")
    p.add_argument("--quick", action="store_true", help="a 5-minute subset")
    p.add_argument("--out", help="results folder (default: bench/results/<time>)")
    p.add_argument("--ground-truth", help="an existing `robofail evaluate` run for the search-efficiency bench")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("ros-run", help="start the ROS system (search node + worker pairs) without ros2 launch")
    p.add_argument("--params-file", default=str(DEFAULT_SEARCH_CONFIG), help="ROS 2 parameter file")
    p.add_argument("--task")
    p.add_argument("--policy")
    p.add_argument("--searcher")
    p.add_argument("--budget", type=int)
    p.add_argument("--num-workers", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--out", help="run folder (default: <output_dir>/<searcher>-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    p.add_argument("--extend", metavar="RUN", help="continue the finished run RUN to a larger --budget, in a new --out")
    p.add_argument("--exit-when-done", action="store_true", help="exit when the search finishes instead of serving on")
    p.add_argument("--wait-for-goals", action="store_true",
                   help="start no search; serve RunSearch goals (robofail run) on /search_node/run_search")
    p.add_argument("--episode-timeout", type=float, help="seconds before a silent worker's episode is re-queued")
    p.set_defaults(func=cmd_ros_run)

    p = sub.add_parser("run", help="start a search on a running search node (ROS action) and follow it")
    p.add_argument("--task", help="must be the task the workers run")
    p.add_argument("--policy", help="must be the policy the workers run")
    p.add_argument("--searcher")
    p.add_argument("--budget", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--perturbations", nargs="+")
    p.add_argument("--out", help="run folder (default: a new one under output_dir)")
    p.add_argument("--resume", action="store_true", help="continue the unfinished run in --out")
    p.add_argument("--extend", metavar="RUN", help="continue the finished run RUN to a larger --budget, in a new --out")
    p.add_argument("--action", default="/search_node/run_search")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds to wait for the search node to appear, and for one that left mid-run to return")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("query", help="call the failure-probability service and print its table")
    p.add_argument("--run-id", default="", help="run folder name under output_dir (default: the current run)")
    p.add_argument("--method", default="empirical", help="empirical or pi")
    p.add_argument("--service", default="/search_node/get_failure_probabilities")
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_query)
    return parser


def _stdout_closed() -> bool:
    """Whether stdout is a pipe nobody reads any more (poll reports an error on its write end)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError):
        return False


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    interrupts.install()  # Ctrl-C stops every command cleanly
    try:
        return args.func(args)
    except RoboFailError as exc:
        print(f"robofail {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        if not _stdout_closed():
            raise
        # Whoever read the output stopped (`robofail zoo list | head`): nothing is wrong. Point
        # stdout at /dev/null so that Python's flush at exit does not report it once more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a shell reports a process stopped by SIGPIPE
    except OSError as exc:
        if exc.filename is None:  # not about a path the user gave: a traceback helps more
            raise
        print(f"robofail {args.command}: error: cannot use {exc.filename}: {exc.strerror or exc}; give a path "
              f"whose folder exists and is writable", file=sys.stderr)
        return 2
    except BaseException as exc:
        if not interrupts.interrupted(exc):
            raise
        hint = getattr(args, "on_interrupt", None)  # for commands that go on where they stopped
        print(f"robofail {args.command}: interrupted" + (f"; {hint}" if hint else ""), file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
