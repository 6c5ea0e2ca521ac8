"""The benchmark scripts that `robofail bench` runs and no other test starts, run on a small
workload: a script that no longer runs against the package is found here, not by a user."""
import json
import pathlib
import subprocess

from robofail_ros.core.policies.bundled import bundled_policies

REPO = pathlib.Path(__file__).resolve().parents[1]


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
