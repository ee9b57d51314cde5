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
``integrity``   fair grading: warnings as notes, hidden tests restored, clean logs
``handback``    what is handed back: failures, stderr notes, no hidden test in feedback
``late``        the late-submission policy (nbgrader plugin) and the due dates tasks get
``execute``     the executor: test cells in a checker kernel, the rest in the student's
``channel``     what the checker asks the student's kernel, data only
``sandbox``     the bubblewrap sandboxes of both kernels
``runner``      the isolated runner: nbgrader in a process and folder of its own
``autograde``   ``grade``: one task per submission, the gradebook merge
``verify``      ``verify-exercises``
``report``      outcomes, tables and ``grades.csv``
``cli``         the command line

Run ``python -m course_lib.grading --help`` for the command line.
"""

import importlib

#: Where each public name lives; imported on first use, so that a checker
#: kernel importing :mod:`course_lib.grading.channel` does not load nbgrader.
_EXPORTS = {
    "grade": "autograde",
    "main": "cli",
    "RELEASE_DIR": "layout",
    "REPO_ROOT": "layout",
    "SOURCE_DIR": "layout",
    "find_lessons": "layout",
    "hidden_test_lines": "leaks",
    "release_leaks": "leaks",
    "solution_lines": "leaks",
    "check_release": "releases",
    "release": "releases",
    "GradeReport": "report",
    "Outcome": "report",
    "VerifyReport": "report",
    "RUN_VAR": "runner",
    "TASK_VAR": "runner",
    "default_jobs": "runner",
    "verify_exercises": "verify",
}


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_EXPORTS])


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
