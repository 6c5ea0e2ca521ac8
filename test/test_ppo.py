"""PPO, the paper's searcher: its default finds the worst mode, its pi(a|o) reads out as P(fail),
the paper preset stays the paper's, and the sequential setting reports composite modes."""
import tempfile

import numpy as np
import pytest

from robofail_ros.core.analysis import failure_table
from robofail_ros.core.errors import ConfigError, UnknownNameError
from robofail_ros.core.search import SearchContext, make_searcher
from robofail_ros.core.search.ppo import readout
from robofail_ros.core.search.synthetic import SyntheticEvaluator

RATES = {f"a{i}": r for i, r in enumerate([0.9, 0.7, 0.5, 0.3, 0.1, 0.0, 0.0, 0.0])}


def train(rates, budget, seed, hp=None):
    evaluator = SyntheticEvaluator(rates)
    searcher = make_searcher("ppo", list(rates), seed, hp)
    seen = []
    ctx = SearchContext(evaluator, budget, seed, 1, evaluator.reference_image(), seen.extend)
    searcher.search(ctx)
    return searcher, seen


@pytest.mark.parametrize("failure_reward, success_reward, temperature", [(1.0, 0.0, 0.2), (1000.0, -0.5, 150.0)])
def test_readout_inverts_the_boltzmann_policy_of_known_rates(failure_reward, success_reward, temperature):
    rng = np.random.default_rng(0)
    p = rng.random(20)
    expected_reward = p * failure_reward + (1 - p) * success_reward
    logits = expected_reward / temperature
    pi = np.exp(logits - logits.max())
    pi /= pi.sum()
    value = float((pi * expected_reward).sum())
    assert readout(pi, value, temperature, failure_reward, success_reward) == pytest.approx(p, abs=1e-9)
    # Monotone in pi: more mass, higher P(fail).
    order = np.argsort(pi)
    assert (np.diff(readout(pi, value, temperature, failure_reward, success_reward)[order]) >= 0).all()


def test_ppo_puts_the_most_pi_mass_on_the_clearly_worst_mode():
    for seed in range(3):
        searcher, seen = train(RATES, 600, seed)
        pi = searcher.pi()
        assert max(pi, key=pi.get) == "a0", pi
        assert sum(pi.values()) == pytest.approx(1.0)
        trials = {n: sum(o.perturbations == (n,) for o in seen) for n in RATES}
        assert trials["a0"] > 3 * trials["a7"]


def test_pi_readout_recovers_known_rates_within_a_stated_tolerance():
    """Tolerance: mean absolute error <= 0.2 over all modes after 800 episodes (measured ~0.13)."""
    errors = []
    for seed in range(3):
        searcher, _ = train(RATES, 800, seed)
        estimate = searcher.pi_p_fail()
        errors.append(np.mean([abs(estimate[n] - RATES[n]) for n in RATES]))
        assert estimate["a0"] > max(estimate[n] for n in ("a5", "a6", "a7"))
    assert np.mean(errors) <= 0.2, errors


def test_the_paper_preset_is_the_papers_and_has_no_readout():
    searcher = make_searcher("ppo", list(RATES), 0, {"preset": "paper"})
    hp = searcher.hp
    assert (hp.policy, hp.observation, hp.n_steps, hp.ent_coef, hp.normalize_advantage, hp.unit_rewards) == \
        ("CnnPolicy", "image", 2048, 0.0, True, False)
    assert searcher.rewards == (1000.0, -100.0 / 200)
    assert make_searcher("ppo", list(RATES), 0, {"preset": "paper", "n_steps": 64}).hp.n_steps == 64
    with pytest.raises(UnknownNameError, match="unknown ppo preset 'papr'. Did you mean 'paper'"):
        make_searcher("ppo", list(RATES), 0, {"preset": "papr"})
    with pytest.raises(ConfigError, match="CnnPolicy reads images"):
        make_searcher("ppo", list(RATES), 0, {"policy": "CnnPolicy"})


def test_sequential_search_accumulates_perturbations_and_reports_composite_modes():
    from robofail_ros.core.perturbations import Catalog
    names = ["red_table", "dim_light", "heavy_cube", "shaky_arm"]
    rates = {"red_table": 0.0, "dim_light": 0.0, "heavy_cube": 0.1, "shaky_arm": 0.9}
    searcher, seen = train(rates, 200, 0, {"max_perturbations": 2})
    composite = [o for o in seen if len(o.perturbations) == 2]
    assert composite, "with max_perturbations 2 a success must be followed by a second perturbation"
    assert all(len(set(o.perturbations)) == len(o.perturbations) for o in seen)
    assert searcher.pi_p_fail() is None  # pi has no P(fail) meaning in the sequential setting
    table = failure_table(seen, Catalog.load().subset(names))
    names_seen = {" + ".join(sorted(o.perturbations)) for o in composite}
    assert {m.name for m in table.composites} == names_seen
    assert sum(m.trials + m.sim_errors for m in table.composites) == len(composite)
    assert sum(m.trials for m in table.modes if m.name in names) == len(seen) - len(composite)


