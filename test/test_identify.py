"""The default searcher on synthetic policies with known failure rates: it classifies, ranks,
stops spending on what is settled, and stops early when everything is."""
import collections

import numpy as np

from robofail_ros.core.episode import EpisodeOutcome
from robofail_ros.core.search import SearchContext, make_searcher
from robofail_ros.core.search.synthetic import SyntheticEvaluator
from robofail_ros.core.stats import FAILS, SAFE, Goal, assess


def run(rates, budget, seed=0, hp=None, goal=Goal(), nominal=(0, 20)):
    evaluator = SyntheticEvaluator(rates)
    searcher = make_searcher("identify", list(rates), seed, hp, goal)
    seen = []
    ctx = SearchContext(evaluator, budget, seed, on_outcomes=seen.extend, baseline=nominal)
    searcher.search(ctx)
    names = list(rates)
    trials = np.array([sum(o.perturbations == (n,) for o in seen) for n in names])
    failures = np.array([sum(o.perturbations == (n,) and not o.success for o in seen) for n in names])
    return ctx, dict(zip(names, trials)), assess(failures, trials, goal, *nominal)


def test_a_certain_mode_stops_being_sampled_once_settled():
    rates = {"certain": 1.0, **{f"never_{i}": 0.0 for i in range(15)}}
    for seed in range(3):
        # No tightening: once the certain mode is classified and ranked, it gets nothing more.
        ctx, trials, verdict = run(rates, 800, seed, {"target_width": 1.0}, Goal(top_k=1))
        assert verdict.status[0] == FAILS and verdict.top == (0,) and verdict.top_settled
        # Enough to be sure it fails more often than every other mode; uniform would give it 50.
        assert trials["certain"] <= 15, trials
        assert ctx.spent == 800 and ctx.stop_reason is None  # the never-failing modes are not all safe yet


def test_several_certain_modes_do_not_eat_the_budget_proving_their_tie():
    rates = {**{f"certain_{i}": 1.0 for i in range(3)}, **{f"never_{i:02d}": 0.0 for i in range(30)}}
    for budget, never in ((240, 5), (480, 12)):
        ctx, trials, verdict = run(rates, budget, 0)
        assert set(verdict.top) == {0, 1, 2} and {verdict.status[i] for i in range(3)} == {FAILS}
        # At most the 33 episodes after which the equivalence test calls two certain modes tied,
        # whatever the budget (40 each by 240 when the ranking job tried to order three modes that
        # failed every episode); the rest goes to the 30 modes not yet shown safe.
        assert all(trials[f"certain_{i}"] <= 33 for i in range(3)), trials
        assert min(trials[f"never_{i:02d}"] for i in range(30)) >= never, trials


def test_a_brittle_policy_s_many_certain_modes_are_all_classified():
    """30 modes fail every episode: the top-3 among them is a tie that no budget settles. Chasing it
    pair by pair, certain modes leapfrogged each other to 13 episodes, and by 240 only 8 of the 30
    were classified as failing, where uniform sampling classifies all 30 at 4-5 episodes each."""
    rates = {**{f"certain_{i:02d}": 1.0 for i in range(30)}, **{f"never_{i:02d}": 0.0 for i in range(27)}}
    ctx, trials, verdict = run(rates, 240, 0)
    assert [verdict.status[i] for i in range(30)] == [FAILS] * 30, trials
    assert max(trials.values()) <= 8 and min(trials.values()) >= 4, trials


