"""What the instructor sees after a real grading: late penalties, clean logs, why a row is flagged.

A small class of the fixture course (``tests/fixtures/course``) is graded once, for
real, by ``grading.grade`` with the sandbox: ``ontime`` and ``late`` hand in the same
right answers, before and 90 minutes after the due date set with ``nbgrader db
assignment add``, under a policy of one point per hour or part of one (set in the
course's ``nbgrader_config.py`` as the README says); ``blank`` hands in the untouched
release; ``meddler`` (from the practice class) edits and deletes test cells and is
flagged.
"""

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from grading_helpers import FIXTURES, LESSON, NOTEBOOK, copy_course

from course_lib import grading
from course_lib.grading.autograde import quiet_gradebook

DUE = "2026-03-02 17:00:00 Europe/Berlin"
ON_TIME = "2026-03-02 16:00:00.000000 Europe/Berlin"
LATE = "2026-03-02 18:30:00.000000 Europe/Berlin"  # 1.5 h late: 2 started hours
POINTS_PER_HOUR = 1.0
PENALTY = 2.0
NBGRADER = str(Path(sys.executable).parent / "nbgrader")

POLICY = f"""
from pathlib import Path

from course_lib.grading.config import configure_course

c = get_config()  # noqa: F821
configure_course(c, Path(__file__).resolve().parent)
c.AssignLatePenalties.plugin_class = "course_lib.grading.late.PenaltyPerHour"
c.PenaltyPerHour.points_per_hour = {POINTS_PER_HOUR}
"""

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


