"""Grading through a Slurm job array, on the single-node Slurm of ``tests/slurm.py``.

A class of two students (one hands in the references, one the untouched
release) across two lessons of the fixture course grades through a real
``sbatch --array`` of two elements, each claiming notebook after notebook, with
the same grades as on this host, while one element, scancelled after it
finished a notebook and started another, loses only the one under way (graded
again by another element; the finished one is not); elements that claim at
once never claim the same notebook; Ctrl-C (SIGINT) of ``make grade
ON=slurm``'s command cancels the array and leaves no job and no process
behind; and what cannot work is refused before anything is prepared or
submitted.
"""

import multiprocessing
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
from course_lib.grading._slurm_element import CLAIMS, FRAGMENTS, claim_next, read_claims
from course_lib.grading.slurm import RESUBMITTED, Slurm, max_array_size

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


def _kill_a_batch_element(shared, slurm, killed, deadline):
    """scancel the first element seen that has finished a notebook and started another.

    Appends ``(element, finished, in_progress)`` as they were just before the scancel.
    """
    while not killed and time.monotonic() < deadline:
        for run in shared.glob("grading-*"):
            claims = read_claims(run)
            for key in sorted(set(claims.values())):
                mine = {i for i, k in claims.items() if k == key}
                finished = {i for i in mine if (run / FRAGMENTS / str(i)).is_dir()}
                if finished and mine - finished:
                    slurm.run("scancel", key)
                    killed.append((key, finished, mine - finished))
                    return
        time.sleep(0.1)


def test_a_class_grades_through_slurm_as_locally_and_a_killed_element_loses_only_its_unfinished(
    course,
    throwaway_slurm,  # noqa: F811
):
    root, submissions, shared = course
    local = grading.grade(submissions, root, jobs=2, timeout=TIMEOUT, verbose=False)
    assert local.ok, local.problems
    killed = []
    watcher = threading.Thread(
        target=_kill_a_batch_element,
        args=(shared, throwaway_slurm, killed, time.monotonic() + 900),
        daemon=True,
    )
    watcher.start()
    # Two elements for four notebooks: each grades notebook after notebook.
    place = Slurm(shared=shared, partition=throwaway_slurm.partition, elements=2)
    through_slurm = grading.grade(submissions, root, timeout=TIMEOUT, verbose=True, on=place)
    watcher.join(timeout=5)
    assert through_slurm.ok, through_slurm.problems
    assert len(killed) == 1, "no element was seen finishing one notebook and starting another"
    key, finished, in_progress = killed[0]
    assert _grades(through_slurm) == _grades(local)
    scores = {k: value[1] for k, value in _grades(local).items()}
    assert scores[("ada", LESSON)] == scores[("ada", SECOND_LESSON)] > 0
    assert scores[("blank", LESSON)] == scores[("blank", SECOND_LESSON)] == 0
    # Every claim of the run: the killed element's finished notebooks were graded
    # once, by it; what it had under way was graded again by another element.
    claimed_by = {}
    for item, element in place.claims:
        claimed_by.setdefault(item, []).append(element)
    assert sorted(claimed_by) == [0, 1, 2, 3], place.claims
    for item in finished:
        assert claimed_by[item] == [key], place.claims
    regraded = {item for item, elements in claimed_by.items() if len(elements) > 1}
    assert len(regraded) == 1 and regraded <= in_progress, (place.claims, killed)
    (item,) = regraded
    assert key in claimed_by[item] and len(set(claimed_by[item])) == 2
    names = {f"{o.student}/{o.lesson}" for o in through_slurm.outcomes if RESUBMITTED in o.message}
    tasks = [(s, lesson) for lesson in LESSONS for s in ("ada", "blank")]  # grade()'s order
    assert names == {"/".join(tasks[item])}, [o.message for o in through_slurm.outcomes]
    assert all(o.status == "graded" for o in through_slurm.outcomes)
    # Merged into the course as local grading does: feedback, gradebook, CSV.
    for student in ("ada", "blank"):
        for lesson in LESSONS:
            assert any((root / "feedback" / student / lesson).glob("*.html"))
    assert throwaway_slurm.wait_no_jobs() == []
    assert _element_processes(throwaway_slurm) == []
    assert list(shared.iterdir()) == []  # the run folder is gone


def _claim_all(run, key, count, out):
    out.put((key, [claim_next(run, key, count) for _ in range(count + 1)]))


def test_elements_claiming_at_once_never_claim_the_same_notebook(tmp_path):
    """Four processes race for 60 items: each item is claimed once, every one is claimed."""
    (tmp_path / CLAIMS).mkdir()
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    procs = [
        context.Process(target=_claim_all, args=(tmp_path, f"9_{i}", 60, out)) for i in range(4)
    ]
    for proc in procs:
        proc.start()
    got = dict(out.get(timeout=120) for _ in procs)  # in the order they finish
    for proc in procs:
        proc.join(timeout=30)
    claimed = sorted(i for one in got.values() for i in one if i is not None)
    assert claimed == list(range(60))
    assert sorted(read_claims(tmp_path)) == list(range(60))
    # Each claim names the element that made it.
    by_key = {key: {i for i in one if i is not None} for key, one in got.items()}
    assert all(read_claims(tmp_path)[i] == k for k, items in by_key.items() for i in items)


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
