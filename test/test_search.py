"""Searchers, statistics and the search MDP. Searchers are judged on a synthetic policy whose
true failure rates are known; the MDP and PPO run on the real robosuite scene."""
import numpy as np
import pytest

from robofail_ros.core.analysis import FailureTable, entropy, failure_table
from robofail_ros.core.stats import wilson_interval
from robofail_ros.core.errors import ConfigError, UnknownNameError
from robofail_ros.core.search import SearchContext, make_searcher
from robofail_ros.core.search.synthetic import SyntheticEvaluator

RATES = {f"p{i}": r for i, r in enumerate([0.05, 0.1, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.45, 0.8])}
WORST = "p9"


def search_synthetic(name, budget, seed, hp=None):
    evaluator = SyntheticEvaluator(RATES)
    searcher = make_searcher(name, list(RATES), seed, hp)
    seen = []
    ctx = SearchContext(evaluator, budget, seed, on_outcomes=seen.extend,
                        reference_image=evaluator.reference_image())
    searcher.search(ctx)
    return searcher, seen


@pytest.mark.parametrize("name", ["thompson", "cross_entropy"])
def test_adaptive_searchers_find_the_worst_perturbation(name):
    hits = 0
    for seed in range(5):
        searcher, seen = search_synthetic(name, 200, seed)
        assert len(seen) == 200
        pi = searcher.pi()
        assert sum(pi.values()) == pytest.approx(1.0)
        trials = {n: sum(o.perturbations == (n,) for o in seen) for n in RATES}
        hits += max(pi, key=pi.get) == WORST and max(trials, key=trials.get) == WORST
    assert hits >= 4, f"{name} found the worst perturbation in only {hits} of 5 runs"


def test_lucb_finds_the_top_three_with_fewer_episodes_on_the_rest():
    top3 = sorted(RATES, key=RATES.get, reverse=True)[:3]
    for seed in range(3):
        searcher, seen = search_synthetic("lucb", 300, seed)
        trials = {n: sum(o.perturbations == (n,) for o in seen) for n in RATES}
        failures = {n: sum(o.perturbations == (n,) and not o.success for o in seen) for n in RATES}
        estimate = {n: failures[n] / trials[n] for n in RATES}
        ranked = sorted(RATES, key=estimate.get, reverse=True)
        assert set(ranked[:3]) == set(top3)  # the set: LUCB does not order within the top-k
        # Its episodes go to the boundary of the top-3, not to the clearly safe perturbations
        # (uniform would give p0-p3 120 of the 300).
        assert sum(trials[n] for n in ("p0", "p1", "p2", "p3")) < 60


def test_uniform_spends_the_budget_evenly_and_pi_is_uniform():
    searcher, seen = search_synthetic("uniform", 100, 0)
    trials = [sum(o.perturbations == (n,) for o in seen) for n in RATES]
    assert trials == [10] * 10
    assert set(searcher.pi().values()) == {0.1}


def test_wilson_intervals_cover_the_truth_at_about_their_nominal_rate():
    rng = np.random.default_rng(0)
    for p, n in ((0.1, 30), (0.5, 20), (0.8, 50)):
        covered = 0
        for _ in range(400):
            k = rng.binomial(n, p)
            low, high = wilson_interval(k, n)
            covered += low <= p <= high
        assert 0.91 <= covered / 400 <= 0.99, (p, n, covered / 400)


def test_modes_that_fail_equally_often_are_listed_in_rank_order_and_the_unranked_after():
    """Four modes at 6 of 6, top-3: the table lists ranks 1, 2, 3, then the fourth, whatever their
    names (the listing had rank 2 above rank 1 where names sort otherwise)."""
    from robofail_ros.core.episode import EpisodeOutcome
    from robofail_ros.core.perturbations import Catalog
    names = ["very_heavy_cube", "small_table", "huge_cube", "heavy_cube"]
    catalog = Catalog.load().subset(names)
    outcomes = [EpisodeOutcome((), 0, True, 40, None)] * 10 + [
        EpisodeOutcome((name,), 0, False, 200, None) for name in names for _ in range(6)]
    listed = failure_table(outcomes, catalog).perturbed  # top_k 3
    assert [m.rank for m in listed] == [1, 2, 3, None]
    assert sorted(m.name for m in listed) == sorted(names)


