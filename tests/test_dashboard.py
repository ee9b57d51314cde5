"""course_lib.dashboard on the session's real 2-engine cluster: the live view sees
tasks start and end on their engines and the engines' memory while work runs, draws
both, refuses bad input before doing anything, and one view per cluster runs."""

import threading
import time

import pytest

from course_lib._dashboard_svg import memory_chart, timeline_chart
from course_lib.dashboard import ClusterDashboard, watch

#: Seconds a test waits for something the view must show (a busy 2-core machine).
PATIENCE_S = 120


def wait_for_file(path, timeout=PATIENCE_S):
    """Run on an engine: a task that lasts until ``path`` exists."""
    import os
    import time

    deadline = time.monotonic() + timeout
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    return os.getpid()


def _until(condition, what):
    deadline = time.monotonic() + PATIENCE_S
    while not condition():
        assert time.monotonic() < deadline, f"the view never showed {what} in {PATIENCE_S} s"
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("target", "interval", "error", "match"),
    [
        ("my cluster", 0.5, TypeError, "'my cluster'"),
        (None, 0.5, TypeError, "None"),
        ("client", 0, ValueError, "interval == 0"),
        ("client", 5, ValueError, "interval == 5"),
        ("client", True, TypeError, "True"),
        ("client", "fast", TypeError, "'fast'"),
    ],
)
def test_bad_input_is_refused_before_any_work(request, target, interval, error, match):
    if target == "client":
        target = request.getfixturevalue("client")
    threads = threading.active_count()
    with pytest.raises(error, match=match):
        watch(target, interval, display=False)
    assert threading.active_count() == threads


def test_the_view_shows_tasks_running_and_done_and_engine_memory(client, tmp_path):
    flag = tmp_path / "go"
    lview = client.load_balanced_view()
    view = watch(client, interval=0.2, display=False)
    try:
        tasks = [lview.apply_async(wait_for_file, str(flag)) for _ in client.ids]
        # While both tasks run, the view updates and shows each on its engine.
        _until(lambda: sum(t["end_s"] is None for t in view.tasks) == 2, "2 running tasks")
        running = sorted(t["engine_id"] for t in view.tasks if t["end_s"] is None)
        assert running == sorted(client.ids)
        frames = view.frames
        _until(lambda: view.frames >= frames + 3, "updates while the tasks run")
        assert view._tasks_pane.value.count('class="task running"') == 2
        flag.touch()
        pids = {task.get(timeout=PATIENCE_S) for task in tasks}
        _until(lambda: sum(t["end_s"] is not None for t in view.tasks) == 2, "2 finished tasks")
        # Busy engines answer where they are only after their task: then their memory shows.
        _until(lambda: len(view._pids) == len(client.ids), "every engine located")
    finally:
        view.stop()
    done = view.tasks
    assert sorted(t["engine_id"] for t in done) == sorted(client.ids)
    for task in done:
        assert 0 <= task["start_s"] <= task["end_s"], task
    assert view._tasks_pane.value.count('class="task done"') == 2
    # Memory: every engine (all on this host), by the PIDs the tasks reported.
    last = view.memory[-1]
    assert sorted(last["engines"]) == sorted(client.ids)
    assert sorted(view._pids.values()) == sorted(pids)
    for memory in last["engines"].values():
        assert memory["rss_mb"] >= memory["pss_mb"] > 0
    assert 0 < last["host_free_mb"] <= last["host_total_mb"]
    assert view._memory_pane.value.count("<polyline") == 2 * len(client.ids)
    assert "stopped after" in view._status.value
    # Stopped means stopped: no more updates.
    frames = view.frames
    time.sleep(0.5)
    assert view.frames == frames and not view.running


def test_the_view_counts_the_work_only_not_its_own_requests(client):
    lview = client.load_balanced_view()
    with watch(client, interval=0.2, display=False) as view:
        squares = lview.map_sync(pow, range(4), [2] * 4)
    assert squares == [0, 1, 4, 9]
    assert len(view.tasks) <= 4  # tasks shorter than the poll may go unseen, never more
    assert all(t["label"].startswith("task ") for t in view.tasks)


def test_watching_again_stops_the_earlier_view(client):
    first = watch(client, display=False)
    second = watch(client, display=False)
    try:
        assert not first.running and second.running
    finally:
        second.stop()
    assert not second.running
    assert second.stop() is second  # stopping twice is harmless
    with pytest.raises(RuntimeError, match="already been started"):
        second.start()


def test_the_widget_is_one_box_of_three_panes(client):
    view = ClusterDashboard(client)
    assert "course-dashboard" in view.widget._dom_classes
    assert [p._dom_classes for p in view.widget.children] == [("course-dashboard-pane",)] * 3
    assert "application/vnd.jupyter.widget-view+json" in view._repr_mimebundle_()


def test_charts_draw_every_engine_and_task():
    samples = [
        {"time_s": t, "engines": {e: {"rss_mb": 100 + t, "pss_mb": 60 + t} for e in (0, 1, 2)}}
        for t in range(10)
    ]
    svg = memory_chart(samples)
    assert svg.count("<polyline") == 6 and "engine 2: PSS 69, RSS 109" in svg
    long_run = [{**samples[0], "time_s": t / 2} for t in range(3000)]  # 25 minutes
    points = memory_chart(long_run).split("<polyline", 2)[1].split('"')[1].split()
    assert 100 <= len(points) <= 300  # thinned, from the first sample to the last
    tasks = [
        {"engine_id": i % 3, "start_s": i, "end_s": i + 0.5, "label": f"<fit {i}>"}
        for i in range(9)
    ]
    svg = timeline_chart(tasks, [0, 1, 2], now_s=9.0)
    assert svg.count('class="task done"') == 9
    assert "&lt;fit 3&gt;" in svg and "<fit" not in svg  # labels are escaped
    assert svg.count("3 tasks, busy 1.5 s") == 3
