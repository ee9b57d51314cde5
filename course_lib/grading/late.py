"""The course's late-submission policy: points off per hour late, set in ``nbgrader_config.py``.

nbgrader assigns a late penalty during ``autograde`` through its
``AssignLatePenalties`` step, which asks a ``LateSubmissionPlugin`` how many points a
notebook submitted ``total_seconds_late`` after its assignment's due date loses. The
due date is the gradebook's (``nbgrader db assignment add LESSON --duedate=...`` or
the formgrader's *Manage Assignments*), the time of submission the ``timestamp.txt``
that ``nbgrader submit`` writes. nbgrader's own plugin knows only "no penalty" and
"zero"; :class:`PenaltyPerHour` takes points off for every hour, or part of one::

    c.AssignLatePenalties.plugin_class = "course_lib.grading.late.PenaltyPerHour"
    c.PenaltyPerHour.points_per_hour = 1.0
    c.PenaltyPerHour.max_points = 5.0  # optional cap

nbgrader applies the penalty per notebook (each lesson here has one) and never takes
more than the notebook scored. ``make grade`` gives every grading task the due dates
of the course's gradebook (:func:`copy_duedates`); ``grades.csv``, the LMS export and
nbgrader's own export and feedback show the score after the penalty.
"""

from __future__ import annotations

import math

from nbgrader.plugins import BasePlugin
from traitlets import Float

__all__ = ["PenaltyPerHour", "copy_duedates", "late_note", "score_after_penalty"]


class PenaltyPerHour(BasePlugin):
    """``points_per_hour`` off for every hour, or part of one, past the due date.

    Examples
    --------
    >>> from traitlets.config import Config
    >>> c = Config()
    >>> c.PenaltyPerHour.points_per_hour = 1.0
    >>> c.PenaltyPerHour.max_points = 3.0
    >>> plugin = PenaltyPerHour(config=c)
    >>> plugin.late_submission_penalty("ada", 5.0, 90 * 60)
    2.0
    >>> plugin.late_submission_penalty("ada", 5.0, 10 * 3600)
    3.0
    >>> plugin.late_submission_penalty("ada", 5.0, 0)
    0.0
    """

    points_per_hour = Float(
        0.0, min=0.0, help="Points a notebook loses per hour (or part of one) late."
    ).tag(config=True)
    max_points = Float(
        None, allow_none=True, min=0.0, help="The most points lateness costs (None: no cap)."
    ).tag(config=True)

    def late_submission_penalty(self, student_id, score, total_seconds_late):
        """The points ``student_id``'s notebook loses (nbgrader caps them at ``score``)."""
        hours = math.ceil(max(0.0, total_seconds_late) / 3600)
        penalty = hours * self.points_per_hour
        if self.max_points is not None:
            penalty = min(penalty, self.max_points)
        return float(penalty)


def copy_duedates(source_db, target_db, lessons, course_id="default_course"):
    """Give ``target_db`` the due dates ``source_db`` holds for ``lessons``.

    Grading runs autograde in temporary roots, each with a copy of a template
    gradebook made fresh from ``solutions/``: without the due dates the instructor
    set in the course's gradebook, nbgrader would find no submission late.

    Returns
    -------
    dict
        ``{lesson: due date}`` (naive UTC datetimes) of the lessons that have one.
    """
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{source_db}", course_id) as gb:
        dates = {a.name: a.duedate for a in gb.assignments if a.name in lessons and a.duedate}
    if dates:
        with Gradebook(f"sqlite:///{target_db}", course_id) as gb:
            for name, duedate in dates.items():
                gb.update_or_create_assignment(name, duedate=duedate)
    return dates


def late_note(seconds_late, penalty):
    """What a late submission's row and comment say; None when it was on time.

    Examples
    --------
    >>> late_note(90 * 60, 2.0)
    'submitted 1.5 h after the due date: 2 point(s) off (late-submission policy)'
    >>> late_note(0, 0.0) is None
    True
    """
    if not seconds_late:
        return None
    return (
        f"submitted {seconds_late / 3600:.1f} h after the due date: "
        f"{float(penalty or 0.0):g} point(s) off (late-submission policy)"
    )


def score_after_penalty(submission):
    """A submission's score less its late penalty, never below zero (as ``nbgrader export``).

    ``submission`` is nbgrader's ``SubmittedAssignment``, whose ``score`` is the sum of
    its grades, before any penalty.
    """
    score = float(submission.score or 0.0)
    return max(0.0, score - float(submission.late_submission_penalty or 0.0))
