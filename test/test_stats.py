"""The statistics decisions rest on: anytime-valid bounds that survive peeking, the classes
and the top-k they settle, and a goal that refuses nonsense."""
import numpy as np
import pytest

from robofail_ros.core.config import config_from_params, load_search_config
from robofail_ros.core.errors import ConfigError
from robofail_ros.core.search import make_searcher
from robofail_ros.core.stats import (FAILS, LEFT_OUT, SAFE, UNDECIDED, UNTRIED, Goal, assess, confidence_sequence,
                                     episodes_to_show_safe, wilson_bounds)


def test_bounds_are_the_whole_range_without_trials_and_always_hold_the_estimate():
    low, high = confidence_sequence([0, 0, 3, 7, 10], [0, 10, 10, 10, 10])
    assert (low[0], high[0]) == (0.0, 1.0)
    p_hat = np.array([0.5, 0.0, 0.3, 0.7, 1.0])
    assert (low <= p_hat + 1e-9).all() and (p_hat - 1e-9 <= high).all()
    assert low[1] == 0.0 and high[4] == 1.0
    # More modes at once: wider bounds. More trials: narrower.
    low58, high58 = confidence_sequence([30], [100], 0.95, 58)
    low1, high1 = confidence_sequence([30], [100], 0.95, 1)
    assert low58 < low1 < 0.3 < high1 < high58
    assert np.diff(confidence_sequence([3, 30, 300], [10, 100, 1000])[1] - confidence_sequence([3, 30, 300], [10, 100, 1000])[0]).max() < 0


def test_bounds_are_where_the_mixture_martingale_crosses_one_over_alpha():
    """The defining property, at each bound, whatever was computed (and remembered) before."""
    from scipy.special import betaln
    confidence_sequence([3, 40], [10, 100], 0.95, 58)  # other levels first: the memo must keep levels apart
    cases = [(0, 5), (3, 10), (40, 100), (99, 100), (250, 1000)]
    for confidence, modes in ((0.95, 1), (0.95, 58), (0.99, 301)):
        log_bar = np.log(modes / (1 - confidence))
        f, n = np.array(cases, dtype=float).T
        low, high = confidence_sequence(f, n, confidence, modes)
        for fi, ni, lo, hi in zip(f, n, low, high):
            def log_m(p):
                return (betaln(0.5 + fi, 0.5 + ni - fi) - betaln(0.5, 0.5)
                        - (fi * np.log(p) if fi else 0.0) - ((ni - fi) * np.log1p(-p) if ni > fi else 0.0))
            assert log_m(fi / ni) < log_bar  # the estimate is inside
            if fi > 0:
                step = min(1e-6, lo / 2)
                assert log_m(lo - step) >= log_bar > log_m(lo + step)
            if ni > fi:
                step = min(1e-6, (1 - hi) / 2)
                assert log_m(hi - step) < log_bar <= log_m(hi + step)
    # The shape of the input is kept (a table of modes stays a table).
    low, high = confidence_sequence([[1, 2], [0, 0]], [[2, 4], [0, 3]])
    assert low.shape == high.shape == (2, 2) and (low[1, 0], high[1, 0]) == (0.0, 1.0)


def test_anytime_bounds_survive_checking_after_every_episode_where_wilson_does_not():
    """Peeking after every one of 300 episodes: the anytime bounds exclude the truth at some
    moment in at most 5% of streams; a fixed-n 95% Wilson interval does so far more often."""
    rng = np.random.default_rng(0)
    streams, p = 300, 0.3
    draws = rng.random((streams, 300)) < p
    failures = draws.cumsum(axis=1).ravel()
    trials = np.tile(np.arange(1, 301), streams)
    low, high = confidence_sequence(failures, trials, 0.95, 1)
    missed_cs = ((low > p) | (high < p)).reshape(streams, 300).any(axis=1).mean()
    low, high = wilson_bounds(failures, trials, 0.95)
    missed_wilson = ((low > p) | (high < p)).reshape(streams, 300).any(axis=1).mean()
    assert missed_cs <= 0.05, missed_cs
    assert missed_wilson > 0.2, missed_wilson