def test_failure_modes_count_sim_errors_apart_and_rank_by_failure_rate():
    from robofail_ros.core.episode import EpisodeOutcome
    from robofail_ros.core.perturbations import Catalog
    catalog = Catalog.load().subset(["red_table", "heavy_cube"])
    outcomes = ([EpisodeOutcome((), 0, True, 40, None)] * 9 + [EpisodeOutcome((), 0, False, 200, None)]
                + [EpisodeOutcome(("red_table",), 0, False, 200, None)] * 3 + [EpisodeOutcome(("red_table",), 0, True, 40, None)]
                + [EpisodeOutcome(("red_table",), 0, False, 3, "MuJoCo instability")] * 2
                + [EpisodeOutcome(("heavy_cube",), 0, True, 40, None)] * 4)
    modes = {m.name: m for m in failure_table(outcomes, catalog, {"red_table": 0.7, "heavy_cube": 0.3}).modes}
    red = modes["red_table"]
    assert (red.trials, red.failures, red.sim_errors, red.p_fail) == (4, 3, 2, 0.75)
    assert red.severity == pytest.approx((0.75 - 0.1) / 0.9)
    assert modes["heavy_cube"].severity == 0.0 and modes["none"].p_fail == pytest.approx(0.1)
    assert [m.name for m in failure_table(outcomes, catalog).modes][0] == "red_table"
    assert failure_table(outcomes, catalog).worst.name == "red_table"
    # Before any perturbed episode failed there is no worst mode (the progress shows "-", not "heavy_cube 0.00").
    assert failure_table([o for o in outcomes if o.success], catalog).worst is None
    # Simulator errors that outnumber a mode's counted episodes are named in the verdict; fewer are not.
    from robofail_ros.core.analysis import verdict_text
    assert "simulator errors outnumber" not in verdict_text(failure_table(outcomes, catalog))
    unstable = outcomes + [EpisodeOutcome(("heavy_cube",), 0, False, 2, "MuJoCo instability")] * 5
    assert ("simulator errors outnumber the counted episodes of heavy_cube (5 of 9): the simulation breaks down"
            in verdict_text(failure_table(unstable, catalog)))
    # A mode whose every episode broke the simulator was tried: undecided, not "untried".
    only_errors = [o for o in unstable if o.perturbations != ("heavy_cube",) or o.sim_error]
    table = failure_table(only_errors, catalog)
    assert table.mode("heavy_cube").status == "undecided" and table.classes.get("untried", 0) == 0
    assert failure_table([o for o in outcomes if o.perturbations != ("heavy_cube",)], catalog) \
        .mode("heavy_cube").status == "untried"
    assert entropy([0.5, 0.5]) == pytest.approx(np.log(2)) and entropy([1, 0]) == 0.0


def test_the_verdict_says_when_the_policy_fails_unperturbed_too_often_for_any_mode_to_stand_out():
    from robofail_ros.core.analysis import verdict_text
    from robofail_ros.core.episode import EpisodeOutcome
    from robofail_ros.core.perturbations import Catalog
    catalog = Catalog.load().subset(["red_table", "heavy_cube"])
    modes = [EpisodeOutcome(("red_table",), 0, False, 200, None)] * 5 + [EpisodeOutcome(("heavy_cube",), 0, True, 40, None)] * 5
    broken = failure_table([EpisodeOutcome((), 0, False, 200, None)] * 10 + modes, catalog)
    assert "the policy fails unperturbed about as often as any mode could" in verdict_text(broken)
    working = failure_table([EpisodeOutcome((), 0, True, 40, None)] * 10 + modes, catalog)
    assert "unperturbed about as often" not in verdict_text(working)
    assert "above P(fail) 0.10 (unperturbed rate 0.00, 0 of 10 episodes, + margin 0.10)" in verdict_text(working)
    # nominal_episodes: 0 measures no baseline: the verdict says the threshold assumes one of 0.
    unmeasured = failure_table(modes, catalog)
    assert "over an unperturbed rate taken as 0: no unperturbed episode was counted" in verdict_text(unmeasured)


def test_the_verdict_says_how_many_undecided_modes_have_not_failed_and_what_showing_one_safe_takes():
    from robofail_ros.core.analysis import verdict_text
    from robofail_ros.core.episode import EpisodeOutcome
    from robofail_ros.core.perturbations import Catalog
    from robofail_ros.core.stats import Goal, episodes_to_show_safe
    catalog = Catalog.load().subset(["red_table", "heavy_cube", "dim_light", "blue_cube"])

    def episodes(name, failures, successes):
        return [EpisodeOutcome((name,), 0, False, 200, None)] * failures + [EpisodeOutcome((name,), 0, True, 40, None)] * successes
    outcomes = ([EpisodeOutcome((), 0, True, 40, None)] * 10 + episodes("red_table", 6, 0) + episodes("heavy_cube", 0, 4)
                + episodes("dim_light", 0, 3) + episodes("blue_cube", 1, 3))
    needed = episodes_to_show_safe(0.1, 0.95, 5)
    assert (f"2 of the 3 undecided have not failed in their 3-4 episodes (showing a mode safe takes {needed} "
            "episodes without a failure)") in verdict_text(failure_table(outcomes, catalog))
    # With no margin over an unperturbed rate of 0 no count of episodes shows a mode safe: the verdict says so.
    assert "no mode can be shown safe at a threshold of 0: raise the margin" in verdict_text(
        failure_table(outcomes, catalog, goal=Goal(margin=0.0)))
    # One episode each is "their 1 episode", not "their 1 episodes".
    once = [EpisodeOutcome((), 0, True, 40, None)] * 10 + episodes("heavy_cube", 0, 1) + episodes("dim_light", 0, 1)
    assert "the 2 undecided have not failed in their 1 episode (" in verdict_text(failure_table(once, catalog))


