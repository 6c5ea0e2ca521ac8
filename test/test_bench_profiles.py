"""The synthetic failure profiles of the search-efficiency benchmark: widening one to a larger
catalog (`--modes`) keeps its own modes and adds more at its rest rate, and a catalog too small
for its own modes is refused."""
import pytest


def test_a_widened_profile_keeps_its_modes_and_adds_more_at_its_rest_rate(efficiency_bench):
    bench = efficiency_bench
    for name, rates in {**bench.SYNTHETIC, **bench.HELD_OUT}.items():
        assert bench.synthetic_rates(name) == rates  # the default size is the profile as listed
        wide = bench.synthetic_rates(name, 200)
        own = [r for r in rates if r != rates[-1]]
        assert len(wide) == 200 and [r for r in wide if r != rates[-1]] == own and wide[:len(own)] == own
    rates, intervals, _ = bench.truth_of("weak", None, 200)
    assert len(rates) == 200 and sorted(rates.values())[-4:] == [0.3, 0.5, 0.7, 0.9] and list(rates.values()).count(0.1) == 196
    assert intervals["mode_199"] == pytest.approx((0.07, 0.13))


def test_a_catalog_too_small_for_a_profile_s_own_modes_is_refused(efficiency_bench):
    with pytest.raises(SystemExit, match="lists 13 modes before its rest at 0.0; give more than 13"):
        efficiency_bench.synthetic_rates("many_mid", 13)
