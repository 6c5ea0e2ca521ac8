"""The core's Python API as the README shows it: a whole search from a user's script."""
import pathlib
import re
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def readme_search_script() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    return next(block for block in blocks if "run_search(config" in block)


def run_script(python, tmp_path, text):
    script = tmp_path / "my_search.py"
    script.write_text(text)
    return subprocess.run([python, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600)


def test_the_readme_s_search_script_runs_and_prints_each_mode_s_class_rank_and_bounds(python, tmp_path):
    result = run_script(python, tmp_path, readme_search_script())
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in lines[:-1]}
    assert set(rows) == {"shaky_arm", "red_table", "dim_light"}, result.stdout
    # shaky_arm fails 88% of its episodes with the bundled policy (BENCHMARKS.md 4), the other two never.
    assert lines[0].startswith("shaky_arm fails 1 ") and rows["red_table"][:2] == ["undecided", "None"], result.stdout
    assert (tmp_path / "runs" / "from-python" / "summary.json").is_file()


def test_a_script_whose_search_is_not_guarded_is_told_the_fix_and_nothing_runs_twice(python, tmp_path):
    unguarded = readme_search_script().replace('if __name__ == "__main__":\n', "").replace("\n    ", "\n")
    assert "__main__" not in unguarded
    result = run_script(python, tmp_path, unguarded)
    assert result.returncode != 0
    assert 'a search was started by a worker process while it imported the script' in result.stderr
    assert 'put the script\'s search under `if __name__ == "__main__":`' in result.stderr
    assert "died" in result.stderr and "while starting, before its first episode (its own error is above)" in result.stderr
    assert "in use by another robofail process" not in result.stderr, "a worker must not get as far as the run folder"


@pytest.mark.parametrize("out", [None, "", "  ", 7])
def test_a_run_folder_that_is_no_path_is_refused_before_anything_runs(tmp_path, monkeypatch, out):
    """An empty path would have made the current folder the run folder."""
    from robofail_ros.core.config import load_search_config
    from robofail_ros.core.errors import ConfigError
    from robofail_ros.core.run import run_search
    monkeypatch.chdir(tmp_path)
    config = load_search_config().replace(budget=1, nominal_episodes=0, num_workers=1, report=False)
    with pytest.raises(ConfigError, match=r"the run folder must be a path \(str or pathlib.Path\), got "):
        run_search(config, out)
    assert not list(tmp_path.iterdir())