def test_a_search_without_a_run_folder_leaves_no_log_folder_behind(tmp_path, monkeypatch):
    # SB3 makes tempdir/SB3-<time> for a model that logs nowhere; a benchmark left hundreds.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("SB3_LOGDIR", raising=False)
    searcher, seen = train(RATES, 64, 0)
    assert len(seen) == 64
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("budget, spent", [(3, 0), (70, 64), (64, 64)])
def test_a_budget_that_is_not_a_whole_number_of_steps_says_what_it_left_unspent(budget, spent):
    # n_envs = 8 episodes a step: a budget of 3 used to end with no episode and no word why.
    evaluator, seen = SyntheticEvaluator(RATES), []
    ctx = SearchContext(evaluator, budget, 0, 1, evaluator.reference_image(), seen.extend)
    make_searcher("ppo", list(RATES), 0).search(ctx)
    assert len(seen) == spent
    if spent == budget:
        assert ctx.stop_reason is None
    else:
        assert f"last {budget - spent} episode(s) of the budget make no whole step" in ctx.stop_reason


def test_an_extended_ppo_search_goes_on_from_the_weights_of_the_run_it_extends(tmp_path):
    from stable_baselines3 import PPO

    from robofail_ros.core.config import load_search_config
    from robofail_ros.core.provenance import PolicyRecord
    from robofail_ros.core.run import RunObserver, recorded_config, run_search

    class KnownPolicy(SyntheticEvaluator):  # what run_search asks of an evaluator beside episodes
        def policy_record(self):
            return PolicyRecord(spec="known", name="known", source="a synthetic policy", sha256="0" * 64)

    rates = {"shaky_arm": 0.9, "laggy_arm": 0.3, "very_heavy_cube": 0.0}
    config = load_search_config().replace(searcher="ppo", budget=32, nominal_episodes=0, perturbations=tuple(rates),
                                          report=False, num_workers=1, top_k=1)
    run_search(config, tmp_path / "first", evaluator=KnownPolicy(rates))
    assert PPO.load(tmp_path / "first" / "ppo" / "latest.zip").num_timesteps == 32
    extended = recorded_config(tmp_path / "first").replace(budget=64)
    result = run_search(extended, tmp_path / "extended", evaluator=KnownPolicy(rates), extend=tmp_path / "first")
    assert result.episodes == 64
    # Trained on all 64 episodes: a fresh PPO would have counted only the extension's 32.
    assert PPO.load(tmp_path / "extended" / "ppo" / "latest.zip").num_timesteps == 64

    class StopAtOnce(RunObserver):
        def should_stop(self):
            return True
    # An extension stopped before its first episode, and whose copy of the weights is lost (a process
    # killed between writing run.json and copying them): resumed, it takes them up again.
    cancelled = run_search(extended, tmp_path / "resumed", evaluator=KnownPolicy(rates), extend=tmp_path / "first",
                           observer=StopAtOnce())
    assert cancelled.cancelled and cancelled.episodes == 32
    (tmp_path / "resumed" / "ppo" / "latest.zip").unlink()
    assert run_search(extended, tmp_path / "resumed", evaluator=KnownPolicy(rates), resume=True).episodes == 64
    assert PPO.load(tmp_path / "resumed" / "ppo" / "latest.zip").num_timesteps == 64


@pytest.mark.slow
def test_a_ppo_search_asks_for_the_same_episodes_on_one_worker_as_on_two(tmp_path):
    """With one worker the episodes run in the searcher's own process, where the robomimic policy
    seeds torch's generator at every episode; PPO samples its perturbations from that generator.
    An episode must leave it as it found it, or the search would depend on the worker count."""
    from robofail_ros.core.config import load_search_config
    from robofail_ros.core.run import run_search
    from robofail_ros.core.store import RunStore
    config = load_search_config().replace(searcher="ppo", policy="lift_bc_low_dim", budget=24, nominal_episodes=0,
                                          report=False)
    asked = {}
    for workers in (1, 2):
        run_search(config.replace(num_workers=workers), tmp_path / f"w{workers}")
        store = RunStore.open(tmp_path / f"w{workers}")
        asked[workers] = [(o.episode_id, o.perturbations, o.seed) for o in store.outcomes()]
        store.close()
    assert len(asked[1]) == 24 and asked[1] == asked[2]
