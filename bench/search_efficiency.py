"""Search efficiency: how many episodes each searcher needs to rank the true top-3 failure modes,
how it spreads a small budget, how far its estimates are from the truth, and whether the
anytime-valid bounds cover the truth as often as they claim.

    .venv/bin/python bench/search_efficiency.py [--ground-truth bench/data/ground_truth_lift_bc_rnn_low_dim.csv]
        [--profiles recorded dominant graded close_top3 rare weak] [--repeats 150] [--coverage-runs 500]
        [--processes N] [--json out.json]

Profiles (57 modes each, as many as the Lift catalog; ``--modes N`` gives the synthetic ones N, the added ones at their rest rate):
- ``recorded``: a real ground truth (``robofail evaluate``, every perturbation tried N times),
  committed as a CSV (one row per episode). When a searcher asks for perturbation a it gets one
  of a's recorded real outcomes, drawn with replacement by the episode's seed: real robosuite
  outcomes replayed at no simulation cost. Make a new one with ``--export RUN --to CSV``.
- synthetic: ``dominant`` (one certain mode, two at 0.5 and 0.4, the rest never fail),
  ``graded`` (0.9, 0.75, 0.6, 0.45, ... 0.05, then 0), ``close_top3`` (0.50, 0.47, 0.44, then 0.15
  and below: a clear set, a close order), ``rare`` (every rate below 0.2), ``weak`` (a policy that
  fails 10% of its unperturbed episodes, so every mode fails at least that often: 0.9, 0.7, 0.5,
  0.3, the rest 0.1; the searchers are told the 2 failures in 20 unperturbed episodes a search runs
  first, so a mode fails above 0.2).
- held out (``--profiles`` names them; not in the default run), added after the searchers' last
  change and never tuned on: ``low_top`` (0.4, 0.3, 0.2, then 0), ``two_certain`` (1.0, 1.0, 0.7,
  0.4, then 0), ``many_mid`` (0.8, 0.6, 0.4, ten modes at 0.3, then 0), ``high_base`` (0.95, 0.8,
  0.65, the rest 0.3, and 6 failures in 20 unperturbed episodes: a mode fails above 0.4).
Each repeat lists the modes in an order of its own (seeded), so that no searcher gains from
where a profile puts its failing modes.

Metrics, each over ``--repeats`` seeds:
- reached / median episodes to top-3: the first budget from which the three highest estimates
  ((failures + 0.5) / (trials + 1)) stay the true top-3 to the end of the run, whichever way
  equal estimates are ordered (checked with the listing order and its reverse); modes within the
  truth's uncertainty of the third (overlapping 95% intervals for recorded truth, within 0.06
  for synthetic) may stand in, and pairs may come in either order where the truth cannot tell
  them apart; "never" counts as infinitely many.
- >=6 trials@240: share of repeats in which every mode with true P(fail) >= 0.3 had at least 6
  episodes after 240.
- MAE@b: mean over modes of |estimate - truth| after b episodes (an untried mode counts as 0.5).
- pi MAE top-5: for searchers whose pi has a P(fail) readout (ppo), mean |readout - truth| over
  the five worst true modes at the end.
- ceilings (printed per profile): about what no searcher can beat, whatever its rule. Every mode must be
  tried once before the top-3 is known (the warm-up floor: as many episodes as modes, shown as a
  share of uniform's median). The oracle is told the true top-3 and their order: after the
  warm-up it tries whichever of two modes has fewer episodes, the true top-3 member with the
  lowest estimate or the outsider with the highest, and, once the three lead, the lower-estimated
  pair member whose order the truth contradicts; its median (over 100 runs) is what knowing the answer buys under
  this metric (a searcher cannot know it), and the share of its runs that reach the top-3 within the budget
  says where even that falls short of the >= 95% target (a bound only as good as its rule: it compares one
  outsider at a time, and on a crowd of outsiders just below the third a searcher may do better).
  And at 240 episodes a mode that has not failed yet looks like the
  never-failing ones: if the hard modes (P(fail) >= 0.3) get 6 episodes each and the other
  240 - 6 h are spread evenly over the modes - h look-alikes (k or k + 1 each), a hard mode that
  succeeds its first k (probability (1 - p)^k, or (1 - p)^(k+1) for the share that gets k + 1)
  ends below 6: the ">=6@240 ceiling" is about the product over the hard modes of one minus that
  (an estimate, not a proof: a searcher may split the look-alikes' episodes unevenly; its repeats
  scatter around it by ~0.07 at 20 repeats). Until session 16 it gave every look-alike k + 1.
- coverage: share of ``--coverage-runs`` runs of the default searcher in which every mode's
  anytime-valid bounds held its true rate at every check (each 10 episodes), beside the same for
  per-mode 95% Wilson intervals.
"""
import argparse
import dataclasses
import csv
import io
import json
import multiprocessing
import pathlib
import re
import sys
import time

