"""The command line's progress bars into a log file (stderr captured: no terminal), where every
redraw is appended: the last line comes once, when the work ends. Redraws are allowed at every
step here (``LOG_REDRAW_S`` 0), as in a search whose episodes come slower than the redraw interval."""
import json
import subprocess

import pytest

from robofail_ros import progress
from robofail_ros.progress import ProgressBar


@pytest.fixture(autouse=True)
def redraw_at_every_step(monkeypatch):
    monkeypatch.setattr(progress, "LOG_REDRAW_S", 0)


def test_a_search_s_bar_prints_its_last_line_once(capsys):
    bar = ProgressBar(3, "identify")
    for failures in (0, 1, 1):
        bar.tick(failures=failures)
    bar.close()
    log = capsys.readouterr().err
    assert "2/3" in log and log.count("3/3") == 1, log  # a redraw at the total and close()'s gave it twice
    assert log.endswith("\n")  # what is printed next starts a line of its own


def test_a_search_that_stops_before_its_budget_prints_its_last_line_once(capsys):
    """identify may stop early: the bar never reaches its total, and the redraw at the last episode
    and close()'s gave "6/10" twice; a status that changes at the same count is drawn."""
    bar = ProgressBar(10, "identify")
    for _ in range(6):
        bar.tick(failures=1)
    bar.close()
    stopped = capsys.readouterr().err
    bar = ProgressBar(10, "search")
    bar.tick(4, state="running")
    bar.tick(0, state="cancelled")
    bar.close()
    cancelled = capsys.readouterr().err
    assert "5/10" in stopped and stopped.count("6/10") == 1 and stopped.endswith("\n"), stopped
    assert cancelled.count("4/10") == 2 and cancelled.count("state=cancelled") == 1, cancelled


def test_ros_run_s_bar_prints_its_last_line_once_as_the_search_ends_and_a_next_goal_gets_its_own(capsys):
    """ros-run follows the search node's ~/status: the "finished" status closes the bar (closed only
    as ros-run exited, the last line came twice, once at that status and once at exit)."""
    from std_msgs.msg import String

    from robofail_ros.nodes.bringup import StatusBar

    def status(state, episodes):
        return String(data=json.dumps({"state": state, "run_id": "r", "episodes": episodes, "budget": 10,
                                       "failures": 1, "worst": {"name": "small_table", "p_fail": 1.0}, "message": ""}))

    bar = StatusBar()
    try:
        for state, episodes in (("running", 4), ("running", 10), ("finished", 10)):
            bar._update(status(state, episodes))
        ended = capsys.readouterr().err
        bar._update(status("running", 2))  # the next goal on the same node
        bar._update(status("cancelled", 3))
        cancelled = capsys.readouterr().err
    finally:
        bar.close()
    assert "4/10" in ended and ended.count("10/10") == 1 and "state=finished" in ended, ended
    assert "2/10" in cancelled and cancelled.count("3/10") == 1 and "state=cancelled" in cancelled, cancelled
    assert "state=finished" not in cancelled
    assert capsys.readouterr().err == ""  # closing ros-run adds no line


def test_a_completed_bar_waiting_for_its_close_is_not_redrawn_by_tqdm_s_monitor(python, tmp_path):
    """ros-run's bar reaches its total at the last "running" status and closes at "finished", after
    the report: meanwhile tqdm's monitor thread redrew it (260/260 ... state=running, then again
    at close). Its intervals are shortened here in a process of its own, where the monitor starts."""
    script = tmp_path / "waiting_bar.py"
    script.write_text(
        "import time, tqdm\n"
        "tqdm.tqdm.monitor_interval = 0.05\n"
        "from robofail_ros import progress\n"
        "progress.LOG_REDRAW_S = 0.2\n"
        "bar = progress.ProgressBar(100, 'search')\n"
        "bar.maxinterval = 0.5\n"
        "for _ in range(100):\n"
        "    bar.tick(state='running')\n"
        "    time.sleep(0.005)\n"
        "time.sleep(1.5)  # the report is written\n"
        "bar.tick(0, state='finished')\n"
        "bar.close()\n")
    done = subprocess.run([python, script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("100/100") == 1 and "state=finished" in done.stderr, done.stderr
