"""The benchmark scripts that `robofail bench` runs and no other test starts whole, run on a small
workload: a script that no longer runs against the package is found here, not by a user. (The
simulator-bound ones, 20-40 s each even small, run in `robofail bench --quick`.)"""
import dataclasses
import json
import pathlib
import subprocess

import pytest

from robofail_ros.core.policies.bundled import bundled_policies
from robofail_ros.core.stats import Goal

REPO = pathlib.Path(__file__).resolve().parents[1]

SYNTHETIC = {  # script: (small arguments, what its JSON must hold)
    "search_efficiency.py": (["--profiles", "dominant", "--searchers", "uniform", "identify", "--repeats", "1",
                              "--coverage-runs", "2"],
                             lambda r: [row["searcher"] for row in r["profiles"][0]["rows"]] == ["uniform", "identify"]
                             and r["coverage"]["runs"] == 2),
    "top3_stability.py": (["--profiles", "dominant", "--searchers", "identify", "--repeats", "1"],
                          lambda r: list(r["profiles"]) == ["dominant"] and list(r["profiles"]["dominant"]) == ["identify"]),
    "search_breadth.py": (["--profiles", "dominant", "--searchers", "identify", "--repeats", "1"],
                          lambda r: {(row["profile"], row["searcher"]) for row in r["rows"]} == {("dominant", "identify")}),
    "classification.py": (["--profiles", "brittle", "--searchers", "identify", "--budgets", "240", "--repeats", "1"],
                          lambda r: [(row["profile"], row["episodes"], row["failing_modes"]) for row in r["rows"]]
                          == [("brittle", 240, 30)] and r["rows"][0]["classified_share"] == 1.0),
    "random_profiles.py": (["--draws", "2", "--repeats", "1", "--searchers", "identify"],
                           lambda r: r["draws"] == 2 and r["profiles"] and all(set(p["searchers"]) == {"identify"} for p in r["profiles"])),
}
RECORD_THE_GOAL = {"search_efficiency.py", "search_breadth.py", "classification.py", "random_profiles.py"}


@pytest.mark.parametrize("script", SYNTHETIC)
def test_a_search_benchmark_runs_and_writes_its_rows(script, python, tmp_path):
    argv, holds = SYNTHETIC[script]
    out = tmp_path / "result.json"
    done = subprocess.run([python, REPO / "bench" / script, *argv, "--json", out], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert holds(result), out.read_text()[:3000]
    # the goal as a mapping a reader can load (it was its repr, "Goal(top_k=3, ...)")
    assert result.get("goal") == (dataclasses.asdict(Goal()) if script in RECORD_THE_GOAL else None)


def test_the_lift_comparison_runs_its_models_and_reports_them(python, tmp_path):
    out = tmp_path / "comparison.json"
    done = subprocess.run([python, REPO / "bench" / "lift_comparison.py", "--models", "lift_bc_low_dim", "--budget", "2",
                           "--json", out], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(out.read_text())["models"]
    assert [(r["model"], r["episodes"]) for r in rows] == [("lift_bc_low_dim", 22)]  # 20 unperturbed + 2
    lift = sum(p.task == "Lift" for p in bundled_policies())  # the target is for all of them: one is not judged
    assert f"for 1 model (target <= 30 min: not judged: 1 of the {lift} bundled Lift models)" in done.stdout, done.stdout
    wrong = subprocess.run([python, REPO / "bench" / "lift_comparison.py", "--models", "lift_bc_lowdim"],
                           capture_output=True, text=True, timeout=120)
    assert wrong.returncode == 2 and "Did you mean 'lift_bc_low_dim'" in wrong.stderr and "Traceback" not in wrong.stderr