import numpy as np

from robofail_ros.core.config import load_search_config
from robofail_ros.core.episode import EpisodeOutcome
from robofail_ros.core.perturbations import Catalog, definitions_digest
from robofail_ros.core.scheduler import SynchronousEvaluator
from robofail_ros.core.search import SEARCHERS, SearchContext, make_searcher
from robofail_ros.core.stats import confidence_sequence, wilson_bounds, wilson_interval
from robofail_ros.core.store import RunStore

HERE = pathlib.Path(__file__).resolve().parent
DEFAULT_TRUTH = HERE / "data" / "ground_truth_lift_bc_rnn_low_dim.csv"
MODES = 57
SYNTHETIC = {
    "dominant": [1.0, 0.5, 0.4] + [0.0] * (MODES - 3),
    "graded": [0.9, 0.75, 0.6, 0.45, 0.35, 0.25, 0.2, 0.15, 0.1, 0.05] + [0.0] * (MODES - 10),
    "close_top3": [0.50, 0.47, 0.44, 0.15, 0.1, 0.1, 0.05, 0.05] + [0.0] * (MODES - 8),
    "rare": list(np.round(np.linspace(0.19, 0.0, 20), 3)) + [0.0] * (MODES - 20),
    "weak": [0.9, 0.7, 0.5, 0.3] + [0.1] * (MODES - 4),
}
# Profiles no searcher was tuned on: added after identify's last change and measured as they came
# (BENCHMARKS.md 4); not in the default run.
HELD_OUT = {
    "low_top": [0.4, 0.3, 0.2] + [0.0] * (MODES - 3),
    "two_certain": [1.0, 1.0, 0.7, 0.4] + [0.0] * (MODES - 4),
    "many_mid": [0.8, 0.6, 0.4] + [0.3] * 10 + [0.0] * (MODES - 13),
    "high_base": [0.95, 0.8, 0.65] + [0.3] * (MODES - 3),
}
# (failures, episodes) of the unperturbed episodes a search runs first, where a profile's policy fails without
# a perturbation too (the threshold of "fails" is their rate + the margin); (0, 0) elsewhere. A recorded
# truth's are its own unperturbed episodes.
UNPERTURBED = {"weak": (2, 20), "high_base": (6, 20)}
ORACLE_REPEATS = 100  # the oracle's median scatters widely at 20 repeats (its runs are cheap)
CLEAR_TOP3 = {"recorded", "dominant", "graded", "close_top3", "weak", *HELD_OUT}  # "rare" has no clear top-3
# Every registered searcher (uniform, the baseline, first) and PPO's paper preset: "name[preset]".
SEARCHER_ORDER = ["uniform"] + sorted(set(SEARCHERS) - {"uniform"}) + ["ppo[paper]"]


class RecordedEvaluator(SynchronousEvaluator):
    """Answers episode requests with recorded real outcomes of the same perturbation."""

    def __init__(self, outcomes_by_name: dict[str, list[bool]]):
        self.outcomes = outcomes_by_name

    def reference_image(self):
        return np.full((84, 84, 3), 128, dtype=np.uint8)  # the scene is the same with one perturbation

    def answer(self, requests):
        out = []
        for r in requests:
            recorded = self.outcomes[r.perturbations[0]]
            success = recorded[np.random.default_rng(r.seed).integers(len(recorded))]
            out.append(EpisodeOutcome(r.perturbations, r.seed, bool(success), 0, None, r.episode_id, "recorded"))
        return out