def test_the_printed_table_gives_an_untried_mode_no_number_but_its_zero_counts():
    from robofail_ros.core.analysis import RunResult, format_table
    from robofail_ros.core.episode import EpisodeOutcome
    from robofail_ros.core.perturbations import Catalog
    catalog = Catalog.load().subset(["red_table", "heavy_cube"])
    outcomes = [EpisodeOutcome((), 0, True, 40, None)] * 10 + [EpisodeOutcome(("red_table",), 0, False, 200, None)] * 2
    text = format_table(RunResult("run", failure_table(outcomes, catalog), 12, 2, 0, None, None))
    untried = next(line for line in text.splitlines() if line.startswith("heavy_cube")).split()
    assert untried[2:] == ["untried", "-", "-", "-", "0", "0", "0", "-"], untried  # no rate, bounds or severity
    tried = next(line for line in text.splitlines() if line.startswith("red_table")).split()
    assert tried[-2:] == ["0", "1.00"] and "2 policy failures, 0 simulator errors" in text


def test_the_printed_table_points_a_run_that_spent_its_budget_unsettled_to_an_extension():
    from robofail_ros.core.analysis import RunResult, format_table
    from robofail_ros.core.episode import EpisodeOutcome
    from robofail_ros.core.perturbations import Catalog
    from robofail_ros.core.stats import Goal
    catalog = Catalog.load().subset(["red_table", "heavy_cube"])
    nominal = [EpisodeOutcome((), 0, True, 40, None)] * 10

    def printed(red, heavy, nominal=nominal, **result):
        outcomes = (nominal + [EpisodeOutcome(("red_table",), 0, False, 200, None)] * red
                    + [EpisodeOutcome(("heavy_cube",), 0, True, 40, None)] * heavy)
        table = failure_table(outcomes, catalog, goal=Goal(top_k=1))
        return format_table(RunResult("runs/a", table, len(outcomes), red, 0, None, None, **result))
    hint = "give it more episodes: robofail search --extend runs/a --budget 8 (twice this run's"  # 4 searched
    assert hint in printed(2, 2)  # both undecided
    assert hint not in printed(2, 2, stop_reason="every mode is classified")  # the searcher is done with it
    assert hint not in printed(2, 2, cancelled=True)  # --resume continues it
    assert hint not in printed(40, 150)  # fails and safe, the top-1 settled
    failing = [EpisodeOutcome((), 0, False, 200, None)] * 10  # a policy that fails unperturbed: no mode can fail more
    assert hint not in printed(2, 2, nominal=failing) and "fails unperturbed about as often" in printed(2, 2, nominal=failing)


def test_the_verdict_tells_a_settled_order_from_a_settled_set():
    from robofail_ros.core.analysis import verdict_text
    from robofail_ros.core.episode import EpisodeOutcome
    from robofail_ros.core.perturbations import Catalog
    from robofail_ros.core.stats import Goal
    catalog = Catalog.load().subset(["red_table", "heavy_cube", "dim_light"])

    def table(red_failures):
        outcomes = ([EpisodeOutcome((), 0, True, 40, None)] * 20
                    + [EpisodeOutcome(("red_table",), 0, k >= red_failures, 200, None) for k in range(60)]
                    + [EpisodeOutcome(("heavy_cube",), 0, k >= 30, 200, None) for k in range(60)]
                    + [EpisodeOutcome(("dim_light",), 0, True, 40, None)] * 200)
        return failure_table(outcomes, catalog, goal=Goal(top_k=2))
    apart, close = table(54), table(33)
    assert apart.top == close.top == ["red_table", "heavy_cube"] and apart.top_settled and close.top_settled
    assert apart.order_settled and "red_table, heavy_cube: settled in this order" in verdict_text(apart)
    assert not close.order_settled and close.unordered == [("red_table", "heavy_cube")]
    assert "settled as a set" in verdict_text(close) and "not settled yet: red_table vs heavy_cube" in verdict_text(close)
    # A summary written before orders were recorded reads back without claiming one.
    old = close.to_dict()
    del old["unordered"]
    assert "heavy_cube: settled (with 95% confidence" in verdict_text(FailureTable.from_dict(old))


