"""nbgrader configuration of the course.

nbgrader reads this file from the current directory: run ``make release``,
``make grade`` and the formgrader of ``make instructor`` from the repository root.
The course's settings (folders, gradebook, a per-cell timeout of 300 s, the grading
kernel, feedback without hidden tests, quiz stubs) come from
``course_lib.grading.config.configure_course``, which every course root gets, with
or without a file of its own; ``course_lib.grading`` then reads this file on top of
them for this root (``course_config``) and only changes the root and the gradebook in
the temporary roots it grades in. Add your own settings below (a hub's course id and
exchange, a late-submission policy). ``tests/test_grading_runner.py`` checks the
settings grading relies on.
"""

from pathlib import Path

from course_lib.grading.config import configure_course

c = get_config()  # noqa: F821

configure_course(c, Path(__file__).resolve().parent)

# A late-submission policy (README, "Late submissions"): a point off per hour late, or part
# of one; each lesson's due date goes in the gradebook (`nbgrader db assignment add`).
# c.AssignLatePenalties.plugin_class = "course_lib.grading.late.PenaltyPerHour"
# c.PenaltyPerHour.points_per_hour = 1.0
