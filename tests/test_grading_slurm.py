"""Grading through a Slurm job array, on the single-node Slurm of ``tests/slurm.py``.

A class of two students (one hands in the references, one the untouched
release) across two lessons of the fixture course grades through a real
``sbatch --array`` with the same grades as on this host, while one element,
scancelled mid-run, is resubmitted; Ctrl-C (SIGINT) of ``make grade ON=slurm``'s
command cancels the array and leaves no job and no process behind; and what
cannot work is refused before anything is prepared or submitted.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest
from grading_helpers import LESSON, copy_course
from slurm import slurm_daemons, throwaway_slurm  # noqa: F401 (fixtures)

from course_lib import grading
from course_lib.grading.slurm import RESUBMITTED, max_array_size

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

SECOND_LESSON = "01_fixture"
LESSONS = (LESSON, SECOND_LESSON)
#: Seconds per cell: above a cluster's start-up on a busy 2-core host.
TIMEOUT = 60


@pytest.fixture
def course(tmp_path):
    """The fixture course with a second lesson, and a class of two students."""
    root = tmp_path / "course"
    copy_course(root)
    for kind in ("solutions", "lessons"):
        shutil.copytree(root / kind / LESSON, root / kind / SECOND_LESSON)
    submissions = tmp_path / "submissions"
    for student, kind in (("ada", "solutions"), ("blank", "lessons")):
        for lesson in LESSONS:
            shutil.copytree(root / kind / lesson, submissions / student / lesson)
    shared = tmp_path / "shared"
    shared.mkdir()
    return root, submissions, shared


def _element_processes(slurm):
    """Live processes started by a job of ``slurm`` (they carry its SLURM_JOB_ID)."""
    daemons = set(slurm.pids.values())
    found = []
    for proc in psutil.process_iter():
        if proc.pid in daemons or proc.pid == os.getpid():
            continue
        try:
            env = proc.environ()
            if env.get("SLURM_CONF") == str(slurm.conf) and "SLURM_JOB_ID" in env:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _running_elements(slurm):
    lines = slurm.run("squeue", "-h", "-r", "-o", "%i %T", check=False).splitlines()
    return [line.split()[0] for line in lines if line.endswith(" RUNNING")]


def _grades(report):
    return {
        (o.student, o.lesson): (o.status, o.score, o.max_score, dict(o.cells))
        for o in report.outcomes
    }


def test_what_cannot_work_is_refused_before_anything_is_submitted(
    course,
    throwaway_slurm,  # noqa: F811
    monkeypatch,
    tmp_path,
):
    root, submissions, shared = course

    def refused(error, match, **options):
        with pytest.raises(error, match=match):
            grading.grade(submissions, root, on="slurm", place_options=options, verbose=False)
        assert not (root / ".nbgrader").exists()
        assert throwaway_slurm.jobs() == []

    refused(ValueError, "needs a shared folder")
    refused(FileNotFoundError, "typo", shared=tmp_path / "typo")
    refused(
        ValueError, "partition 'nosuch' does not exist.*debug", shared=shared, partition="nosuch"
    )
    # The partition from nbgrader_config.py, the command line's shared folder.
    (root / "nbgrader_config.py").write_text('c = get_config()\nc.SlurmGrading.partition = "gpu"\n')
    refused(ValueError, "partition 'gpu' does not exist", shared=shared)
    (root / "nbgrader_config.py").unlink()
    empty = tmp_path / "no-slurm-here"
    empty.mkdir()
    with (
        monkeypatch.context() as patched,
        pytest.raises(RuntimeError, match="needs sbatch, squeue"),
    ):
        patched.setenv("PATH", str(empty))
        grading.grade(submissions, root, on="slurm", place_options={"shared": shared})
    assert not (root / ".nbgrader").exists()
    assert throwaway_slurm.jobs() == []
    assert list(shared.iterdir()) == []
    # The limit run() checks before writing or submitting anything, read from scontrol.
    assert max_array_size() == 1001  # Slurm's default


def test_a_class_grades_through_slurm_as_locally_and_a_cancelled_element_is_resubmitted(
    course,
    throwaway_slurm,  # noqa: F811
):
    root, submissions, shared = course
    local = grading.grade(submissions, root, jobs=2, timeout=TIMEOUT, verbose=False)
    assert local.ok, local.problems
    cancelled = []

    def cancel_one():
        deadline = time.monotonic() + 900
        while not cancelled and time.monotonic() < deadline:
            running = _running_elements(throwaway_slurm)
            if running:
                time.sleep(1.0)  # its grading is under way
                throwaway_slurm.run("scancel", running[0])
                cancelled.append(running[0])
            time.sleep(0.2)

    watcher = threading.Thread(target=cancel_one, daemon=True)
    watcher.start()
    through_slurm = grading.grade(
        submissions,
        root,
        timeout=TIMEOUT,
        verbose=True,
        on="slurm",
        place_options={"shared": shared, "partition": throwaway_slurm.partition},
    )
    watcher.join(timeout=5)
    assert through_slurm.ok, through_slurm.problems
    assert len(cancelled) == 1
    assert _grades(through_slurm) == _grades(local)
    scores = {key: value[1] for key, value in _grades(local).items()}
    assert scores[("ada", LESSON)] == scores[("ada", SECOND_LESSON)] > 0
    assert scores[("blank", LESSON)] == scores[("blank", SECOND_LESSON)] == 0
    resubmitted = [o for o in through_slurm.outcomes if RESUBMITTED in o.message]
    assert len(resubmitted) == 1, [o.message for o in through_slurm.outcomes]
    assert all(o.status == "graded" for o in through_slurm.outcomes)
    # Merged into the course as local grading does: feedback, gradebook, CSV.
    for student in ("ada", "blank"):
        for lesson in LESSONS:
            assert any((root / "feedback" / student / lesson).glob("*.html"))
    assert throwaway_slurm.wait_no_jobs() == []
    assert _element_processes(throwaway_slurm) == []
    assert list(shared.iterdir()) == []  # the run folder is gone


def test_ctrl_c_cancels_the_array_and_leaves_nothing_behind(
    course,
    throwaway_slurm,  # noqa: F811
):
    root, submissions, shared = course
    command = [
        sys.executable,
        "-m",
        "course_lib.grading",
        "--root",
        str(root),
        "grade",
        str(submissions),
        "--timeout",
        str(TIMEOUT),
        "--on",
        "slurm",
        "--shared",
        str(shared),
    ]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 600
        while not _running_elements(throwaway_slurm):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
            time.sleep(0.2)
        time.sleep(2.0)
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        output, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, output
    assert "slurm: cancelled (scancel of job array" in output, output
    assert re.search(r"merged \d of 4", output), output
    assert throwaway_slurm.jobs() == []
    deadline = time.monotonic() + 30
    while _element_processes(throwaway_slurm) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _element_processes(throwaway_slurm) == []
    assert list(shared.iterdir()) == []