def test_never_failing_modes_wait_while_the_modes_competing_for_the_top_k_are_ranked():
    rates = {"certain": 1.0, "half": 0.5, "forty": 0.4, "hidden": 0.3, **{f"never_{i:02d}": 0.0 for i in range(20)}}
    runs = [run(rates, 600, seed) for seed in range(10)]
    for _, trials, verdict in runs:
        never = [trials[f"never_{i:02d}"] for i in range(20)]
        # Proving a never-failing mode safe takes ~90 episodes, more than this budget can give 20 of
        # them: after discover_trials (4) they wait (~6-8 each by 600, up to 14 when classification
        # kept giving them its share), where uniform sampling would give them 500 of the 600.
        assert max(never) <= 15 and sum(never) <= 250, trials
        assert verdict.status[0] == FAILS and verdict.top[0] == 0
    # A failing mode that happens not to fail its first 4 episodes (1 in 16 for the 0.5 mode, 1 in 4
    # for the 0.3 one) cannot be told from the never-failing ones and waits with them; otherwise the
    # three modes competing for the last two places get the ranking episodes, ~75-160 each (the
    # pair whose bounds overlap most gets the most), five times what a never-failing mode gets.
    competing = [min(trials[n] for n in ("half", "forty", "hidden")) for _, trials, _ in runs]
    assert sum(episodes >= 70 for episodes in competing) >= 9, competing


def test_modes_that_never_failed_are_revisited_as_the_search_goes_on_however_long_ranking_takes():
    """Two close modes at the top (0.95 and 0.86) keep the ranking job busy for thousands of episodes.
    A mode that has not failed must still be looked at again as the search goes on: a 16-worker run
    on the real Lift scene left 53 modes at 4 episodes each from episode 400 to 2020, among them a
    0.40 and a 0.23 mode at 0 of 4, while the two top modes got 279 and 668."""
    rates = {"certain": 0.95, "high": 0.86, "mid": 0.65, "half": 0.48, "hidden": 0.3,
             **{f"never_{i:02d}": 0.0 for i in range(30)}}
    for seed in range(5):
        _, trials, verdict = run(rates, 1500, seed)
        # The revisiting rule: sqrt(discover_trials * 1500 / 35) = 13 episodes each by the end.
        assert min(trials[f"never_{i:02d}"] for i in range(30)) >= 12, trials
        assert verdict.status[4] == FAILS, (trials, verdict.p_hat[4])  # the 0.3 mode is found and classified
        assert set(verdict.top) == {0, 1, 2}
        # Ranking and tightening still get most of the budget: the four top modes ~1000 of 1500.
        assert sum(trials[n] for n in ("certain", "high", "mid", "half")) >= 700, trials


def test_no_mode_runs_far_ahead_while_modes_wait_for_their_first_episodes():
    # A failing mode that has not failed yet looks like the 30 never-failing ones: until they have
    # all been looked at, ranking and tightening give the certain mode nothing past twice the
    # least-tried one (it has the 4 that classification gave it; without the cap it had 6-14).
    rates = {"certain": 1.0, "high": 0.9, "half": 0.5, **{f"never_{i:02d}": 0.0 for i in range(30)}}
    for seed in range(10):
        _, trials, verdict = run(rates, 100, seed)
        least = min(trials[f"never_{i:02d}"] for i in range(30))
        assert least == 2 and verdict.status[0] == FAILS, trials
        assert trials["certain"] <= 4, trials
    # With the cap lifted, the same runs give the certain mode more than twice the least-tried's.
    ahead = [run(rates, 100, seed, {"breadth_cap": 1000})[1]["certain"] for seed in range(10)]
    assert min(ahead) > 4, ahead


def test_classification_confirms_no_mode_far_past_the_others_while_modes_wait_for_their_first_episodes():
    # Four modes that fail at 0.35-0.6 stay undecided for dozens of episodes, and classification, which
    # tries the undecided mode that may be worst first, gave them up to 19 each by 150 while never-failing
    # modes had 2: the episodes that would have given a failing mode that has not failed yet its fourth look.
    rates = {"certain": 1.0, "high": 0.6, "half": 0.5, "mid": 0.45, "low": 0.35, **{f"never_{i:02d}": 0.0 for i in range(40)}}
    for seed in range(10):
        _, trials, _ = run(rates, 150, seed)
        assert min(trials[f"never_{i:02d}"] for i in range(40)) < 4  # 45 modes x 4 > 150: still breadth first
        assert max(trials.values()) <= 8, trials  # breadth_cap (2) x discover_trials (4)


