"""Where grading tasks run: a registry of places, ``local`` and ``slurm``.

:func:`course_lib.grading.grade` makes one :class:`GradingTask` per (student,
lesson) and hands them all to a place: :class:`Local` grades them ``jobs`` at a
time on this host (:func:`course_lib.grading.runner.run_tasks`);
:class:`course_lib.grading.slurm.Slurm` makes each one an element of a Slurm job
array. Every place is checked at the door (:meth:`check`), before anything is
prepared or submitted; :meth:`begin` may start what takes long to start (Slurm's
elements queue and import nbgrader while the lessons are prepared); :meth:`run`
calls ``done((outcome, info))`` for each task as it finishes, in the order they
finish; :meth:`close` stops what is left, whatever happened. A new place is a
class with ``check``, ``begin``, ``run`` and ``close``, registered in
:data:`PLACES`.

Examples
--------
>>> sorted(PLACES)
['local', 'slurm']
>>> make_place("local", jobs=2).jobs
2
>>> make_place("moon")
Traceback (most recent call last):
...
ValueError: on == 'moon': grading tasks run on one of ['local', 'slurm'].
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from pathlib import Path

from course_lib.grading.layout import PreparedLesson

__all__ = ["PLACES", "GradingTask", "Local", "make_place"]


@dataclasses.dataclass
class GradingTask:
    """One student's lesson to grade.

    Attributes
    ----------
    student : str
    folder : Path or None
        The submitted lesson folder; None when nothing was handed in.
    lesson : PreparedLesson
    template_db : Path
        The gradebook every task starts from.
    timeout : float or None
        Seconds per cell (None: the configuration's).
    task_timeout : float
        Seconds the whole task may take.
    """

    student: str
    folder: Path | None
    lesson: PreparedLesson
    template_db: Path
    timeout: float | None
    task_timeout: float

    def run(self, workspace):
        """Grade it in ``workspace``: ``(outcome, info)`` of :func:`grade_one`."""
        from course_lib.grading.autograde import grade_one

        return grade_one(
            workspace,
            self.lesson,
            self.student,
            self.folder,
            self.template_db,
            timeout=self.timeout,
            task_timeout=self.task_timeout,
        )


class Local:
    """Tasks graded on this host, ``jobs`` at a time (default: CPUs, memory)."""

    name = "local"

    def __init__(self, jobs=None):
        from course_lib.grading.runner import check_jobs

        self.jobs = check_jobs(jobs)

    def describe(self):
        return f"{self.jobs} at a time on this host"

    def check(self, course_root):
        """Nothing to check beyond the sandbox, which :func:`grade` checks."""

    def begin(self, workspace, items, task_timeout, say=print):
        """Nothing to start early: the workers that prepare the lessons grade next."""

    def run(self, workspace, tasks, done, say=print):
        from course_lib.grading.runner import run_tasks

        run_tasks(workspace, [functools.partial(t.run, workspace) for t in tasks], self.jobs, done)

    def close(self):
        """Nothing to stop: the workspace stops its workers."""


#: ``{name: "module:Class"}``: imported when used, so that ``local`` needs no Slurm.
PLACES = {
    "local": f"{__name__}:Local",
    "slurm": "course_lib.grading.slurm:Slurm",
}


def make_place(on="local", **options):
    """The place called ``on``, made with ``options``; a place object passes through."""
    if not isinstance(on, str):
        return on
    if on not in PLACES:
        raise ValueError(f"on == {on!r}: grading tasks run on one of {sorted(PLACES)}.")
    module, name = PLACES[on].split(":")
    return getattr(importlib.import_module(module), name)(**options)
