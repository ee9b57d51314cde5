"""MemoryMonitor's PSS mode and process trees (what the benches sample with)."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from course_lib.memory import MemoryMonitor, engine_memory, process_memory, tree_memory

MIB = 2**20


def test_tree_memory_counts_a_process_and_its_children_once():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        mine = process_memory()["pss_mb"]
        alone = process_memory(child.pid)["pss_mb"]
        total = tree_memory([os.getpid()])
        assert total >= mine + 0.5 * alone  # the child is in this process's tree
        assert tree_memory([os.getpid(), child.pid]) == pytest.approx(total, rel=0.2)  # once
    finally:
        child.kill()
        child.wait()
    assert tree_memory([child.pid]) == 0.0  # gone: nothing to count


def test_pss_mode_samples_the_tree_of_the_processes_given():
    with MemoryMonitor(interval=0.02, measure="pss", processes=[os.getpid()]) as monitor:
        block = np.ones(80 * MIB // 8)
        time.sleep(0.2)
    assert all("processes_mb" in sample for sample in monitor.samples)
    assert monitor.peak_growth_mb["processes"] >= 60  # the 80 MiB block, as PSS
    assert monitor.peak_mb["processes"] >= monitor.baseline_mb["processes"] + 60
    assert block.sum() == block.size


def test_processes_may_be_a_callable_asked_at_every_sample():
    asked = []

    def roots():
        asked.append(time.monotonic())
        return [os.getpid()]

    with MemoryMonitor(interval=0.02, measure="uss", processes=roots) as monitor:
        time.sleep(0.15)
    assert len(asked) == len(monitor.samples) >= 3


def test_engines_in_pss(client):
    with MemoryMonitor(client, interval=0.05, measure="pss") as monitor:
        client[:].apply_sync(time.sleep, 0.3)
    reported = engine_memory(client)
    last = monitor.samples[-1]["engines_mb"]
    assert sorted(last) == sorted(client.ids)
    for engine_id, pss in last.items():
        assert 0 < pss <= reported[engine_id]["rss_mb"] * 1.05
        assert pss == pytest.approx(reported[engine_id]["pss_mb"], rel=0.3)
    assert "PSS" in monitor.plot().get_legend_handles_labels()[1][-1]


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"measure": "rss"}, ValueError, "measure == 'rss'"),
        ({"processes": "jupyter"}, TypeError, "'jupyter'"),
        ({"processes": 42}, TypeError, "42"),
    ],
)
def test_bad_pss_settings_are_refused(kwargs, error, words):
    with pytest.raises(error, match=words):
        MemoryMonitor(**kwargs)