def test_a_job_the_breadth_cap_holds_back_spends_its_episodes_on_the_least_tried_waiting_modes():
    # Twelve modes at 0.5 stay undecided for dozens of episodes; classification, which tries the
    # undecided mode that may be worst first, gave them 7-8 each by 100 while 22-40 never-failing
    # modes sat at 1, and by 130 still left some at 1 in 8 of 10 seeds: the episodes that ranking,
    # held back by the cap, had passed on to it.
    rates = {"certain": 1.0, "high": 0.9, **{f"half_{i:02d}": 0.5 for i in range(12)},
             **{f"never_{i:02d}": 0.0 for i in range(40)}}
    for seed in range(10):
        trials = run(rates, 100, seed)[1]
        assert max(trials[f"half_{i:02d}"] for i in range(12)) <= 6, trials
        trials = run(rates, 130, seed)[1]
        assert min(trials[f"never_{i:02d}"] for i in range(40)) >= 2, trials


def test_a_half_failing_mode_is_flagged_and_never_failing_ones_are_classified_safe_then_it_stops():
    rates = {"half": 0.45, "never_a": 0.0, "never_b": 0.0, "rare": 0.02}
    ctx, trials, verdict = run(rates, 2000, 0, None, Goal(top_k=1, margin=0.2))
    assert verdict.status == (FAILS, SAFE, SAFE, SAFE)
    assert verdict.top == (0,) and verdict.top_settled
    assert ctx.stop_reason is not None and "every mode is classified" in ctx.stop_reason
    assert ctx.spent < 2000
    # The decisions hold for the true rates: the safe modes' upper bounds are below 0.2.
    assert verdict.high[1:].max() < 0.2 < verdict.low[0]


def test_it_ranks_the_true_top_three_and_spends_little_on_clearly_safe_modes():
    rates = {f"p{i}": r for i, r in enumerate([0.0, 0.0, 0.0, 0.0, 0.05, 0.1, 0.3, 0.6, 0.8, 1.0])}
    for seed in range(3):
        # 400: part of the budget goes to the order of 1.0 > 0.8 > 0.6, the rest to classifying 0.3.
        _, trials, verdict = run(rates, 400, seed)
        assert {f"p{i}" for i in (7, 8, 9)} == {list(rates)[i] for i in verdict.top}
        assert {verdict.status[i] for i in (6, 7, 8, 9)} == {FAILS}
        assert sum(trials[f"p{i}"] for i in range(4)) < sum(trials[f"p{i}"] for i in (6, 7, 8))


def test_a_policy_that_fails_unperturbed_is_not_searched_in_vain():
    # 19 of 20 unperturbed episodes fail: no mode can be shown to fail more often than 0.95 + 0.1.
    rates = {"a": 1.0, "b": 1.0, "c": 0.9}
    ctx, trials, verdict = run(rates, 500, 0, None, Goal(top_k=1), nominal=(19, 20))
    assert trials == {"a": 1, "b": 1, "c": 1}  # each mode tried once (min_trials), then it stops
    assert "fails 19 of its 20 episodes and the margin is 0.1" in ctx.stop_reason and ctx.spent == 3
    # With a policy that mostly succeeds unperturbed, the same modes are found failing.
    ctx, _, verdict = run(rates, 500, 0, None, Goal(top_k=1), nominal=(1, 20))
    assert FAILS in verdict.status and ctx.spent > 3