class RateEvaluator(RecordedEvaluator):
    """Answers with a fresh Bernoulli draw at each mode's true rate (by the episode's seed)."""

    def __init__(self, rates: dict[str, float]):
        self.rates = rates

    def answer(self, requests):
        return [EpisodeOutcome(r.perturbations, r.seed, bool(np.random.default_rng(r.seed).random() >= self.rates[r.perturbations[0]]),
                               0, None, r.episode_id, "synthetic") for r in requests]


class InProcessPool:
    """The part of multiprocessing.Pool the bench uses, run in this process (--processes 1)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @staticmethod
    def starmap(function, tasks):
        return [function(*task) for task in tasks]


def worker_pool(processes: int):
    """The benches' pool: ``processes`` spawned worker processes (PPO's torch must not be forked
    mid-flight), or this process alone for 1."""
    return multiprocessing.get_context("spawn").Pool(processes) if processes > 1 else InProcessPool()


# ------------------------------------------------------------------------ ground truth
def export_ground_truth(run, to, command: str) -> None:
    """Writes a run's single-perturbation episodes as the CSV this bench reads."""
    store = RunStore.open(run)
    record = store.record
    rows = [(o.perturbations[0] if o.perturbations else "none", o.seed, int(o.success))
            for o in store.outcomes() if len(o.perturbations) <= 1 and o.sim_error is None]
    store.close()
    buffer = io.StringIO()
    buffer.write(f"# ground truth: one row per recorded episode (simulator errors left out)\n"
                 f"# made with: {command}\n# policy: {record.policy.name} sha256 {record.policy.sha256}\n"
                 f"# catalog: {record.config['task']} {definitions_digest(record.perturbations)}\n"
                 f"# versions: {json.dumps(record.versions, sort_keys=True)}\n")
    writer = csv.writer(buffer)
    writer.writerow(["perturbation", "seed", "success"])
    writer.writerows(rows)
    pathlib.Path(to).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(to).write_text(buffer.getvalue())
    print(f"wrote {len(rows)} episodes to {to}")


def load_ground_truth(path) -> tuple[dict[str, list[bool]], tuple[int, int]]:
    """Each perturbation's recorded successes, and (failures, episodes) of the unperturbed ones: the
    searchers are told those, as a real search is told its unperturbed episodes' (the threshold of
    "fails" is their rate + the margin)."""
    path = pathlib.Path(path)
    truth: dict[str, list[bool]] = {}
    if path.is_dir():  # a run folder
        store = RunStore.open(path)
        for o in store.outcomes():
            if len(o.perturbations) <= 1 and o.sim_error is None:
                truth.setdefault(o.perturbations[0] if o.perturbations else "none", []).append(o.success)
        catalog = (store.record.config["task"], definitions_digest(store.record.perturbations))
        store.close()
    else:
        text = path.read_text()
        lines = [line for line in text.splitlines() if not line.startswith("#")]
        for row in csv.DictReader(lines):
            truth.setdefault(row["perturbation"], []).append(row["success"] == "1")
        catalog = re.search(r"^# catalog: (\S+) ([0-9a-f]+)$", text, re.M)
        catalog = catalog and catalog.groups()
    if catalog and catalog[1] != Catalog.load().for_task(catalog[0]).digest():
        print(f"note: {path} was recorded with other {catalog[0]} perturbation definitions than the default catalog "
              f"holds now (digest {catalog[1]}): if the catalog was edited since, its rates describe the old "
              f"perturbations; make it again with the command in its header", file=sys.stderr)
    unperturbed = truth.pop("none", [])
    if not truth:
        sys.exit(f"{path} holds no single-perturbation episodes; make one with `robofail evaluate` and --export")
    return truth, (unperturbed.count(False), len(unperturbed))


# ---------------------------------------------------------------------------- scoring
def truth_of(profile, recorded, modes=MODES):
    """(rates, intervals, evaluator) of a profile (a synthetic one over ``modes`` modes); intervals
    say how well the truth itself is known."""
    if profile == "recorded":
        rates = {n: 1 - float(np.mean(s)) for n, s in recorded.items()}
        intervals = {n: wilson_interval(int(round(rates[n] * len(s))), len(s)) for n, s in recorded.items()}
        return rates, intervals, RecordedEvaluator(recorded)
    listed_rates = synthetic_rates(profile, modes)
    width = max(2, len(str(len(listed_rates) - 1)))
    rates = {f"mode_{i:0{width}d}": float(r) for i, r in enumerate(listed_rates)}
    return rates, synthetic_intervals(rates), RateEvaluator(rates)


