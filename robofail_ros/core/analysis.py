"""Failure-mode analysis: the paper's pi(a|o) and the calibrated empirical failure rates.

- ``pi``: the searcher's distribution over perturbations (for PPO, the softmax of its policy
  logits, Eq. 5-8 of the paper). A search preference, not a failure probability: a policy
  that never fails still gets a near-uniform pi.
- ``p_fail``: failures / trials under each perturbation, with a 95% Wilson score interval (a
  per-mode description) and the anytime-valid bounds ``cs_low``/``cs_high`` (simultaneous over
  every mode; see stats.py) that the ``status`` (fails / safe / undecided / untried) and the
  ``rank`` of the top-k rest on. Simulator errors are counted apart and are neither trials'
  successes nor failures.
- ``severity``: (p_fail - p_fail_nominal) / (1 - p_fail_nominal), clipped at 0: the share of
  the policy's unperturbed successes that the perturbation turns into failures.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Iterable, Sequence

import numpy as np

from .stats import FAILS, MAX_THRESHOLD, SAFE, UNDECIDED, UNTRIED, Goal, assess, episodes_to_show_safe, wilson_interval

NOMINAL = "none"  # the name under which unperturbed episodes are reported
METHODS = ("empirical", "pi")  # what the failure-probability service and `robofail query` read out
COMPOSITE = " + "  # joins the perturbations of a composite mode


@dataclasses.dataclass(frozen=True)
class FailureMode:
    name: str
    label: str
    factor: str
    trials: int  # episodes with a policy outcome (simulator errors excluded)
    failures: int
    sim_errors: int
    p_fail: float  # nan when there are no trials
    ci_low: float  # 95% Wilson interval (descriptive, per mode)
    ci_high: float
    pi: float | None  # the searcher's preference, when it has one
    severity: float
    status: str  # fails, safe, undecided or untried (from the anytime-valid bounds); "baseline" for none
    cs_low: float  # anytime-valid bounds, simultaneous over every mode at the goal's confidence
    cs_high: float
    rank: int | None  # 1..top_k for the top-k failing modes, worst first
    pi_p_fail: float | None = None  # P(fail) read from pi, for searchers whose pi has that meaning (ppo)


def entropy(p: Sequence[float]) -> float:
    """Shannon entropy in nats of a distribution (normalised first; zeros ignored)."""
    p = np.asarray(p, dtype=float)
    if p.sum() <= 0:
        return 0.0
    p = p / p.sum()
    nz = p[p > 0]
    return max(0.0, float(-(nz * np.log(nz)).sum()))  # max: no "-0.000" for a one-mode distribution


@dataclasses.dataclass(frozen=True)
class CompositeMode:
    """Several perturbations applied together (PPO's sequential setting), e.g. "red_table + dim_light"."""
    name: str
    trials: int
    failures: int
    sim_errors: int
    p_fail: float
    ci_low: float  # 95% Wilson interval
    ci_high: float


@dataclasses.dataclass(frozen=True)
class FailureTable:
    """The failure modes of a run, ranked, with what the anytime-valid bounds decide."""
    modes: list[FailureMode]
    goal: Goal
    threshold: float  # a mode fails above this failure rate (unperturbed rate + margin)
    top: list[str]  # the top-k failing modes, worst first
    top_settled: bool  # at the goal's confidence, these fail more often than every other mode
    classes: dict  # how many modes are in each status
    composites: list[CompositeMode] = dataclasses.field(default_factory=list)
    # Neighbours in the top whose order is not settled yet; None in a run recorded before orders were.
    unordered: list[tuple[str, str]] | None = dataclasses.field(default_factory=list)
    # Failing modes outside the top with the last member's estimate (none in a run recorded before ties were).
    tied: list[str] = dataclasses.field(default_factory=list)

    @property
    def order_settled(self) -> bool:
        return self.unordered == []

    def to_dict(self) -> dict:
        return {"modes": [dataclasses.asdict(m) for m in self.modes], "goal": dataclasses.asdict(self.goal),
                "threshold": self.threshold, "top": self.top, "top_settled": self.top_settled,
                "classes": self.classes, "composites": [dataclasses.asdict(m) for m in self.composites],
                "unordered": self.unordered, "tied": self.tied}

    @classmethod
    def from_dict(cls, d: dict) -> "FailureTable":
        return cls([FailureMode(**m) for m in d["modes"]], Goal(**d["goal"]), d["threshold"], list(d["top"]),
                   d["top_settled"], dict(d["classes"]), [CompositeMode(**m) for m in d.get("composites", [])],
                   None if d.get("unordered") is None else [tuple(pair) for pair in d["unordered"]],
                   list(d.get("tied", [])))

    def mode(self, name: str) -> FailureMode | None:
        return next((m for m in self.modes if m.name == name), None)

    @property
    def perturbed(self) -> list[FailureMode]:
        """The modes of perturbations (not the unperturbed baseline), worst first."""
        return [m for m in self.modes if m.name != NOMINAL]

    @property
    def worst(self) -> FailureMode | None:
        """The perturbed mode with the highest failure rate so far; None until one has failed (a
        mode that only succeeded is no one's worst, whatever the order of the ties at 0)."""
        return next((m for m in self.perturbed if m.failures), None)


@dataclasses.dataclass
class RunResult:
    """What a search found: its failure table and the counts and facts of the run behind it.
    ``to_dict()`` is the run's summary.json; ``from_dict()`` reads it back."""
    run: str  # the run folder
    table: FailureTable
    episodes: int
    failures: int  # policy failures (simulator errors are not failures)
    sim_errors: int
    pi_entropy: float | None  # of the searcher's pi, in nats (the paper's number)
    p_fail_entropy: float | None  # of the normalised failure rates, in nats
    search_seconds: float | None = None
    stop_reason: str | None = None  # why the searcher stopped before the budget, if it did
    cancelled: bool = False  # stopped on request: unfinished, resumable
    report: str | None = None  # the report's index.html, once written

    def to_dict(self) -> dict:
        d = {"run": self.run, **self.table.to_dict()}
        d.update({f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("run", "table")})
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunResult":
        extra = {f.name: d[f.name] for f in dataclasses.fields(cls) if f.name not in ("run", "table") and f.name in d}
        return cls(run=d["run"], table=FailureTable.from_dict(d), **extra)


@dataclasses.dataclass
class _Tally:
    """The episodes of one mode: counted ones (trials, of which failures) and simulator errors."""
    trials: int = 0
    failures: int = 0
    sim_errors: int = 0

    @property
    def p_fail(self) -> float:
        return self.failures / self.trials if self.trials else math.nan

    def add(self, outcome) -> None:
        if outcome.sim_error:
            self.sim_errors += 1
        else:
            self.trials += 1
            self.failures += not outcome.success


def failure_table(outcomes: Iterable, catalog, pi: dict | None = None, goal: Goal = Goal(),
                  pi_p_fail: dict | None = None) -> FailureTable:
    """Per-perturbation statistics, ranked: highest failure rate first (ties: more trials first, then the top-k in rank order).

    A mode counts the episodes with exactly its perturbation; episodes with several (PPO's
    sequential setting) are composite modes, counted apart; unperturbed episodes are ``none``.
    """
    tallies: dict[str, _Tally] = {}
    for o in outcomes:
        tallies.setdefault(COMPOSITE.join(sorted(o.perturbations)) if o.perturbations else NOMINAL, _Tally()).add(o)
    empty = _Tally()
    nominal = tallies.get(NOMINAL, empty)
    p_nominal = nominal.p_fail if nominal.trials else 0.0
    names = [p.name for p in catalog]
    counts = [tallies.get(n, empty) for n in names]
    verdict = assess(np.array([c.failures for c in counts]), np.array([c.trials for c in counts]), goal,
                     nominal.failures, nominal.trials)
    # A mode whose every episode broke the simulator was tried: nothing is known of it, not "untried".
    status = tuple(UNDECIDED if s == UNTRIED and c.sim_errors else s for s, c in zip(verdict.status, counts))
    ranks = {verdict.top[r]: r + 1 for r in range(len(verdict.top)) if verdict.status[verdict.top[r]] == FAILS}
    modes = []
    if NOMINAL in tallies:
        low, high = wilson_interval(nominal.failures, nominal.trials)
        modes.append(FailureMode(NOMINAL, "No perturbation", NOMINAL, nominal.trials, nominal.failures,
                                 nominal.sim_errors, nominal.p_fail, low, high, None, 0.0, "baseline", low, high, None))
    for i, (name, c) in enumerate(zip(names, counts)):
        low, high = wilson_interval(c.failures, c.trials)
        severity = (max(0.0, (c.p_fail - p_nominal) / (1 - p_nominal)) if c.trials and p_nominal < 1 else 0.0)
        entry = catalog[name]
        modes.append(FailureMode(name, entry.label, entry.factor_name, c.trials, c.failures, c.sim_errors, c.p_fail,
                                 low, high, None if pi is None else float(pi.get(name, 0.0)), severity, status[i],
                                 float(verdict.low[i]), float(verdict.high[i]), ranks.get(i),
                                 None if pi_p_fail is None else float(pi_p_fail[name])))
    # Worst first; among equals the ranked ones in rank order (a tie at the top-k's edge is ranked in
    # the catalog's order, and rank 2 must not be listed above rank 1).
    modes.sort(key=lambda m: (-(m.p_fail if m.trials else -1), -m.trials, m.rank or len(ranks) + 1, m.name))
    composites = []
    for name in sorted(n for n in tallies if COMPOSITE in n):
        c = tallies[name]
        low, high = wilson_interval(c.failures, c.trials)
        composites.append(CompositeMode(name, c.trials, c.failures, c.sim_errors, c.p_fail, low, high))
    composites.sort(key=lambda m: (-(m.p_fail if m.trials else -1), -m.trials, m.name))
    return FailureTable(modes, goal, float(verdict.threshold), [names[i] for i in ranks],
                        bool(verdict.top_settled), {c: status.count(c) for c in (FAILS, SAFE, UNDECIDED, UNTRIED)},
                        composites, [(names[a], names[b]) for a, b in verdict.unordered], [names[i] for i in verdict.tied])


def run_result(run: str, table: FailureTable, outcomes: Sequence) -> RunResult:
    """A run's result: its table, the entropies of its failure modes, the counts of its episodes."""
    pi = [m.pi for m in table.perturbed if m.pi is not None]
    rates = [m.p_fail for m in table.perturbed if m.trials]
    return RunResult(run, table, episodes=len(outcomes), failures=sum(o.failure for o in outcomes),
                     sim_errors=sum(bool(o.sim_error) for o in outcomes),
                     pi_entropy=entropy(pi) if pi else None, p_fail_entropy=entropy(rates) if rates else None)


def format_table(result: RunResult) -> str:
    """The failure-mode table of a run result, as printed at the end of a search."""
    table = result.table
    level = f"{table.goal.confidence:.0%}"
    has_readout = any(m.pi_p_fail is not None for m in table.modes)
    lines = [f"{'failure mode':<20} {'factor':<18} {'status':<9} {'rank':>4} {'P(fail)':>7} {'95% Wilson':>13} "
             f"{'anytime ' + level:>13} {'trials':>6} {'fails':>5} {'sim err':>7} {'severity':>8} {'pi':>6}"
             + (f" {'P(fail) from pi':>15}" if has_readout else "")]
    for m in table.modes:
        tried = m.trials > 0
        p = f"{m.p_fail:.3f}" if tried else "-"
        wilson = f"[{m.ci_low:.2f}, {m.ci_high:.2f}]" if tried else "-"
        anytime = f"[{m.cs_low:.2f}, {m.cs_high:.2f}]" if tried and m.name != NOMINAL else "-"
        severity = f"{m.severity:.2f}" if tried else "-"
        pi = "" if m.pi is None else f"{m.pi:.3f}"
        line = (f"{m.name:<20} {m.factor:<18} {m.status:<9} {m.rank or '':>4} {p:>7} {wilson:>13} "
                f"{anytime:>13} {m.trials:>6} {m.failures:>5} {m.sim_errors:>7} {severity:>8} {pi:>6}")
        if has_readout:
            line += f" {'' if m.pi_p_fail is None else format(m.pi_p_fail, '.3f'):>15}"
        lines.append(line)
    if table.composites:
        lines.append("composite failure modes (perturbations applied together):")
        for m in table.composites:
            p = f"{m.p_fail:.3f}" if m.trials else "-"
            lines.append(f"  {m.name:<45} P(fail) {p:>6} [{m.ci_low:.2f}, {m.ci_high:.2f}] "
                         f"{m.failures}/{m.trials} ({m.sim_errors} sim err)")
    lines.append(verdict_text(table))
    pe = result.pi_entropy
    lines.append(f"{counted(result.episodes, 'episode')}, {counted(result.failures, 'policy failure')}, "
                 f"{counted(result.sim_errors, 'simulator error')}; entropy of pi: {'-' if pe is None else f'{pe:.3f}'} "
                 f"nats; run folder: {result.run}")
    if result.stop_reason:
        lines.append(f"stopped before the budget: {result.stop_reason}")
    elif (not result.cancelled and table.threshold < MAX_THRESHOLD  # else no episode count could settle anything
          and (not table.top_settled or any(m.status in (UNDECIDED, UNTRIED) for m in table.perturbed))):
        nominal = table.mode(NOMINAL)
        searched = result.episodes - (nominal.trials + nominal.sim_errors if nominal else 0)
        lines.append(f"to settle more, give it more episodes: robofail search --extend {result.run} --budget "
                     f"{2 * searched} (twice this run's; a new run that starts from this one's episodes, and this one "
                     "stays as it is)")
    if result.report:
        lines.append(f"report: {result.report}")
    return "\n".join(lines)


def counted(n: int, noun: str) -> str:
    """'1 episode', '3 episodes'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def verdict_text(table: FailureTable) -> str:
    """What the anytime-valid bounds decided, in words (the table's footer, the service's verdict),
    and which modes the simulator could not run often enough to know."""
    text = _decisions_text(table)
    broken = [m for m in table.perturbed if m.sim_errors > m.trials]
    if broken:
        text += ("\nsimulator errors outnumber the counted episodes of "
                 + ", ".join(f"{m.name} ({m.sim_errors} of {m.sim_errors + m.trials})" for m in broken)
                 + ": the simulation breaks down under these perturbations, so how often the policy fails there is "
                 "not known; check their magnitudes")
    return text


def _decisions_text(table: FailureTable) -> str:
    goal, classes = table.goal, table.classes
    counts = ", ".join(f"{classes[c]} {c}" for c in (FAILS, SAFE, UNDECIDED, UNTRIED) if classes.get(c))
    nominal = table.mode(NOMINAL)
    # The counts say how firmly the baseline is known: the guarantee takes it as measured (README).
    base = (f"unperturbed rate {nominal.p_fail:.2f}, {nominal.failures} of {nominal.trials} episodes, + margin "
            f"{goal.margin:.2f}" if nominal and nominal.trials else
            f"margin {goal.margin:.2f} over an unperturbed rate taken as 0: no unperturbed episode was counted, so a "
            f"policy that fails unperturbed too is blamed on the perturbations; set nominal_episodes to measure it")
    head = f"a mode fails above P(fail) {table.threshold:.2f} ({base}); modes: {counts or 'none'}"
    # Why most modes are undecided after a usual budget, and what deciding them would cost.
    quiet = [m.trials for m in table.perturbed if m.status == UNDECIDED and m.trials and not m.failures]
    if quiet and table.threshold < MAX_THRESHOLD:
        needed = episodes_to_show_safe(table.threshold, goal.confidence, len(table.perturbed) + 1)
        spread = f"{min(quiet)}" if min(quiet) == max(quiet) else f"{min(quiet)}-{max(quiet)}"
        which = "the" if len(quiet) == classes[UNDECIDED] else f"{len(quiet)} of the"
        cost = (f"showing a mode safe takes {needed} episodes without a failure" if needed else
                "no mode can be shown safe at a threshold of 0: raise the margin")
        head += (f"; {which} {classes[UNDECIDED]} undecided have not failed in their {spread} "
                 f"episode{'' if max(quiet) == 1 else 's'} ({cost})")
    if table.threshold >= MAX_THRESHOLD:
        return head + ("; the policy fails unperturbed about as often as any mode could, so no perturbation can be "
                       "shown to fail more often: check the policy, the task and the horizon first")
    if not table.top:
        return head + "; no mode is known to fail yet" if classes.get(UNDECIDED) or classes.get(UNTRIED) \
            else head + "; no mode fails"
    top = ", ".join(table.top)
    if table.top_settled:
        sure = (f"with {goal.confidence:.0%} confidence, anytime-valid over every mode, they fail more often than "
                f"every other mode")
        head += f"\ntop-{len(table.top)} failing modes: {top}: "
        if table.order_settled and len(table.top) > 1:
            return head + f"settled in this order ({sure}, and each more often than the next, to within {goal.tolerance:.2f})"
        if not table.unordered:  # one mode, or a run recorded before orders were
            return head + f"settled ({sure}, to within {goal.tolerance:.2f})"
        return (head + f"settled as a set ({sure}, to within {goal.tolerance:.2f}); their order is not settled yet: "
                + ", ".join(f"{a} vs {b}" for a, b in table.unordered))
    head += f"\ntop-{goal.top_k} failing modes so far: {top}: not settled"
    if table.tied:
        # Every member at the edge's rate ties with the outsiders there, not only the last one.
        rate = table.mode(table.top[-1]).p_fail
        members = [n for n in table.top if table.mode(n).p_fail == rate]
        return head + (f" ({', '.join(members)} tie{'s' * (len(members) == 1)} with {', '.join(table.tied)}: each fails, "
                       f"at {rate:.2f} so far; modes that fail equally often have no order to find)")
    return head + " (more episodes would be needed to be sure)"
