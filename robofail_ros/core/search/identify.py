"""The default searcher: identify every failing mode, rank the worst ones, estimate them, and
stop spending episodes on what is already settled.

Every decision rests on the anytime-valid bounds of stats.py (valid under this adaptive
sampling, simultaneously over every mode). Each episode goes to one of three jobs, in the
proportions of their shares among the jobs that have work left:

1. **Classify** (good-arm identification, HDoC: Kano et al., 2019, "Good arm identification via
   bandit feedback"): among undecided modes, the one with the highest optimistic estimate (Wilson
   upper bound at the goal's confidence). Failing modes are confirmed first, in order of how bad
   they may be; modes that keep succeeding drift to the back together. Chosen over APT-style
   thresholding (Locatelli et al., 2016), which spends most of a small budget on modes whose rate
   is near the threshold, i.e. on the many never-failing ones, before it confirms the failing ones.
   A mode that has not failed in ``discover_trials`` episodes waits while ranking or tightening
   have work: proving it safe takes ~95 episodes (57 modes, margin 0.1), so those episodes would
   buy no decision within a usual budget. It waits only so long (**revisiting**, below).
2. **Rank** (LUCB, Kalyanakrishnan et al., 2012, on the anytime-valid bounds as in KL-LUCB,
   Kaufmann & Kalyanakrishnan, 2013), while the top-k are not known, extended from the set to
   its order: of the pairs not settled yet, the one whose anytime-valid bounds overlap most,
   either the two modes that decide which are the top-k (the member with the lowest lower bound,
   the best outsider by upper bound) or two neighbours in the top-k; of that pair, the mode with
   the wider bounds. Equal estimates at 0 or 1 inside the top-k have no order to find: three
   certain modes took 40 of 240 episodes each proving their tie. A tie at 1 across the top-k's
   edge decides which modes are the top-k, though: it is sampled until an equivalence test at
   the goal's confidence finds the two within the tolerance (``_tied``: ~33 episodes each, by
   which a 0.9 mode has shown a success in 97% of runs), and no further (chased with no stop, five
   certain modes for a top-3 had taken 33 of the first 300 episodes each, leaving never-failing
   modes at 4; now 24-28 each, and 5). On Push BC's recorded truth, where modes failing 90%
   of the time sat at 13 of 13 level with two certain ones while mid modes took the tightening,
   the top-3 came in 149 of 150 repeats instead of 118. Of the outsiders at 1, one not known to
   fail yet is taken first: otherwise, of a brittle policy's 30 certain modes, four leapfrogged each
   other through the top-k to 13 episodes, and 22 were left unclassified at 240. (A member not known to
   fail, at 0 of n, is no such tie with the modes waiting at 0 of 4: they are sampled.) Ordering
   while the set is open matters: a run that stops at its budget reports an order, settled or not.
3. **Tighten**: the failing mode with the widest bounds, until every failing mode's bounds are
   narrower than ``target_width`` (a confirmed failing mode still needs a usable estimate), and
   once the top-k are known, the members whose order is not settled yet.

**Breadth first**: while some mode still waits for its first ``discover_trials`` episodes without
a failure, ranking and tightening take no mode past ``breadth_cap`` times the episodes of the
least-tried of them, and classification none past ``breadth_cap`` times ``discover_trials``. A
failing mode that has not failed yet cannot be told from the never-failing ones, so until they
have all been looked at, no mode may run far ahead of them. Without the cap, after 100 episodes a
certain mode had 6-14 while 30 never-failing modes had 2 each, and on the recorded Lift truth a
0.40 or a 0.47 mode was left below 6 episodes at 240 in half of the runs. Classification's cap is
fixed, not relative: it must confirm the modes that fail from their first episodes on (held to
twice the least-tried mode, 2-4 episodes early on, the top-3 came ~35% later on the recorded
truth), and without it confirming the 0.3-0.6 modes took the episodes that would have given the
waiting ones their fourth (BENCHMARKS.md 4 measures both caps). Ranking or tightening held back by
the cap spends its share on lifting it: the least-tried waiting modes get those episodes. They had
gone to classification, which confirms the modes that may be worst first: on Push BC's recorded
truth, with eight modes at 0.35-0.65, one run left 45 modes at 1 episode from episode 60 to 160
while classification took every episode, and ranking got 8 of the first 300 (the top-3 came at a
median of 320 episodes over 150 runs, now 274; on Stack BC's truth at 456, now 310).

**Revisiting** (forced exploration, as in the D-tracking of Garivier & Kaufmann, 2016, "Optimal
best arm identification with fixed confidence", which keeps every arm above ~sqrt(t) samples): a
mode that has not failed is classified again while it has fewer than sqrt(discover_trials * t / K)
episodes, t the search's episodes so far and K the modes: discover_trials once every mode has had
that many, twice that after four times as many episodes. A failing mode that has not failed yet
is then found however long the top modes take to rank. Without it a 16-worker run on the real
Lift scene (modes at 0.95 and 0.86 on top) left 53 modes at 4 episodes each from episode 400 to
2020, among them a 0.40 and a 0.23 mode at 0 of 4 (BENCHMARKS.md 4).

**Simulator errors** are neither successes nor failures, so a perturbation that breaks the
simulation every time would stay untried, first in line, and take the whole budget. A mode with
``max_sim_errors`` simulator errors, more than its counted episodes, is left out: sampled no more,
and held out of the ranking (it could otherwise never be settled against); the stop reason names it.

A mode whose class and rank are settled gets no more episodes; when nothing is left to do, the
search stops before its budget and says why. Ties in any of these choices go by the seeded
warm-up order, never by the catalog's.
"""
from __future__ import annotations

