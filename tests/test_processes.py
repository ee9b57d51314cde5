"""Process life: alive (zombies are gone), stop by PID, find by marker."""

import os
import signal
import subprocess
import sys
import time

from course_lib import _processes

# A child that ignores SIGTERM, as an engine stuck in C code does.
STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"


def _start(code="import time; time.sleep(600)", **kwargs):
    return subprocess.Popen([sys.executable, "-c", code], **kwargs)


def test_a_zombie_counts_as_gone():
    proc = _start()
    try:
        assert _processes.alive(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        # Not reaped yet: a zombie, and gone for us.
        assert _processes.wait_gone([proc.pid], timeout=30) == []
        assert not _processes.alive(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    assert not _processes.alive(proc.pid)


def test_stop_kills_what_ignores_sigterm():
    proc = _start(STUBBORN, stdout=subprocess.PIPE)
    try:
        assert _processes.wait_gone([proc.pid], timeout=0.5) != []  # it runs
        assert _processes.stop([proc.pid], grace=0.5) == []
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait()


def test_find_marked_finds_a_detached_child_by_its_environment(assert_all_gone):
    env = {"PATH": "/usr/bin:/bin", "COURSE_TEST_MARKER": f"marker-{os.getpid()}"}
    proc = subprocess.Popen(["sleep", "60"], env=env, start_new_session=True)
    try:
        found = _processes.find_marked("COURSE_TEST_MARKER", f"marker-{os.getpid()}")
        assert [p.pid for p in found] == [proc.pid]
        assert _processes.describe(found[0]).startswith(f"{proc.pid} (sleep")
        assert _processes.stop(found) == []
    finally:
        proc.kill()
        proc.wait()
    assert_all_gone([proc.pid])


def test_process_tree_lists_children_and_nothing_once_gone():
    parent = _start(
        "import subprocess, sys, time; subprocess.Popen(['sleep', '60']); time.sleep(60)"
    )
    try:
        tree = []
        for _ in range(300):
            tree = _processes.process_tree(parent.pid)
            if len(tree) == 2:
                break
            time.sleep(0.1)
        assert [p.pid for p in tree][0] == parent.pid and len(tree) == 2
        assert _processes.stop(tree) == []
    finally:
        parent.kill()
        parent.wait()
    assert _processes.process_tree(parent.pid) == []