def test_a_policy_that_fails_unperturbed_now_and_then_has_only_the_modes_above_its_own_rate_flagged():
    # 2 of 20 unperturbed episodes fail: a mode fails above 0.1 + the margin 0.1. Modes that fail as often
    # as the unperturbed policy (a weak policy's many look-alikes) are shown safe, and the search stops.
    rates = {"a": 0.9, "b": 0.7, **{f"base_{i}": 0.1 for i in range(6)}}
    for seed in range(2):
        ctx, trials, verdict = run(rates, 6000, seed, None, Goal(top_k=2), nominal=(2, 20))
        assert abs(verdict.threshold - 0.2) < 1e-9
        assert verdict.status == (FAILS, FAILS) + (SAFE,) * 6
        assert verdict.top == (0, 1) and verdict.top_settled
        assert "every mode is classified (2 fail)" in ctx.stop_reason and ctx.spent < 6000


def test_it_settles_the_order_of_the_top_k_too_and_a_tie_does_not_eat_the_budget():
    rates = {"often": 0.8, "half": 0.55, **{f"never_{i}": 0.0 for i in range(3)}}
    for seed in range(3):
        ctx, trials, verdict = run(rates, 3000, seed, {"target_width": 1.0}, Goal(top_k=2))
        assert verdict.top == (0, 1) and verdict.top_settled and verdict.unordered == ()
        assert "the top-2 and their order are settled" in ctx.stop_reason and ctx.spent < 3000
    # Two certain modes are tied: the anytime-valid bounds would take ~150 episodes each to order
    # them to within 0.05; the equivalence test calls them tied after 33.
    rates = {"certain_a": 1.0, "certain_b": 1.0, **{f"never_{i}": 0.0 for i in range(3)}}
    ctx, trials, verdict = run(rates, 3000, 0, {"target_width": 1.0}, Goal(top_k=2))
    assert verdict.top_settled and verdict.unordered == ((0, 1),)
    assert "and their order are settled, but for certain_a vs certain_b: they fail within the tolerance" in ctx.stop_reason
    assert trials["certain_a"] <= 33 and trials["certain_b"] <= 33, trials


def test_more_certain_modes_than_the_top_k_tie_at_its_edge_without_eating_the_budget():
    rates = {**{f"certain_{i}": 1.0 for i in range(5)}, **{f"never_{i:02d}": 0.0 for i in range(30)}}
    ctx, trials, verdict = run(rates, 300, 0)
    # No number of episodes tells five modes that fail every time apart: they are sampled until the
    # equivalence test calls them tied, 33 episodes each at most (24-28 by 300 here), and no further
    # (chased with no stop, the tie had taken 40 each and left never-failing modes at 4).
    assert not verdict.top_settled and {verdict.status[i] for i in range(5)} == {FAILS}
    assert all(trials[f"certain_{i}"] <= 33 for i in range(5)), trials
    assert min(trials[f"never_{i:02d}"] for i in range(30)) >= 5, trials
    # Once everything else is settled the search stops and names the tie.
    rates = {**{f"certain_{i}": 1.0 for i in range(4)}, "never_a": 0.0, "never_b": 0.0}
    ctx, trials, verdict = run(rates, 3000, 0)
    assert ctx.spent < 3000 and not verdict.top_settled
    assert "the top-3 are not settled: certain_0, certain_1, certain_2, certain_3 tie at 100%" in ctx.stop_reason


def test_modes_failing_every_episode_so_far_cannot_push_a_certain_mode_out_of_the_top_k():
    """Two certain modes and four that fail 82-93% of the time, behind them mid modes whose wide
    bounds take the tightening, and modes near a 7.5% unperturbed rate (Push BC's recorded truth,
    rounded): a near-certain mode that has failed every episode so far is level with the certain
    ones, so it is sampled until it shows a success or an equivalence test at 95% finds the tie
    within the tolerance (32-33 episodes each). Four of them had been left at 9 of 9 each after
    500 episodes (seed 3), where the top-3 could hold three of the four."""
    rates = {"certain_a": 1.0, "certain_b": 1.0, "near_0": 0.925, "near_1": 0.9, "near_2": 0.9, "near_3": 0.825,
             **{f"mid_{i}": rate for i, rate in enumerate((0.65, 0.525, 0.475, 0.475, 0.45, 0.425, 0.35, 0.2))},
             **{f"low_{i:02d}": 0.15 if i < 5 else 0.1 if i < 10 else 0.05 for i in range(43)}}
    for budget in (500, 1000):
        for seed in range(10):
            ctx, trials, verdict = run(rates, budget, seed, nominal=(3, 40))
            assert {0, 1} <= set(verdict.top), (budget, seed, verdict.top, trials)
            tied = [name for i, name in enumerate(rates) if verdict.p_hat[i] == 1.0]
            assert len(tied) <= 3 or all(trials[name] >= 32 for name in tied), (budget, seed, trials)


