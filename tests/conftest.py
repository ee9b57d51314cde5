"""Shared fixtures: one real 2-engine local cluster for the whole session.

And the hooks of the whole suite, from ``system_tools``: every run ends with a summary of
its skips (reasons and counts), and under ``COURSE_REQUIRE_ALL=1`` (CI) a skip fails it.
"""

import os
import time
from pathlib import Path

import class_grading
import pytest
from lesson_answers import LessonAnswerTests
from system_tools import (  # noqa: F401 (the suite's hooks: see tests/system_tools.py)
    pytest_configure,
    pytest_sessionfinish,
    pytest_terminal_summary,
)

from course_lib import _processes
from course_lib.cluster import local_cluster

# The attack class's sources are cells of notebooks, not modules: --doctest-modules must
# not import them (they run only inside a student kernel, where `get_ipython` exists).
collect_ignore_glob = ["fixtures/*/_sources/*.py"]

# Functions defined in test modules are pickled by reference (module name).
# Engines inherit this environment, so they can import the test modules too.
_TESTS_DIR = str(Path(__file__).resolve().parent)
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (_TESTS_DIR, os.environ.get("PYTHONPATH", "")) if p
)


@pytest.fixture(scope="session")
def client():
    """A real ipyparallel client with 2 local engines, shared by the tests.

    Tests must leave it as they found it: 2 engines, nothing queued.
    """
    with local_cluster(2) as rc:
        yield rc


@pytest.fixture(scope="session")
def class_report(request, tmp_path_factory):
    """The practice class of every collected lesson, graded once (tests/class_grading.py)."""
    lessons = class_grading.lessons_needed(request.session.items)
    folder = tmp_path_factory.mktemp("class")
    return class_grading.grade_class(folder, LessonAnswerTests.registered, lessons)


@pytest.fixture
def assert_all_gone():
    """Check that processes have exited, waiting up to ``timeout`` seconds.

    Engine nannies can linger a few seconds after a cluster stops, so a leak
    check must wait for the PIDs rather than look once. Zombies count as gone:
    they hold no memory, and PID 1 of a container may never reap them.
    """

    def check(pids, timeout=10.0):
        alive = [p.pid for p in _processes.wait_gone(pids, timeout)]
        assert not alive, f"processes still alive after {timeout} s: {alive}"

    return check


@pytest.fixture
def wait_until():
    """Poll until ``condition()`` holds; fail, naming ``what``, after ``timeout`` seconds.

    For waiting on an event (a sample taken, a task running), in place of a sleep
    that guesses how long it takes. The timeout only stops a hang: it is generous, and
    no test asserts how fast anything was.
    """

    def wait(condition, what, timeout=120.0, poll=0.01):
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
            time.sleep(poll)

    return wait


def pytest_generate_tests(metafunc):
    """One case per typical wrong answer of a lesson (tests/lesson_answers.py)."""
    if "wrong_answer" in metafunc.fixturenames:
        metafunc.parametrize("wrong_answer", sorted(metafunc.cls.WRONG))