def _nbgrader(root, *args):
    # A new gradebook runs the `alembic` command of the course's environment.
    env = dict(os.environ, PATH=f"{Path(NBGRADER).parent}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(
        [NBGRADER, *args], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _hand_in(submissions, student, notebook, timestamp=None):
    folder = submissions / student / LESSON
    folder.mkdir(parents=True)
    shutil.copy(notebook, folder / NOTEBOOK)
    if timestamp is not None:
        (folder / "timestamp.txt").write_text(timestamp + "\n")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    copy_course(root)
    (root / "nbgrader_config.py").write_text(POLICY)
    _nbgrader(root, "db", "assignment", "add", LESSON, f"--duedate={DUE}")
    submissions = tmp_path_factory.mktemp("submissions")
    solution = root / "solutions" / LESSON / NOTEBOOK
    _hand_in(submissions, "ontime", solution, ON_TIME)
    _hand_in(submissions, "late", solution, LATE)
    _hand_in(submissions, "blank", root / "lessons" / LESSON / NOTEBOOK)
    shutil.copytree(FIXTURES / "submissions" / "meddler", submissions / "meddler")
    report = grading.grade(submissions, root, jobs=2, timeout=60, verbose=False)
    print(report.table())
    assert report.ok, report.problems
    return root, report


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _gradebook(root):
    from nbgrader.api import Gradebook

    return Gradebook(f"sqlite:///{root / '.nbgrader' / 'gradebook.db'}")


def test_a_late_submission_loses_exactly_the_penalty(graded):
    root, report = graded
    ontime, late = report.outcome("ontime", LESSON), report.outcome("late", LESSON)
    assert (ontime.status, late.status) == ("graded", "graded")
    assert ontime.cells == late.cells  # the same answers, every test passed
    assert (ontime.score, ontime.max_score) == (5, 5)
    assert late.score == ontime.score - PENALTY
    assert "submitted 1.5 h after the due date: 2 point(s) off" in late.message
    assert "due date" not in ontime.message


def test_the_penalty_is_in_grades_csv_and_the_lms_export(graded):
    root, _ = graded
    assert grading.main(["--root", str(root), "report"]) == 0  # from the gradebook alone
    rows = {row["student"]: row for row in _rows(root / "grades.csv")}
    assert (rows["ontime"]["score"], rows["late"]["score"]) == ("5", "3")
    assert "2 point(s) off (late-submission policy)" in rows["late"]["message"]
    lms = {row["Username"]: row for row in _rows(root / "grades-lms.csv")}
    column = f"{LESSON} (5 points)"
    assert (lms["ontime"][column], lms["late"][column]) == ("5", "3")


def test_the_gradebook_holds_nbgraders_penalty(graded):
    root, _ = graded
    with quiet_gradebook(), _gradebook(root) as gb:
        assert gb.find_assignment(LESSON).duedate is not None  # kept through grading
        late = gb.find_submission(LESSON, "late")
        assert late.total_seconds_late == 90 * 60
        assert late.score == 5 and late.late_submission_penalty == PENALTY
        ontime = gb.find_submission(LESSON, "ontime")
        assert (ontime.total_seconds_late, ontime.late_submission_penalty) == (0, 0)
        notebook = gb.find_submission_notebook(LESSON, LESSON, "late")
        comments = [c.to_dict() for c in notebook.comments]
        assert "Late: submitted 1.5 h after the due date" in comments[0]["auto_comment"]
    # nbgrader's own export subtracts it as well.
    _nbgrader(root, "export", "--to", "nbgrader-export.csv")
    exported = {row["student_id"]: row for row in _rows(root / "nbgrader-export.csv")}
    assert float(exported["late"]["late_submission_penalty"]) == PENALTY
    assert (float(exported["ontime"]["score"]), float(exported["late"]["score"])) == (5, 3)


def test_the_late_students_feedback_says_so(graded):
    root, _ = graded
    feedback = (root / "feedback" / "late" / LESSON / f"{LESSON}.html").read_text()
    assert "Late submission penalty (Score: -2.0)" in feedback
    on_time = (root / "feedback" / "ontime" / LESSON / f"{LESSON}.html").read_text()
    assert "Late submission penalty" not in on_time


def test_an_untouched_submission_logs_no_warning(graded):
    root, report = graded
    blank = report.outcome("blank", LESSON)
    assert (blank.status, blank.score, blank.message) == ("graded", 0, "")
    log = (root / ".nbgrader" / "logs" / LESSON / "blank.log").read_text()
    assert "== autograde: ok" in log and "== generate_feedback: ok" in log
    assert [line for line in log.splitlines() if "warning" in line.lower()] == []
    # The hidden tests were put back and ran.
    autograded = (root / "autograded" / "blank" / LESSON / NOTEBOOK).read_text()
    assert autograded.count("BEGIN HIDDEN TESTS") == 2
    # Control: a test cell really edited is still reported in the log.
    meddler = (root / ".nbgrader" / "logs" / LESSON / "meddler.log").read_text()
    assert "Attribute 'checksum' for cell test-squares has changed!" in meddler


def test_the_formgrader_shows_why_a_submission_is_flagged(graded):
    """The reason, in the comment the formgrader shows beside the cell (its placeholder)."""
    root, report = graded
    meddler = report.outcome("meddler", LESSON)
    assert meddler.flagged and "edited locked cell(s) test-squares" in meddler.message
    with quiet_gradebook(), _gradebook(root) as gb:
        notebook = gb.find_submission_notebook(LESSON, LESSON, "meddler")
        assert notebook.flagged
        # What the formgrader's /formgrader/api/comments?submission_id=... answers (the
        # comments of the answer cells; the first one says why).
        comments = [c.to_dict() for c in notebook.comments]
        first = comments[0]["auto_comment"]
        assert first.startswith("Flagged for grading by hand: ")
        assert "edited locked cell(s) test-squares" in first
        assert "deleted graded cell(s) test-pids" in first
        name = comments[0]["name"]
        assert gb.find_comment(name, LESSON, LESSON, "meddler").comment == first
        # An unflagged submission's comments say nothing of the kind.
        ontime = gb.find_submission_notebook(LESSON, LESSON, "ontime")
        assert not any("Flagged" in (c.auto_comment or "") for c in ontime.comments)