@pytest.mark.parametrize("threshold, modes", [(0.1, 58), (0.2, 58), (0.05, 5), (0.6, 2)])
def test_episodes_to_show_safe_is_the_first_count_whose_bound_falls_below_the_threshold(threshold, modes):
    n = episodes_to_show_safe(threshold, 0.95, modes)
    # What the verdict tells the user is what assess decides: modes - 1 perturbations and the unperturbed scene.
    never_failed = np.zeros(modes - 1)
    assert set(assess(never_failed, never_failed + n, Goal(top_k=1, margin=threshold)).status) == {SAFE}
    assert set(assess(never_failed, never_failed + n - 1, Goal(top_k=1, margin=threshold)).status) == {UNDECIDED}


def test_no_count_shows_a_mode_safe_at_a_threshold_of_0():
    assert episodes_to_show_safe(0.0, 0.95, 58) is None


def test_assess_classifies_and_settles_the_top_k():
    goal = Goal(top_k=2, margin=0.1, confidence=0.95, tolerance=0.05)
    #                 certain  half   never   unclear  untried
    failures = np.array([30, 45, 0, 1, 0])
    trials = np.array([30, 90, 150, 5, 0])
    verdict = assess(failures, trials, goal)
    assert verdict.status == (FAILS, FAILS, SAFE, UNDECIDED, UNTRIED)
    assert verdict.threshold == pytest.approx(0.1)
    assert verdict.top == (0, 1) and not verdict.top_settled  # the untried mode could still be worse
    verdict = assess(failures[:4], trials[:4] + np.array([0, 0, 0, 200]), goal)
    assert verdict.status[3] == SAFE and verdict.top == (0, 1) and verdict.top_settled
    # The unperturbed failure rate raises the bar: 45/90 is not "clearly worse" than 0.45 + 0.1.
    assert assess(failures, trials, goal, nominal_failures=45, nominal_trials=100).status[1] == UNDECIDED


def test_assess_settles_the_order_of_the_top_k_apart_from_the_set():
    goal = Goal(top_k=2, margin=0.1, confidence=0.95, tolerance=0.05)
    trials = np.array([60, 60, 200, 200])
    # 0.9 and 0.5: far above the never-failing modes and far apart.
    verdict = assess(np.array([54, 30, 0, 0]), trials, goal)
    assert verdict.top == (0, 1) and verdict.top_settled and verdict.unordered == ()
    # 0.55 and 0.5: which two are the worst is known, in which order is not.
    verdict = assess(np.array([33, 30, 0, 0]), trials, goal)
    assert verdict.top == (0, 1) and verdict.top_settled and verdict.unordered == ((0, 1),)


def test_equal_modes_are_ordered_by_the_tiebreak_given_else_by_listing():
    goal = Goal(top_k=1)
    failures, trials = np.array([5, 5, 5, 0]), np.array([10, 10, 10, 10])
    assert assess(failures, trials, goal).top == (0,)
    assert assess(failures, trials, goal, tiebreak=np.array([2, 0, 1, 3])).top == (1,)
    assert assess(failures, trials, goal, tiebreak=np.array([2, 1, 0, 3])).rest[:2] == (1, 0)


@pytest.mark.parametrize("params, message", [
    ({"top_k": 0}, "top_k must be >= 1"),
    ({"top_k": 2.5}, "top_k must be a whole number"),
    ({"margin": 1.5}, r"margin must be in \[0, 1\)"),
    ({"margin": -0.1}, r"margin must be in \[0, 1\)"),
    ({"confidence": 1.0}, r"confidence must be in \(0, 1\)"),
    ({"tolerance": True}, "tolerance must be a number"),
    ({"budget": True}, "budget must be a whole number"),
    ({"horizon": 50.7}, "horizon must be a whole number"),
    ({"perturbations": "red_cube"}, "perturbations must be a list"),
    # A searcher's hyperparameters are checked against their defaults' types, not left to fail
    # deep inside the search ("'<' not supported between 'int' and 'str'").
    ({"identify": {"target_width": "wide"}}, r"searcher 'identify': target_width must be float \(a number\) like its default 0.3"),
    ({"identify": {"min_trials": True}}, r"min_trials must be int \(a whole number\) like its default 1, got True"),
    ({"identify": {"classify_share": float("inf")}}, "classify_share must be a finite number"),
    # A value out of range is named with its rule and the value given, one setting at a time.
    ({"identify": {"breadth_cap": 0.5}}, r"identify: breadth_cap must be >= 1 \(a large number turns it off\), got 0.5"),
    ({"identify": {"rank_share": 0.0}}, r"identify: rank_share must be > 0, got 0.0"),
    ({"identify": {"min_trials": 5}}, r"identify: discover_trials must be >= min_trials \(5\), got 4"),
    ({"ppo": {"gamma": 1.5}}, r"ppo: gamma must be in \[0, 1\], got 1.5"),
    ({"ppo": {"n_epochs": 0}}, r"ppo: n_epochs must be >= 1, got 0"),
    ({"ppo": {"device": "gpu"}}, r"ppo: device must be auto, cpu or cuda"),
    ({"ppo": {"observation": "pixels"}}, r"ppo: observation must be one of applied, image, got 'pixels'"),
    ({"cross_entropy": {"floor": 1.0}}, r"cross_entropy: floor must be in \[0, 1\), got 1.0"),
    ({"ppo": {"n_steps": 2.5}}, r"n_steps must be int \(a whole number\)"),
    ({"ppo": {"learning_rate": "1e-3"}}, "YAML reads 1e-3 as text: write it with a dot"),
    ({"ppo": {"normalize_advantage": "yes"}}, r"normalize_advantage must be bool \(true or false\)"),
])
def test_bad_goals_and_types_get_a_clear_error(params, message):
    with pytest.raises(ConfigError, match=message):
        config_from_params(params)


