"""course_lib.memory against the real 2-engine cluster.

No test here counts on how fast anything runs: a task holds its memory until the test,
having seen the monitor record it, lets it go (a file that appears), and the test waits
for samples instead of sleeping for a guessed while.
"""

import socket
import subprocess
import sys
import threading
import time

import matplotlib
import numpy as np
import psutil
import pytest

from course_lib.cluster import engine_pids
from course_lib.memory import MemoryMonitor, engine_memory, host_memory, process_memory

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MB = 2**20


def test_process_memory_of_this_process_grows_with_an_allocation():
    before = process_memory()
    assert before["rss_mb"] >= before["uss_mb"] > 0
    assert before["pss_mb"] is not None  # Linux reports PSS
    block = np.ones(100 * MB // 8)
    after = process_memory(psutil.Process().pid)
    assert after["uss_mb"] - before["uss_mb"] > 90
    del block


def test_process_memory_rejects_bad_pids():
    with pytest.raises(TypeError, match="'123'"):
        process_memory("123")
    with pytest.raises(TypeError, match="True"):
        process_memory(True)
    with pytest.raises(ValueError, match="-5"):
        process_memory(-5)
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    with pytest.raises(ValueError, match=str(finished.pid)):
        process_memory(finished.pid)


def test_engine_memory_covers_every_engine(client):
    report = engine_memory(client)
    assert sorted(report) == sorted(client.ids)
    pids = engine_pids(client)
    for engine_id, mem in report.items():
        assert mem["host"] == socket.gethostname()
        assert mem["pid"] == pids[engine_id]
        assert mem["rss_mb"] >= mem["uss_mb"] > 0
        assert mem["pss_mb"] > 0
        # The engine measured itself: its figures are those of its PID.
        assert abs(process_memory(mem["pid"])["rss_mb"] - mem["rss_mb"]) < 20


def test_engine_memory_of_a_view_covers_its_engines(client):
    assert sorted(engine_memory(client[:])) == sorted(client.ids)
    assert list(engine_memory(client[1])) == [1]
    assert sorted(engine_memory(client.load_balanced_view())) == sorted(client.ids)
    with pytest.raises(TypeError, match="'nope'"):
        engine_memory("nope")


_held = []


def _allocate(mb, seconds=0.0):
    """Run on an engine: allocate ``mb`` MiB (pages touched), hold them."""
    import time

    import numpy as np

    _held.append(np.ones(int(mb) * 2**20 // 8))
    time.sleep(seconds)


def _free():
    _held.clear()


def test_engine_memory_sees_what_one_engine_allocates(client):
    before = engine_memory(client)
    try:
        client[0].apply_sync(_allocate, 100)
        after = engine_memory(client)
    finally:
        client[:].apply_sync(_free)
    assert after[0]["uss_mb"] - before[0]["uss_mb"] > 90
    assert abs(after[1]["uss_mb"] - before[1]["uss_mb"]) < 20


def test_host_memory_is_keyed_by_the_real_host_name(client):
    report = host_memory(client)
    assert list(report) == [socket.gethostname()]
    mem = report[socket.gethostname()]
    assert mem["total_mb"] == psutil.virtual_memory().total / MB
    assert mem["total_mb"] > mem["available_mb"] > 0
    assert mem["used_mb"] == pytest.approx(mem["total_mb"] - mem["available_mb"])
    assert list(host_memory(client[:])) == [socket.gethostname()]
    with pytest.raises(TypeError, match="None"):
        host_memory(None)


def _hold_until(mb, flag):
    """Run on an engine: hold ``mb`` MiB until the file ``flag`` exists, free them, return."""
    import os
    import time

    import numpy as np

    block = np.ones(int(mb) * 2**20 // 8)
    while not os.path.exists(flag):
        time.sleep(0.01)
    del block


def _grown(monitor, engine_id, mb):
    """How many samples so far show engine ``engine_id`` more than ``mb`` MiB above baseline."""
    base = monitor.baseline_mb["engines"][engine_id]
    return sum(s["engines_mb"].get(engine_id, base) - base > mb for s in list(monitor.samples))


def test_monitor_sees_200_mb_on_a_busy_engine_and_plots_lines(client, tmp_path, wait_until):
    """The 200 MB live only inside a task: the engine cannot be asked, it is read by PID."""
    flag = tmp_path / "free"
    with MemoryMonitor(client, interval=0.05) as monitor:
        task = client[0].apply_async(_hold_until, 200, str(flag))
        try:
            wait_until(lambda: _grown(monitor, 0, 190), "the monitor sees engine 0's 200 MB")
            assert not task.ready()  # seen while the engine was busy with the task
        finally:
            flag.touch()
        task.get(timeout=120)
    growth = monitor.peak_growth_mb
    assert growth["engines"][0] > 190
    assert growth["engines"][1] < 30
    # Memory came back once the engine freed it: the last sample, taken on exit, shows that.
    last = monitor.samples[-1]["engines_mb"][0] - monitor.baseline_mb["engines"][0]
    assert last < 50
    # The baseline, at least one sample of the running task, the last word on exit.
    assert len(monitor.samples) >= 3
    assert monitor.samples[0]["engines_mb"] == monitor.baseline_mb["engines"]
    times = [s["time_s"] for s in monitor.samples]
    assert times == sorted(times) and times[0] >= 0

    ax = monitor.plot()
    try:
        labels = sorted(line.get_label() for line in ax.get_lines())
        assert labels == sorted(
            ["engine 0 (USS)", "engine 1 (USS)", f"host {socket.gethostname()} (used)"]
        )
        assert "(s)" in ax.get_xlabel() and "MiB" in ax.get_ylabel()
        engine0 = next(li for li in ax.get_lines() if li.get_label() == "engine 0 (USS)")
        assert max(engine0.get_ydata()) > 190
    finally:
        plt.close(ax.figure)


def test_monitor_asking_the_engines_sees_memory_they_keep(client, wait_until):
    """Engines asked (not read by PID) answer between tasks, again and again."""
    try:
        with MemoryMonitor(client, interval=0.05, sample_by_pid=False) as monitor:
            client[1].apply_sync(_allocate, 100)
            wait_until(lambda: _grown(monitor, 1, 90) >= 3, "3 answers of engine 1 with 100 MB")
    finally:
        client[:].apply_sync(_free)
    growth = monitor.peak_growth_mb
    assert growth["engines"][1] > 90
    assert growth["engines"][0] < 30


def _host_growth_of(mb, wait_until, attempts=8):
    """Host peak growth while this process holds ``mb`` MiB, best of a few tries.

    The host's used memory is shared with every other program on it: one of
    them freeing memory at the wrong moment hides our allocation, so try again.
    """
    best = None
    for _ in range(attempts):
        with MemoryMonitor(interval=0.01) as monitor:
            block = np.ones(mb * MB // 8)
            taken = len(monitor.samples)
            wait_until(lambda m=monitor, n=taken: len(m.samples) > n, "a sample of the block")
            del block
        best = max(best or 0.0, monitor.peak_growth_mb["host"])
        if best > mb / 2:
            break
    return monitor, best


def test_monitor_without_client_draws_the_host_on_given_axes(wait_until):
    monitor, host_growth = _host_growth_of(200, wait_until)
    assert host_growth > 100
    assert monitor.peak_growth_mb["engines"] == {}
    fig, ax = plt.subplots()
    try:
        assert monitor.plot(ax) is ax
        assert [line.get_label() for line in ax.get_lines()] == [
            f"host {socket.gethostname()} (used)"
        ]
        assert max(ax.get_lines()[0].get_ydata()) > 0
    finally:
        plt.close(fig)


def _monitor_threads():
    return [t for t in threading.enumerate() if t.name.startswith("MemoryMonitor")]


def test_monitor_thread_stops_when_the_block_raises(client, wait_until):
    assert _monitor_threads() == []
    with pytest.raises(KeyboardInterrupt), MemoryMonitor(client, interval=0.01) as monitor:
        assert len(_monitor_threads()) == 1
        wait_until(lambda: len(monitor.samples) >= 2, "a sample of the monitor's thread")
        raise KeyboardInterrupt
    assert _monitor_threads() == []
    assert len(monitor.samples) >= 3  # the baseline, the thread's, the last word on exit
    n = len(monitor.samples)
    time.sleep(0.05)
    assert len(monitor.samples) == n


def test_monitor_rejects_bad_arguments(client):
    with pytest.raises(ValueError, match="interval == 0"), MemoryMonitor(interval=0):
        pass
    with pytest.raises(TypeError, match="'fast'"), MemoryMonitor(interval="fast"):
        pass
    with pytest.raises(TypeError, match="'cluster'"), MemoryMonitor("cluster"):
        pass
    with pytest.raises(RuntimeError, match="with"):
        MemoryMonitor(client).plot()
    monitor = MemoryMonitor(interval=0.01)
    with monitor:
        pass
    with pytest.raises(RuntimeError, match="already"), monitor:
        pass
    assert _monitor_threads() == []