def synthetic_intervals(rates: dict[str, float]) -> dict[str, tuple[float, float]]:
    """A synthetic truth is known exactly; modes within 0.03 of each other count as tied in scoring."""
    return {n: (r - 0.03, r + 0.03) for n, r in rates.items()}


def synthetic_rates(profile, modes=MODES) -> list[float]:
    """A synthetic profile's rates over a catalog of ``modes``: its modes as listed above, then as
    many more of its last rate (the rate of "the rest") as make up the number."""
    rates = {**SYNTHETIC, **HELD_OUT}[profile]
    rest = rates[-1]
    own = len(rates) - next(i for i, r in enumerate(reversed(rates)) if r != rest)
    if modes <= own:
        sys.exit(f"--modes {modes}: the {profile} profile lists {own} modes before its rest at {rest}; give more than {own}")
    return rates[:own] + [rest] * (modes - own)


def top3_wrong(estimate_top, top, rates, intervals) -> str | None:
    """Why an estimated top-3 is wrong, or None when it is right: the same three modes (modes tied
    with the true third may stand in), no pair in an order the truth contradicts beyond its uncertainty."""
    third = top[-1]
    tied = {n for n in rates if intervals[n][1] >= intervals[third][0] and rates[n] <= rates[third]}
    if not set(top[:2]) <= set(estimate_top):
        return "a true top-2 mode out"
    if not set(estimate_top) <= set(top) | tied:
        return "a mode from outside"
    for i in range(3):
        for j in range(i + 1, 3):
            a, b = estimate_top[i], estimate_top[j]
            if intervals[b][0] > intervals[a][1]:
                return "an order the truth contradicts"
    return None


def searcher_hyperparameters(spec, config):
    """(registry name, hyperparameters) of a bench searcher spec: "ppo" or "ppo[paper]"."""
    name, _, preset = spec.partition("[")
    hyperparameters = dict(config.searchers.get(name) or {})
    if preset:
        hyperparameters = {"preset": preset.rstrip("]")}
    return name, hyperparameters


def run_one(spec, evaluator, names, budget, seed, config, goal, on_outcomes=None, unperturbed=(0, 0)):
    name, hyperparameters = searcher_hyperparameters(spec, config)
    searcher = make_searcher(name, names, seed, hyperparameters, goal)
    history = []

    def record(outcomes):
        history.extend(outcomes)
        if on_outcomes:
            on_outcomes(history)
    ctx = SearchContext(evaluator, budget, seed, 1, evaluator.reference_image(), record, baseline=unperturbed)
    searcher.search(ctx)
    readout = searcher.pi_p_fail()
    searcher.close()
    return history, readout, ctx.stop_reason


def estimated_top3s(names, trials, failures) -> list[list[str]]:
    """The three highest estimates, ranked with the listing order and with its reverse as the
    last key: a top-3 counts as right only if both are (with one order alone, the profiles that
    list their failing modes first would credit a searcher for their tie with never-failing ones)."""
    estimate = (failures + 0.5) / (trials + 1)
    positions = np.arange(len(names))
    return [[names[j] for j in np.lexsort((tiebreak, -trials, -estimate))[:3]] for tiebreak in (positions, -positions)]


def score(names, history, rates, intervals, budgets):
    top = sorted(rates, key=lambda n: -rates[n])[:3]
    index = {n: i for i, n in enumerate(names)}
    trials, failures = np.zeros(len(names)), np.zeros(len(names))
    truth = np.array([rates[n] for n in names])
    correct_since, mae, enough = None, {}, None
    hard = truth >= 0.3
    for k, o in enumerate(history, start=1):
        i = index[o.perturbations[0]]
        trials[i] += 1
        failures[i] += not o.success
        if not any(top3_wrong(estimate_top, top, rates, intervals) for estimate_top in estimated_top3s(names, trials, failures)):
            correct_since = correct_since or k
        else:
            correct_since = None
        if k in budgets:
            mae[k] = float(np.mean(np.abs((failures + 0.5) / (trials + 1) - truth)))
        if k == 240:
            enough = bool((trials[hard] >= 6).all())
    return correct_since, mae, enough