def test_the_verdict_names_the_modes_that_tie_at_the_edge_of_the_top_k():
    from robofail_ros.core.analysis import verdict_text
    from robofail_ros.core.episode import EpisodeOutcome
    from robofail_ros.core.perturbations import Catalog
    from robofail_ros.core.stats import Goal
    catalog = Catalog.load().subset(["red_table", "heavy_cube", "dim_light"])
    unperturbed = [EpisodeOutcome((), 0, True, 40, None)] * 20
    certain = [EpisodeOutcome((name,), 0, False, 200, None) for name in ("red_table", "heavy_cube") for _ in range(30)]
    tied = failure_table(unperturbed + certain, catalog, goal=Goal(top_k=1))
    (top,) = tied.top
    other = ({"red_table", "heavy_cube"} - {top}).pop()
    assert not tied.top_settled and f"not settled ({top} ties with {other}: each fails, at 1.00 so far" in verdict_text(tied)
    # Three certain modes for a top-2: both members tie with the third, not only the last member.
    dim = [EpisodeOutcome(("dim_light",), 0, False, 200, None)] * 30
    three = failure_table(unperturbed + certain + dim, catalog, goal=Goal(top_k=2))
    outsider = ({"red_table", "heavy_cube", "dim_light"} - set(three.top)).pop()
    assert f"not settled ({', '.join(three.top)} tie with {outsider}: each fails" in verdict_text(three)
    # A mode a single failure ahead is no tie: more episodes would tell.
    apart = failure_table(unperturbed + certain[:59] + [EpisodeOutcome(("red_table",), 0, True, 40, None)], catalog,
                          goal=Goal(top_k=1))
    assert not apart.top_settled and "(more episodes would be needed to be sure)" in verdict_text(apart)


def test_searcher_bad_input_is_refused():
    with pytest.raises(UnknownNameError, match="unknown searcher 'thomson'. Did you mean 'thompson'"):
        make_searcher("thomson", ["a"], 0)
    with pytest.raises(ConfigError, match="perturbation list is empty"):
        make_searcher("uniform", [], 0)
    with pytest.raises(ConfigError, match=r"no hyperparameter\(s\) \['n_step'\]; it takes .*'n_steps'"):
        make_searcher("ppo", ["a"], 0, {"n_step": 5})


@pytest.mark.slow
def test_search_env_passes_sb3_check_env_on_the_real_scene(lift_lowdim):
    from stable_baselines3.common.env_checker import check_env
    from robofail_ros.core.episode import run_episode
    from robofail_ros.core.policies import load_policy
    from robofail_ros.core.search.env import FailureSearchEnv
    expert = load_policy("scripted")
    lift_lowdim.reset([], seed=0)
    reference = lift_lowdim.render("agentview", 84)
    names = ["shaky_arm", "very_heavy_cube", "red_table"]
    seeds = iter(range(1000))

    def evaluate_one(perturbations):
        return run_episode(lift_lowdim, expert, perturbations, seed=next(seeds), image_size=84)

    env = FailureSearchEnv(names, evaluate_one, reference, failure_reward=1000.0, success_reward=-100.0 / 200,
                           max_perturbations=2)
    check_env(env, warn=True)
    obs, _ = env.reset()
    obs, reward, terminated, truncated, info = env.step(2)
    assert obs.shape == (84, 84, 3) and info["perturbations"] == ("red_table",)
    assert reward == (1000.0 if info["failure"] else -100.0 / 200)
    assert obs.mean() != reference.mean(), "the observation must show the perturbed (red) scene"


@pytest.mark.slow
def test_short_real_ppo_run_gives_a_distribution_over_the_catalog(tmp_path, python):
    import json
    import subprocess
    cfg = tmp_path / "search.yaml"
    cfg.write_text("/**:\n  ros__parameters:\n    policy: scripted\n    nominal_episodes: 1\n    num_workers: 1\n"
                   "    perturbations: [red_table, shaky_arm, very_heavy_cube, laggy_arm]\n"
                   "    ppo: {n_envs: 2, n_steps: 4, batch_size: 4, n_epochs: 2}\n    report: false\n")
    out = tmp_path / "run"
    result = subprocess.run([python, "-m", "robofail_ros.cli", "search", "--config", str(cfg), "--searcher", "ppo",
                             "--budget", "8", "--out", str(out), "--json"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout)
    pi = {m["name"]: m["pi"] for m in data["modes"] if m["name"] != "none"}
    assert set(pi) == {"red_table", "shaky_arm", "very_heavy_cube", "laggy_arm"}
    assert sum(pi.values()) == pytest.approx(1.0, abs=1e-5) and all(p > 0 for p in pi.values())
    assert data["episodes"] == 9 and 0 < data["pi_entropy"] <= np.log(4) + 1e-9
    assert (out / "ppo" / "latest.zip").is_file() and any((out / "tensorboard").rglob("events.*"))
