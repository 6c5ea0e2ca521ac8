"""The recorded ground truths in bench/data/, whose real episodes the search-efficiency benchmark
replays: each must still be the truth of a checkpoint this package ships, over its task's whole
catalog, or the benchmark's numbers would describe a policy nobody can run."""
import collections
import csv
import pathlib
import re

import pytest

from robofail_ros.core.perturbations import Catalog
from robofail_ros.core.policies.bundled import bundled_policies

TRUTHS = sorted((pathlib.Path(__file__).resolve().parents[1] / "bench" / "data").glob("ground_truth_*.csv"))


def test_the_four_recorded_truths_are_here():
    assert [p.name for p in TRUTHS] == ["ground_truth_lift_bc_rnn_low_dim.csv", "ground_truth_pickplacecan_bc_low_dim.csv",
                                        "ground_truth_push_bc_low_dim.csv", "ground_truth_stack_bc_low_dim.csv"]


@pytest.mark.parametrize("path", TRUTHS, ids=lambda p: p.stem)
def test_a_recorded_truth_is_of_a_shipped_checkpoint_and_covers_its_task_catalog(path):
    text = path.read_text()
    made_by = re.search(r"^# policy: (\S+) sha256 ([0-9a-f]{64})$", text, re.M)
    assert made_by, f"{path.name} does not name the checkpoint that made it"
    shipped = {p.name: p for p in bundled_policies()}
    policy = shipped[made_by.group(1)]
    # A retrained checkpoint under the same name would make the file the truth of another policy.
    assert policy.sha256 == made_by.group(2)
    assert re.search(r"^# made with: robofail evaluate .*--episodes 40 ", text, re.M)  # the command to make it again
    # A catalog entry edited since would leave the file the truth of perturbations that no longer exist.
    catalog = Catalog.load().for_task(policy.task)
    assert re.search(r"^# catalog: (\S+) ([0-9a-f]{16})$", text, re.M).groups() == (policy.task, catalog.digest()), \
        f"the {policy.task} catalog changed since {path.name} was recorded: make it again with the command in its header"
    rows = list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))
    episodes = collections.Counter(row["perturbation"] for row in rows)
    assert set(episodes) == set(catalog.names) | {"none"}
    assert set(episodes.values()) == {40}
    assert {row["success"] for row in rows} == {"0", "1"}
    assert len({row["seed"] for row in rows}) == len(rows)  # every episode its own scene


def test_a_truth_exported_from_a_run_records_its_catalog_and_is_flagged_once_the_catalog_differs(tmp_path, capsys,
                                                                                                  efficiency_bench):
    """`bench/search_efficiency.py --export` writes the run's catalog digest into the header, and
    the bench says so when it loads a truth (CSV or run folder) recorded under other perturbation definitions."""
    bench = efficiency_bench
    from robofail_ros.core.episode import EpisodeOutcome
    from robofail_ros.core.provenance import PolicyRecord
    from robofail_ros.core.store import RunStore

    catalog = Catalog.load().for_task("Push")
    edited = catalog.definitions()
    edited["shaky_arm"] = {**edited["shaky_arm"], "std": 123.0}
    for folder, definitions in (("same", catalog.definitions()), ("edited", edited)):
        store = RunStore.create(tmp_path / folder, {"task": "Push"}, PolicyRecord(spec="p", name="p", source="a test"),
                                definitions)
        for episode, names in enumerate([(), ("shaky_arm",), ("shaky_arm",), ("red_table",)]):
            store.append(EpisodeOutcome(names, seed=episode, success=episode != 1, steps=10, sim_error=None,
                                        episode_id=episode, worker="w0"))
        store.close()
        bench.export_ground_truth(tmp_path / folder, tmp_path / f"{folder}.csv", "a test")
        digest = re.search(r"^# catalog: Push ([0-9a-f]{16})$", (tmp_path / f"{folder}.csv").read_text(), re.M).group(1)
        assert (digest == catalog.digest()) == (folder == "same")
        for source in (tmp_path / f"{folder}.csv", tmp_path / folder):
            capsys.readouterr()
            truth, unperturbed = bench.load_ground_truth(source)
            assert truth == {"shaky_arm": [False, True], "red_table": [True]} and unperturbed == (0, 1)
            assert ("other Push perturbation definitions" in capsys.readouterr().err) == (folder == "edited")
