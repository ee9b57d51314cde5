"""The course's grading pipeline: release, check the release, grade, verify.

Four commands, one per Makefile target, all on top of nbgrader:

``release``
    Generate the student notebooks of every lesson, ``lessons/NN_topic/``,
    from ``solutions/NN_topic/`` (nbgrader ``generate_assignment``: solutions
    replaced by stubs, hidden tests removed, no outputs).
``check-release``
    Fail when ``lessons/`` differs from what ``release`` would write.
``grade SUBMISSIONS``
    Autograde ``SUBMISSIONS/<student>/<lesson>/*.ipynb`` (nbgrader's own
    ``submitted/`` layout) against live local clusters, write feedback HTML,
    merge everything into the course gradebook and write ``grades.csv``.
``verify-exercises``
    Grade every lesson's solutions and its untouched release as two students:
    full marks and zero on every autograded cell, a release without solution
    code or hidden tests, and no process left behind.

Every (student, lesson) is graded by its own nbgrader process in its own
temporary course root, ``--jobs`` at a time, and merged into the gradebook
afterwards: a class of hundreds grades in parallel on a many-core host, and a
broken or hanging submission harms nobody else. Every process a grading task
starts (the kernel, the controller, the engines, whatever the student's code
starts) carries the task's marker in its environment and is tracked while it
runs; what is still alive when the task ends is killed by PID.

One module per step of the pipeline:

``notebooks``   small readers of notebooks and nbgrader metadata
``layout``      where solutions and releases live, which lessons exist
``releases``    ``release`` and ``check-release``
``leaks``       what a release must not contain
``checks``      submission checks, a list of small functions (add one there)
``integrity``   fair and tamper-evident grading: the tamper check, the run-time guard,
                warnings as notes, no hidden test in feedback
``runner``      the isolated runner: nbgrader in a process and folder of its own
``autograde``   ``grade``: one task per submission, the gradebook merge
``verify``      ``verify-exercises``
``report``      outcomes, tables and ``grades.csv``
``cli``         the command line

Run ``python -m course_lib.grading --help`` for the command line.
"""

from course_lib.grading.autograde import grade
from course_lib.grading.cli import main
from course_lib.grading.layout import RELEASE_DIR, REPO_ROOT, SOURCE_DIR, find_lessons
from course_lib.grading.leaks import hidden_test_lines, release_leaks, solution_lines
from course_lib.grading.releases import check_release, release
from course_lib.grading.report import GradeReport, Outcome, VerifyReport
from course_lib.grading.runner import RUN_VAR, TASK_VAR, default_jobs
from course_lib.grading.verify import verify_exercises

__all__ = [
    "RELEASE_DIR",
    "REPO_ROOT",
    "RUN_VAR",
    "SOURCE_DIR",
    "TASK_VAR",
    "GradeReport",
    "Outcome",
    "VerifyReport",
    "check_release",
    "default_jobs",
    "find_lessons",
    "grade",
    "hidden_test_lines",
    "main",
    "release",
    "release_leaks",
    "solution_lines",
    "verify_exercises",
]
