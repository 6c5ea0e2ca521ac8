"""The ROS commands of `robofail`: ros-run (start the system), run (a search as an action, with
a progress bar) and query (the failure-probability service). cli.py registers them."""
from __future__ import annotations

import json
import math
import sys

from ..core.errors import RoboFailError
from ..progress import ProgressBar


def _check_timeout(seconds: float) -> None:
    """rclpy waits forever on a negative timeout, and a NaN one never ends either."""
    if not (math.isfinite(seconds) and seconds > 0):
        raise RoboFailError(f"--timeout must be a positive number of seconds, got {seconds}")


def ros_run_command(args) -> int:
    from ..core.config import load_search_config
    from .bringup import ros_run
    config = load_search_config(args.params_file)  # fails here, clearly, before any node starts
    overrides = {k: v for k, v in (("task", args.task), ("policy", args.policy), ("searcher", args.searcher),
                                   ("budget", args.budget), ("seed", args.seed)) if v is not None}
    search_overrides = {"exit_when_done": args.exit_when_done, "resume": args.resume,
                        "start_on_launch": not args.wait_for_goals}
    if args.episode_timeout is not None:
        search_overrides["episode_timeout_s"] = args.episode_timeout
    for name in ("out", "extend"):
        if getattr(args, name):
            search_overrides[name] = getattr(args, name)
    config = config.replace(**overrides)
    if config.policy == "external":
        print("robofail ros-run: policy external: no policy nodes are started; the search waits for your own "
              "policy node in each worker's namespace (/worker_<i>/policy_info)", file=sys.stderr)
    return ros_run(args.params_file, config.num_workers if args.num_workers is None else args.num_workers, overrides, search_overrides)


def run_command(args) -> int:
    """A search as a ROS action on a running search node, with a live progress bar."""
    from .bringup import run_goal
    _check_timeout(args.timeout)
    fields = {"task": args.task or "", "policy": args.policy or "", "searcher": args.searcher or "",
              "budget": -1 if args.budget is None else args.budget, "seed": -1 if args.seed is None else args.seed,
              "perturbations": args.perturbations or [], "out": args.out or "", "resume": args.resume,
              "extend": args.extend or ""}
    bar = None

    def progress(feedback):
        nonlocal bar
        if bar is None:
            bar = ProgressBar(feedback.budget, "run_search")
        worst = feedback.top_modes[0] if feedback.top_modes else None
        bar.tick(feedback.episodes - bar.n, failures=feedback.failures, worst="-" if worst is None else
                 f"{worst.name} {worst.probability:.2f} [{worst.ci_low:.2f}, {worst.ci_high:.2f}]")
    try:
        result = run_goal(fields, args.action, progress, args.timeout)
    except TimeoutError as exc:
        print(f"robofail run: error: {exc}", file=sys.stderr)
        return 2
    if bar is not None:
        bar.close()
    print(result.message)
    if result.modes:
        print_modes(result.modes[:15], "empirical")
        print(result.verdict)
    return 0 if result.success else (130 if result.cancelled else 2)


def query_command(args) -> int:
    from ..core.analysis import METHODS
    from ..core.store import RUN_ID, RUN_ID_RULE
    from .bringup import query
    # The service refuses these too; saying so here spares the wait for a search node that may not run.
    if args.method not in METHODS:
        raise RoboFailError(f"--method {args.method!r}: use one of {', '.join(METHODS)}")
    if args.run_id and not RUN_ID.match(args.run_id):
        raise RoboFailError(f"--run-id {args.run_id!r}: {RUN_ID_RULE}")
    _check_timeout(args.timeout)
    try:
        response = query(args.run_id, args.method, args.service, args.timeout)
    except TimeoutError as exc:
        print(f"robofail query: error: {exc}", file=sys.stderr)
        return 2
    modes = [{"name": m.name, "factor": m.factor, "status": m.status, "rank": m.rank or None,
              "probability": m.probability, "ci_low": m.ci_low, "ci_high": m.ci_high, "cs_low": m.cs_low,
              "cs_high": m.cs_high, "trials": m.trials, "failures": m.failures, "sim_errors": m.sim_errors,
              "pi_p_fail": None if math.isnan(m.pi_p_fail) else m.pi_p_fail}
             for m in response.modes]
    data = {"success": response.success, "message": response.message, "method": args.method,
            "entropy": response.entropy, "episodes": response.episodes, "top_modes": list(response.top_modes),
            "top_settled": response.top_settled, "order_settled": response.order_settled, "confidence": response.confidence,
            "threshold": response.threshold, "verdict": response.verdict, "modes": modes}
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(response.message)
        print_modes(response.modes, args.method)
        if response.success:
            print(response.verdict)
            print(f"entropy {response.entropy:.3f} nats over {response.episodes} episodes")
    return 0 if response.success else 1


def print_modes(modes, method: str) -> None:
    """FailureMode messages as a table; an untried mode shows "-", never a bare 0.000."""
    print(f"  {'mode':<20} {'status':<9} {'rank':>4} {'P':>6} {'95% Wilson':>13} {'anytime':>13} {'fails/trials':>12}")
    for m in modes:
        tried = m.trials > 0
        value = f"{m.probability:.3f}" if tried or method == "pi" else "-"
        wilson = f"[{m.ci_low:.2f}, {m.ci_high:.2f}]" if tried else "-"
        anytime = f"[{m.cs_low:.2f}, {m.cs_high:.2f}]" if tried else "-"
        print(f"  {m.name:<20} {m.status:<9} {m.rank or '':>4} {value:>6} {wilson:>13} {anytime:>13} "
              f"{m.failures:>5}/{m.trials:<6}")
