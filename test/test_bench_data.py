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
    rows = list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))
    episodes = collections.Counter(row["perturbation"] for row in rows)
    assert set(episodes) == set(Catalog.load().for_task(policy.task).names) | {"none"}
    assert set(episodes.values()) == {40}
    assert {row["success"] for row in rows} == {"0", "1"}
    assert len({row["seed"] for row in rows}) == len(rows)  # every episode its own scene