def test_top_k_larger_than_the_catalog_is_refused():
    with pytest.raises(ConfigError, match="top_k is 5 but only 3 perturbation"):
        make_searcher("identify", ["a", "b", "c"], 0, None, Goal(top_k=5))


@pytest.mark.parametrize("content, message", [
    (b"- a\n- b\n", "a ROS 2 parameter file is a mapping"),
    (b"/**:\n  ros__parameters: [1, 2]\n", "ros__parameters must map parameter names to values"),
    (b"\x00\xff\xfe", "not valid YAML"),  # a binary file given by mistake
    # PyYAML alone keeps the last of two equal keys without a word
    (b"/**:\n  ros__parameters:\n    budget: 10\n    top_k: 2\n    budget: 20\n",
     r"'budget' is given twice \(lines 3 and 5\); keep one of them"),
    # node-only parameters are checked when the file is read, before ros-run starts any node
    (b"/**:\n  ros__parameters:\n    budget: 10\nsearch_node:\n  ros__parameters:\n    episode_timeout_s: abc\n",
     r"'search_node': episode_timeout_s must be a positive number of seconds, got 'abc'"),
    (b"/**:\n  ros__parameters:\n    budget: 10\n/**/sim_node:\n  ros__parameters:\n    action_timeout_s: -1\n",
     r"'/\*\*/sim_node': action_timeout_s must be a positive number of seconds, got -1"),
    (b"/**:\n  ros__parameters:\n    budget: 10\n/**/sim_node:\n  ros__parameters:\n    horizon: 10\n",
     r"'/\*\*/sim_node' takes only action_timeout_s .*got \['horizon'\]"),
])
def test_a_config_file_of_the_wrong_shape_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "search.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        load_search_config(path)


def test_a_config_path_that_is_a_folder_or_missing_is_named_as_such(tmp_path):
    with pytest.raises(ConfigError, match=f"config file {tmp_path} is a folder, not a file; start from .*search.yaml"):
        load_search_config(tmp_path)
    with pytest.raises(ConfigError, match="config file .*none.yaml does not exist; start from"):
        load_search_config(tmp_path / "none.yaml")


def test_numbers_in_exponent_notation_are_numbers_as_in_ros_parameter_files(tmp_path):
    # PyYAML (YAML 1.1) reads 1e-3 and 2.5e1 as text; ROS 2's parameter parser and YAML 1.2 read numbers.
    path = tmp_path / "search.yaml"
    path.write_text("/**:\n  ros__parameters:\n    margin: 1e-1\n    confidence: 9.5e-1\n    identify: {target_width: 2.5e-1}\n")
    config = load_search_config(path)
    assert (config.margin, config.confidence, config.searchers["identify"]["target_width"]) == (0.1, 0.95, 0.25)


def test_a_left_out_mode_holds_no_decision_open_and_the_bounds_still_count_it():
    goal = Goal(top_k=1)
    failures, trials = np.array([20, 0, 0]), np.array([20, 20, 0])
    open_ = assess(failures, trials, goal)
    assert not open_.top_settled and 2 in open_.rest  # an untried mode could still be the worst
    left = assess(failures, trials, goal, left_out=np.array([False, False, True]))
    assert left.status[2] == LEFT_OUT and 2 not in left.top + left.rest
    assert left.top == (0,) and left.top_settled
    assert (left.low == open_.low).all() and (left.high == open_.high).all()  # the same union bound