import dataclasses
from statistics import NormalDist

import numpy as np

from ..errors import ConfigError, require
from ..stats import FAILS, MAX_THRESHOLD, UNDECIDED, UNTRIED, assess, wilson_bounds
from .bandits import ArmCounts
from .base import AskTellSearcher, register_searcher


@register_searcher("identify")
class IdentifySearcher(AskTellSearcher):

    @dataclasses.dataclass(frozen=True)
    class Hyperparameters:
        min_trials: int = 1  # episodes of every perturbation before any is judged
        classify_share: float = 0.3  # shares of the episodes among the jobs with work left; tightening
        rank_share: float = 0.6  # gets what is left (BENCHMARKS.md 4: 0.4 / 0.4 / 0.2 reached the top-3 less often)
        tighten_share: float = 0.1
        target_width: float = 0.3  # tighten failing modes until their anytime bounds are this narrow
        discover_trials: int = 4  # a mode with no failure in this many episodes waits for ranking and tightening (revisiting)
        breadth_cap: float = 2.0  # while modes wait for their first discover_trials episodes, ranking and tightening
        # take no mode past this many times the least-tried one's episodes, classification none past it x discover_trials
        max_sim_errors: int = 3  # a mode with this many simulator errors, more than its counted episodes, is left out

        def __post_init__(self):
            require("identify", self, min_trials=">= 1", classify_share="> 0", rank_share="> 0",
                    tighten_share="> 0", target_width="in (0, 1]",
                    breadth_cap=">= 1 (a large number turns it off)", max_sim_errors=">= 1")
            if self.discover_trials < self.min_trials:
                raise ConfigError(f"identify: discover_trials must be >= min_trials ({self.min_trials}), "
                                  f"got {self.discover_trials}")

    def __init__(self, names, seed, hp, goal):
        super().__init__(names, seed, hp, goal)
        self.counts = ArmCounts(names)
        self._order = self.rng.permutation(len(names))  # the warm-up order
        # Ties (equal bounds, equal estimates) go by the warm-up order, not the catalog's: a failing
        # mode that has not failed yet must not be found sooner for being listed first.
        self._position = np.argsort(self._order)
        self._credit = np.zeros(3)  # what each job (classify, rank, tighten) is owed, in episodes
        self._stop = None
        self._z = NormalDist().inv_cdf(goal.confidence)  # of the one-sided tests of _tied

    def tell(self, outcomes):
        self.counts.add(outcomes)

    def ask(self, n):
        # Episodes asked for but not told yet (other workers' runs) count as pending trials.
        pending = np.array([self.outstanding[(name,)] for name in self.names], dtype=float)
        out = []
        for _ in range(n):
            i = self._next(pending)
            if i is None:
                break
            pending[i] += 1
            out.append((self.names[i],))
        return out

    def _next(self, pending) -> int | None:
        trials = self.counts.failures + self.counts.successes
        seen = trials + pending
        unstable = (self.counts.sim_errors >= self.hp.max_sim_errors) & (self.counts.sim_errors > trials)
        for i in self._order:
            if seen[i] < self.hp.min_trials and not unstable[i]:
                return int(i)
        if unstable.all():
            self._stop = ("every perturbation was left out after simulator errors "
                          f"({self._unstable_note(unstable, trials)}); check the perturbations' magnitudes")
            return None
        verdict = assess(self.counts.failures, trials, self.goal, *self.baseline, tiebreak=self._position,
                         left_out=unstable)
        if verdict.threshold >= MAX_THRESHOLD:  # every episode would be spent on a question with no answer
            failures, runs = self.baseline
            self._stop = (f"the unperturbed policy fails {failures} of its {runs} episodes and the margin is "
                          f"{self.goal.margin}: no failure rate exceeds their sum, so no perturbation can be shown to "
                          f"fail more often; check the policy, the task and the horizon first (or lower the margin)")
            return None
        # Which mode to sample uses per-mode Wilson bounds (a sampling rule needs no validity, and
        # tighter bounds focus it sooner); what is decided uses the anytime-valid ones. Pending
        # episodes count as trials at the current rate: a batch spreads over modes.
        rate = np.where(trials > 0, self.counts.failures / np.maximum(trials, 1), 0.5)
        low, high = wilson_bounds(self.counts.failures + rate * pending, seen, self.goal.confidence)
        width = (verdict.high - verdict.low) / np.sqrt(1 + pending)  # as narrow as the pending episodes may make it
        jobs = self._jobs(verdict, trials, seen, width, low, high)
        if not any(jobs):
            self._stop = self._settled_reason(verdict)
            if unstable.any():
                self._stop += (f"; left out after simulator errors, so neither ranked nor classified: "
                               f"{self._unstable_note(unstable, trials)} (check their magnitudes)")
            return None
        classify, rank, tighten = jobs
        job = self._due_job(jobs)
        if job == 0:
            return max(classify, key=lambda i: (high[i], -seen[i], -self._position[i]))
        if job == 1:
            return max(rank, key=lambda i: (high[i] - low[i], -self._position[i]))
        return max(tighten, key=lambda i: (width[i], -self._position[i]))

    def _jobs(self, verdict, trials, seen, width, low, high) -> tuple[list[int], list[int], list[int]]:
        """The modes each job (classify, rank, tighten: the module docstring) may sample next."""
        classify = [i for i in range(len(self.names)) if verdict.status[i] in (UNDECIDED, UNTRIED)]
        rank = [] if verdict.top_settled else self._ranking_pair(verdict, low, high, trials)
        # Once the top-k are known, settling their order is part of tightening them, but for a
        # pair found tied (e.g. two certain modes): settling it by the anytime-valid bounds takes
        # hundreds of episodes and tells the user nothing new.
        to_order = {i for a, b in verdict.unordered if not self._tied(a, b, trials)
                    for i in (a, b)} if verdict.top_settled else set()
        tighten = [i for i in range(len(self.names)) if verdict.status[i] == FAILS
                   and (width[i] > self.hp.target_width or i in to_order)]
        if not (rank or tighten):
            return classify, rank, tighten
        # Classification confirms failing modes first; a mode that has not failed waits while
        # ranking or tightening have work, until the search has spent enough to look again (revisiting).
        revisit = max(self.hp.discover_trials, np.sqrt(self.hp.discover_trials * seen.sum() / len(self.names)))
        classify = [i for i in classify if self.counts.failures[i] or seen[i] < revisit]
        waiting = [i for i in classify if not self.counts.failures[i] and seen[i] < self.hp.discover_trials]
        if waiting:  # breadth first
            fewest = min(seen[i] for i in waiting)
            cap = self.hp.breadth_cap * fewest
            # A job the cap leaves nothing to do spends its share on what holds it back: the
            # least-tried waiting modes (equal bounds, so the warm-up order picks among them).
            least = [i for i in waiting if seen[i] == fewest]
            rank = [i for i in rank if seen[i] < cap] or (least if rank else [])
            tighten = [i for i in tighten if seen[i] < cap] or (least if tighten else [])
            # A fixed cap, not relative: the modes that fail at once must be confirmed.
            classify = [i for i in classify if seen[i] < self.hp.breadth_cap * self.hp.discover_trials]
        return classify, rank, tighten

    def _due_job(self, jobs) -> int:
        """Which job gets this episode: each job with work left is owed its share of the episodes;
        the one owed most is served."""
        active = np.array([bool(job) for job in jobs])
        shares = np.array([self.hp.classify_share, self.hp.rank_share, self.hp.tighten_share]) * active
        self._credit += shares / shares.sum()
        job = int(np.argmax(np.where(active, self._credit, -np.inf)))
        self._credit[job] -= 1
        return job

    def _unstable_note(self, unstable, trials) -> str:
        return ", ".join(f"{self.names[i]} ({int(self.counts.sim_errors[i])} of "
                         f"{int(self.counts.sim_errors[i] + trials[i])} episodes)" for i in np.flatnonzero(unstable))

    def _ranking_pair(self, verdict, low, high, trials) -> list[int]:
        """Of the pairs not settled yet, the one whose anytime-valid bounds overlap most: the top-k
        member with the lowest lower bound and the outsider with the highest upper bound (which
        modes are the top-k), or two neighbours in the top-k (in which order)."""
        # A tie at 0 or 1 (two modes that failed every episode so far) has no order to find yet
        # inside the top-k; at its edge, not once it is known (_tied). A tie strictly between
        # is a coincidence the next episode ends (two modes at 105 of 212 each, left alone, were
        # never sampled again). And a member not known to fail (a never-failing mode filling the
        # top-k at 0 of n) is level with the modes waiting at 0 of 4, which must be sampled.
        def order_to_find(a, b):
            return verdict.p_hat[a] != verdict.p_hat[b] or 0 < verdict.p_hat[a] < 1

        pairs = [(a, b) for a, b in verdict.unordered if order_to_find(a, b)]
        member = min(verdict.top, key=lambda i: (low[i], self._position[i]), default=None)
        # Of outsiders level at the top (modes at n of n), one not known to fail yet: at a tie at 1 the
        # one known to fail has just been pushed out by another's episodes (the top-k are ordered by
        # trials then); chasing it, four of 30 certain modes leapfrogged each other to 13 episodes.
        outsider = max(verdict.rest, key=lambda i: (high[i], verdict.status[i] != FAILS, -self._position[i]), default=None)
        if member is not None and outsider is not None:
            if order_to_find(member, outsider) or verdict.status[member] != FAILS \
                    or not self._tied(member, outsider, trials):
                pairs.append((member, outsider))
            elif not pairs:
                return []
        elif not pairs:  # nothing to compare it with yet: the one there is
            return [i for i in (member, outsider) if i is not None]
        return list(max(pairs, key=lambda pair: (verdict.high[pair[1]] - verdict.low[pair[0]], -self._position[pair[0]])))

    def _tied(self, a, b, trials) -> bool:
        """Two modes known to fail within the tolerance of each other: an equivalence test (TOST,
        Schuirmann, 1987) at the goal's confidence, per pair: the gap between their estimates plus
        z standard errors of it is within the tolerance. The estimates are (f + 1/2) / (n + 1): the
        plain standard error is 0 at n of n, and two modes at 2 of 2 are no known tie. Two certain
        modes pass at about 33 episodes each; a one-standard-error rule, passed at about 20, had
        called a 0.89 mode at 20 of 20 tied with certain ones at the top-3's edge in 1 run of 5,
        and a 0.95 and a 0.87 mode at 89 of 98 and 44 of 47 tied in the top-3's order."""
        p = (self.counts.failures[[a, b]] + 0.5) / (trials[[a, b]] + 1)
        error = float(np.sqrt((p * (1 - p) / trials[[a, b]]).sum()))
        return abs(p[0] - p[1]) + self._z * error <= self.goal.tolerance

    def _settled_reason(self, verdict) -> str:
        """Why nothing is left to do: what the stop reason tells the user of the classes and the top-k."""
        k, fails = self.goal.top_k, verdict.status.count(FAILS)
        if not fails:
            return (f"every mode is classified safe: none fails more often than the unperturbed rate plus the margin "
                    f"({verdict.threshold:.2f})")
        bounds = f"every failing mode's anytime bounds are narrower than {self.hp.target_width}"
        if not verdict.top_settled:  # the rank job leaves an open set only at an exact tie
            rate = verdict.p_hat[verdict.top[-1]]
            tied = [self.names[i] for i in sorted([i for i in verdict.top if verdict.p_hat[i] == rate] + list(verdict.tied))]
            top = f"the top-{k} are not settled: {', '.join(tied)} tie at {rate:.0%} (equal estimates: no order to find)"
        elif fails < k:
            top = f"only {fails} fail{'s' * (fails == 1)} (fewer than top_k = {k})" + ", in a settled order" * (fails > 1)
        else:
            top = "the worst mode is settled" if k == 1 else f"the top-{k} and their order are settled"
        ties = ", ".join(f"{self.names[a]} vs {self.names[b]}" for a, b in verdict.unordered)
        if ties and verdict.top_settled:
            top += (f", but for {ties}: they fail within the tolerance {self.goal.tolerance} of each other (an "
                    f"equivalence test at {self.goal.confidence:.0%}, per pair), so their order does not matter")
        return f"every mode is classified ({fails} fail); {top}; {bounds}"

    def stop_reason(self):
        return self._stop

    def pi(self):
        trials = self.counts.failures + self.counts.successes
        mean = (self.counts.failures + 0.5) / (trials + 1)
        return dict(zip(self.names, (mean / mean.sum()).tolist()))