def test_the_stop_reason_says_when_fewer_modes_fail_than_the_top_k():
    ctx, _, verdict = run({"never_a": 0.0, "never_b": 0.0, "never_c": 0.0}, 3000, 0)
    assert verdict.status == (SAFE, SAFE, SAFE) and "every mode is classified safe" in ctx.stop_reason
    ctx, _, verdict = run({"certain": 1.0, "never_a": 0.0, "never_b": 0.0}, 3000, 0)
    assert verdict.status == (FAILS, SAFE, SAFE) and "only 1 fails (fewer than top_k = 3);" in ctx.stop_reason


def test_two_modes_count_as_tied_only_when_an_equivalence_test_says_so():
    """A pair is left unordered (or, across the top-k's edge, no longer sampled) once the gap
    between its estimates plus 1.645 standard errors is within the tolerance (0.05): the one-sided
    tests at 95%. The one-standard-error rule before it called the first two pairs tied."""
    def tied(failures, trials):
        searcher = make_searcher("identify", ["often", "half"], 0, None, Goal(top_k=2))
        searcher.tell([EpisodeOutcome((name,), 0, k >= f, 10, None)
                       for name, f, n in zip(["often", "half"], failures, trials) for k in range(n)])
        return searcher._tied(0, 1, np.array(trials, dtype=float))
    assert not tied([20, 20], [20, 20])  # a 0.89 mode at 20 of 20 beside a certain one
    assert not tied([89, 44], [98, 47])  # a 0.95 and a 0.87 mode: 0.91 vs 0.94
    assert not tied([32, 31], [43, 41])  # a 0.8 and a 0.55 mode: 0.74 vs 0.76
    assert not tied([2, 2], [2, 2])  # the plain standard error is 0 here
    assert tied([33, 33], [33, 33])  # two certain modes: nothing more to learn
    assert tied([790, 800], [1000, 1000])  # 0.79 vs 0.80, known to within 0.03


def test_which_of_equal_modes_goes_first_follows_the_seeded_warm_up_order_not_the_catalog():
    """A failing mode that has not failed yet looks like every never-failing one; were ties broken
    by listing order, it would be found sooner for being listed first (the 0.3 mode of 20 never-failing
    ones once got a median 16 of the first 60 episodes listed first and 11 listed last)."""
    rates = {f"never_{i:02d}": 0.0 for i in range(21)}
    first_after_warm_up = set()
    for seed in range(30):
        evaluator, seen = SyntheticEvaluator(rates), []
        searcher = make_searcher("identify", list(rates), seed, None, Goal())
        searcher.search(SearchContext(evaluator, 22, seed, on_outcomes=seen.extend, baseline=(0, 20)))
        warm_up = [o.perturbations[0] for o in seen[:21]]
        assert sorted(warm_up) == list(rates)
        # After the warm-up every mode reads 0 of 1: the tie goes to the first mode warmed up.
        assert seen[21].perturbations[0] == warm_up[0]
        first_after_warm_up.add(warm_up[0])
    assert len(first_after_warm_up) >= 15, first_after_warm_up  # ~19 of 21 names in 30 seeded draws