def listed(names, seed):
    """The modes in an order of the repeat's own: no searcher gains from how a profile lists them
    (the synthetic ones list their failing modes first, and ties broken by position would favour
    them). Its own seed stream, apart from the searcher's."""
    return [names[i] for i in np.random.default_rng([seed, 1]).permutation(len(names))]


def repeat_once(spec, evaluator, names, rates, intervals, budgets, seed, config, unperturbed=(0, 0)):
    """One repeat of one searcher on one profile: (episodes to the top-3 or None, MAE by budget,
    >=6@240, episodes if it stopped early, pi readout error over the true top-5 or None)."""
    names = listed(names, seed)
    history, readout, stop = run_one(spec, evaluator, names, max(budgets), seed, config, config.goal,
                                     unperturbed=unperturbed)
    since, mae, at240 = score(names, history, rates, intervals, set(budgets))
    top5 = sorted(rates, key=lambda n: -rates[n])[:5]
    readout_err = None if readout is None else float(np.mean([abs(readout[n] - rates[n]) for n in top5]))
    return since, mae, at240, len(history) if stop else None, readout_err


def coverage_once(rates, budget, config, searcher, seed):
    """Whether one run's bounds held every true rate at every check: (anytime-valid, Wilson)."""
    names = list(rates)
    truth = np.array([rates[n] for n in names])
    index = {n: i for i, n in enumerate(names)}
    goal = config.goal
    ok = {"cs": True, "wilson": True}

    def check(history):
        if len(history) % 10:
            return
        trials, failures = np.zeros(len(names)), np.zeros(len(names))
        for o in history:
            trials[index[o.perturbations[0]]] += 1
            failures[index[o.perturbations[0]]] += not o.success
        low, high = confidence_sequence(failures, trials, goal.confidence, len(names) + 1)
        ok["cs"] &= bool(((low <= truth) & (truth <= high)).all())
        low, high = wilson_bounds(failures, trials, goal.confidence)
        ok["wilson"] &= bool(((low <= truth) & (truth <= high)).all())
    run_one(searcher, RateEvaluator(rates), names, budget, 10_000 + seed, config, goal, check)
    return ok["cs"], ok["wilson"]


def coverage(rates, runs, budget, config, searcher, pool):
    """Shares of runs whose bounds held every true rate at every check: (anytime-valid, Wilson)."""
    held = pool.starmap(coverage_once, [(rates, budget, config, searcher, seed) for seed in range(runs)])
    return float(np.mean([cs for cs, _ in held])), float(np.mean([w for _, w in held]))


def oracle_history(evaluator, names, rates, intervals, budget, seed):
    """Episodes of the oracle of the module docstring: it knows the true top-3 and their order."""
    from robofail_ros.core.search.base import EpisodeRequest, episode_seed
    top = [names.index(n) for n in sorted(rates, key=lambda n: -rates[n])[:3]]
    outsiders = np.array([i for i in range(len(names)) if i not in top])
    trials, failures = np.zeros(len(names)), np.zeros(len(names))
    warm_up = list(np.random.default_rng(seed).permutation(len(names)))
    history = []
    for k in range(budget):
        if warm_up:
            i = warm_up.pop()
        else:
            estimate = (failures + 0.5) / (trials + 1)
            weakest = top[int(np.argmin(estimate[top]))]
            rival = outsiders[np.lexsort((-trials[outsiders], -estimate[outsiders]))[0]]
            i = rival if trials[rival] <= trials[weakest] else weakest
            if estimate[rival] < estimate[weakest]:  # the three lead: put them in the truth's order
                for a, b in zip(top, top[1:]):
                    if estimate[b] >= estimate[a] and intervals[names[a]][0] > intervals[names[b]][1]:
                        i = a if trials[a] <= trials[b] else b
                        break
        (outcome,) = evaluator.evaluate([EpisodeRequest(k, (names[i],), episode_seed(seed, k))])
        trials[i] += 1
        failures[i] += not outcome.success
        history.append(outcome)
    return history


def oracle_episodes_to_top3(evaluator, names, rates, intervals, budget, seed) -> float:
    history = oracle_history(evaluator, names, rates, intervals, budget, seed)
    return score(names, history, rates, intervals, set())[0] or np.inf


