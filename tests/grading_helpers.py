"""What the grading tests share: the fixture course and small notebook readers."""

import shutil
from pathlib import Path

from course_lib.grading.notebooks import grade_id as grade_id_of

FIXTURES = Path(__file__).resolve().parent / "fixtures"
LESSON = "00_fixture"
NOTEBOOK = f"{LESSON}.ipynb"


def copy_course(dest):
    """The fixture course, without what a sample `make grade` may have left in it."""
    leftovers = shutil.ignore_patterns(".nbgrader", "autograded", "feedback", "submitted", "*.csv")
    shutil.copytree(FIXTURES / "course", dest, dirs_exist_ok=True, ignore=leftovers)


def cell(nb, grade_id):
    """The cell of ``nb`` whose nbgrader grade_id is ``grade_id``."""
    for found in nb.cells:
        if grade_id_of(found) == grade_id:
            return found
    raise KeyError(grade_id)