def asked_after(counts, seed, episodes=40):
    """What identify asks for in ``episodes`` more episodes (told failure, success, ... in turn),
    once told ``counts`` ({mode: (failures, trials)})."""
    searcher = make_searcher("identify", list(counts), seed, None, Goal())
    searcher.tell([EpisodeOutcome((name,), 0, k >= failures, 10, None)
                   for name, (failures, trials) in counts.items() for k in range(trials)])
    asked = collections.Counter()
    for k in range(episodes):
        (perturbations,) = searcher.ask(1)
        asked[perturbations[0]] += 1
        searcher.tell([EpisodeOutcome(perturbations, 0, k % 2 == 1, 10, None)])
    return asked


def test_modes_waiting_for_a_first_failure_are_sampled_while_a_never_failing_mode_fills_the_top_k():
    """Fewer modes are known to fail than top_k, so a never-failing mode (0 of 60) fills the top-3,
    level with 20 modes at 0 of 4 (a 0.5 mode succeeds its first 4 episodes 1 time in 16). That is
    no tie between failing modes: ranking must sample the waiting modes, not spend its share
    ordering a 0.1 mode above the never-failing member (it once gave the 0.1 mode 500 of 1000)."""
    waiting = [f"waiting_{i:02d}" for i in range(20)]
    counts = {"half": (30, 60), "at_margin": (6, 60), "member": (0, 60), **{n: (0, 4) for n in waiting}}
    for seed in range(3):
        asked = asked_after(counts, seed)
        assert sum(asked[name] for name in waiting) >= 10, asked


def test_two_modes_at_an_equal_estimate_between_0_and_1_are_still_ordered():
    """Two certain modes stay tied however many episodes they get; two modes at 105 of 212 each
    are a coincidence the next episode ends (a 0.5 and a 0.4 mode once froze there for good)."""
    # The outsiders have had more episodes than the revisiting rule asks of a mode that never failed.
    counts = {"certain": (26, 26), "half": (105, 212), "forty": (105, 212), **{f"outsider_{i:02d}": (0, 12) for i in range(20)}}
    for seed in range(3):
        asked = asked_after(counts, seed)
        assert asked["half"] + asked["forty"] >= 5, asked


def test_a_mode_that_breaks_the_simulator_is_left_out_after_max_sim_errors_and_the_stop_says_so():
    rates = {"certain": 1.0, "broken": 0.0, "never_0": 0.0, "never_1": 0.0}
    for seed in range(3):
        evaluator = SyntheticEvaluator(rates, sim_error_rates={"broken": 1.0})
        searcher = make_searcher("identify", list(rates), seed, None, Goal(top_k=1))
        seen = []
        ctx = SearchContext(evaluator, 2000, seed, on_outcomes=seen.extend, baseline=(0, 20))
        searcher.search(ctx)
        broken = [o for o in seen if o.perturbations == ("broken",)]
        # Every one of its episodes is a simulator error: after max_sim_errors (3) it is tried no more,
        # where it used to stay "untried" at the front of the queue and take most of the budget.
        assert len(broken) == 3 and all(o.sim_error for o in broken)
        assert ctx.spent < 2000, "the rest is decided and the search stops early"
        assert "left out after simulator errors, so neither ranked nor classified: broken (3 of 3 episodes)" \
            in ctx.stop_reason
        assert ctx.stop_reason.startswith("every mode is classified (1 fail); the worst mode is settled")
    # A mode that breaks the simulator now and then (1 in 10) is still searched: its counted episodes outnumber them.
    evaluator = SyntheticEvaluator({"flaky": 0.5, "never": 0.0}, sim_error_rates={"flaky": 0.1})
    searcher = make_searcher("identify", ["flaky", "never"], 0, None, Goal(top_k=1))
    seen = []
    ctx = SearchContext(evaluator, 300, 0, on_outcomes=seen.extend, baseline=(0, 20))
    searcher.search(ctx)
    flaky = [o for o in seen if o.perturbations == ("flaky",)]
    errors, counted = sum(o.sim_error is not None for o in flaky), sum(o.sim_error is None for o in flaky)
    assert errors >= 3 and counted >= 10 and counted > errors, (errors, counted)