def ceilings(rates, budget=240, trials=6, hard=0.3):
    """(warm-up floor in episodes, ceiling of the >=6@240 share): see the module docstring."""
    p = np.array([r for r in rates.values() if r >= hard])
    if trials * len(p) > budget:  # the hard modes alone need more episodes than there are
        return len(rates), 0.0
    look_alikes = len(rates) - len(p)
    if not look_alikes:
        return len(rates), 1.0
    each, extra = divmod(budget - trials * len(p), look_alikes)  # `extra` of them get one episode more
    if each >= trials:
        return len(rates), 1.0
    short = (1 - extra / look_alikes) * (1 - p) ** each + extra / look_alikes * (1 - p) ** (each + 1)
    return len(rates), float(np.prod(1 - short))


def _share(flags):
    return float(np.mean(flags)) if flags else None


def _finite(x):
    return float(x) if np.isfinite(x) else None


def bench_profile(profile, recorded, args, config, pool):
    rates, intervals, evaluator = truth_of(profile, recorded and recorded[0], args.modes)
    names = sorted(rates)
    budget = max(args.budgets)
    top = sorted(rates, key=lambda n: -rates[n])
    floor, ceiling = ceilings(rates)
    oracle_hits = [oracle_episodes_to_top3(evaluator, listed(names, seed), rates, intervals, budget, seed)
                   for seed in range(ORACLE_REPEATS)]
    oracle, oracle_reached = _finite(np.median(oracle_hits)), int(np.isfinite(oracle_hits).sum())
    unperturbed = recorded[1] if profile == "recorded" else UNPERTURBED.get(profile, (0, 0))
    print(f"\n## {profile}: {len(rates)} modes; true top-5: " + ", ".join(f"{n} {rates[n]:.2f}" for n in top[:5])
          + (f"; unperturbed: {unperturbed[0]} of {unperturbed[1]} episodes fail" if unperturbed[1] else ""))
    rows = []
    for name in args.searchers:
        start = time.perf_counter()
        repeats = min(args.repeats, args.ppo_repeats) if name.startswith("ppo") else args.repeats
        results = pool.starmap(repeat_once, [(name, evaluator, names, rates, intervals, args.budgets, repeat, config,
                                              unperturbed)
                                             for repeat in range(repeats)])
        hits, maes_by_repeat, enough, stops, errors = map(list, zip(*results))
        maes = {b: [mae.get(b, np.nan) for mae in maes_by_repeat] for b in args.budgets}
        readout_err = [err for err in errors if err is not None]
        reached = [h for h in hits if h is not None]
        rows.append({"searcher": name, "reached": len(reached), "repeats": repeats,
                     "median_episodes_to_top3": _finite(np.median([h or np.inf for h in hits])),
                     "episodes_to_top3": hits, "mae": {b: float(np.nanmean(v)) for b, v in maes.items()},
                     "enough_trials_at_240": _share([e for e in enough if e is not None]),
                     "stopped_early": [s for s in stops if s], "pi_readout_mae_top5": float(np.mean(readout_err)) if readout_err else None,
                     "seconds": round(time.perf_counter() - start, 1)})
    uniform = next((r["median_episodes_to_top3"] for r in rows if r["searcher"] == "uniform"), None)
    def of_uniform(episodes):
        return f"{episodes / uniform:.2f} of uniform's median" if uniform and episodes else "-"
    print(f"ceilings: warm-up floor {floor} episodes ({of_uniform(floor)}); oracle median {oracle or f'>{budget}'} "
          f"episodes ({of_uniform(oracle)}), top-3 reached in {oracle_reached}/{ORACLE_REPEATS}; "
          f">=6@240 at most {ceiling:.2f}")
    print(f"{'searcher':<14} {'top-3 reached':>13} {'median episodes':>16} {'vs uniform':>10} {'>=6 trials@240':>14} "
          + " ".join(f"{'MAE@' + str(b):>9}" for b in args.budgets) + f" {'pi MAE top-5':>12} {'stopped early':>13} {'seconds':>8}")
    for r in rows:
        med = r["median_episodes_to_top3"]
        r["ratio_to_uniform"] = med / uniform if med and uniform else None
        ratio = f"{r['ratio_to_uniform']:.2f}" if r["ratio_to_uniform"] else "-"
        e = "-" if r["enough_trials_at_240"] is None else f"{r['enough_trials_at_240']:.2f}"
        pm = "-" if r["pi_readout_mae_top5"] is None else f"{r['pi_readout_mae_top5']:.3f}"
        stopped = f"{len(r['stopped_early'])}/{r['repeats']}"
        print(f"{r['searcher']:<14} {r['reached']:>6}/{r['repeats']:<6} {med if med else f'>{budget}':>16} {ratio:>10} {e:>14} "
              + " ".join(f"{r['mae'][b]:>9.3f}" for b in args.budgets) + f" {pm:>12} {stopped:>13} {r['seconds']:>8}")
    return {"profile": profile, "true_rates": rates, "unperturbed": unperturbed, "clear_top3": profile in CLEAR_TOP3, "rows": rows,
            "warm_up_floor": floor, "oracle_median_episodes_to_top3": oracle,
            "oracle_reached": oracle_reached, "oracle_repeats": ORACLE_REPEATS, "enough_trials_at_240_ceiling": ceiling}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ground-truth", default=str(DEFAULT_TRUTH), help="a ground-truth CSV or a `robofail evaluate` run")
    parser.add_argument("--profiles", nargs="+", default=["recorded", *SYNTHETIC], choices=["recorded", *SYNTHETIC, *HELD_OUT])
    parser.add_argument("--modes", type=int, default=MODES,
                        help=f"catalog size of the synthetic profiles (default {MODES}; more: more modes at their rest rate)")
    parser.add_argument("--budgets", type=int, nargs="+", default=[100, 240, 1000])
    parser.add_argument("--repeats", type=int, default=150,
                        help="fewer move the medians by up to 30%% and gave optimistic reached counts (20/20 that were 46-47/50)")
    parser.add_argument("--ppo-repeats", type=int, default=20, help="PPO is slower: at most this many repeats")
    parser.add_argument("--searchers", nargs="+", default=SEARCHER_ORDER, help=f"default: {' '.join(SEARCHER_ORDER)}")
    parser.add_argument("--coverage-runs", type=int, default=500, help="0: skip the coverage check")
    parser.add_argument("--coverage-budget", type=int, default=300)
    parser.add_argument("--config", default=None, help="search config (default: config/search.yaml)")
    parser.add_argument("--export", metavar="RUN", help="write RUN's episodes as a ground-truth CSV (with --to) and exit")
    parser.add_argument("--to", help="the CSV --export writes")
    parser.add_argument("--command", default="", help="with --export: the command that made RUN (recorded in the CSV)")
    parser.add_argument("--processes", type=int, default=1,
                        help="repeats run side by side in this many processes (the numbers do not change: every repeat is seeded)")
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.processes < 1:
        parser.error(f"--processes must be >= 1, got {args.processes}")
    if args.export:
        export_ground_truth(args.export, args.to or DEFAULT_TRUTH, args.command)
        return
    config = load_search_config(args.config) if args.config else load_search_config()
    recorded = load_ground_truth(args.ground_truth) if "recorded" in args.profiles else None
    print(f"default searcher {config.searcher}; goal {config.goal}; ground truth {args.ground_truth}")
    with worker_pool(args.processes) as pool:
        results = [bench_profile(p, recorded, args, config, pool) for p in args.profiles]
        cover = None
        if args.coverage_runs:
            start = time.perf_counter()
            cs, wilson = coverage(dict(zip([f"mode_{i:02d}" for i in range(MODES)], SYNTHETIC["graded"])), args.coverage_runs,
                                  args.coverage_budget, config, config.searcher, pool)
            cover = {"runs": args.coverage_runs, "budget": args.coverage_budget, "profile": "graded",
                     "searcher": config.searcher, "nominal": config.goal.confidence, "anytime_valid": cs,
                     "wilson_per_mode": wilson, "seconds": round(time.perf_counter() - start, 1)}
            print(f"\ncoverage over {args.coverage_runs} runs of {config.searcher} (graded profile, {args.coverage_budget} "
                  f"episodes, checked every 10): anytime-valid bounds held every mode's truth throughout in {cs:.3f} of runs "
                  f"(nominal {config.goal.confidence}); per-mode 95% Wilson intervals in {wilson:.3f}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"ground_truth": str(args.ground_truth), "goal": dataclasses.asdict(config.goal),
                                                       "profiles": results, "coverage": cover}, indent=2))


if __name__ == "__main__":
    main()
