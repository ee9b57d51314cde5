"""Submission checks, run on a submitted notebook before nbgrader sees it."""

import shutil

import nbformat
from grading_helpers import FIXTURES, LESSON, NOTEBOOK, cell

from course_lib import grading
from course_lib.grading.checks import (
    SUBMISSION_CHECKS,
    check_submission,
    stage_submission,
)
from course_lib.grading.layout import PreparedLesson

SOLUTION = FIXTURES / "course" / "solutions" / LESSON / NOTEBOOK
RELEASED = FIXTURES / "course" / "lessons" / LESSON / NOTEBOOK


def test_a_renamed_notebook_is_graded_under_its_name(tmp_path):
    lesson = PreparedLesson(
        LESSON,
        FIXTURES / "course" / "solutions" / LESSON,
        FIXTURES / "course" / "lessons" / LESSON,
        [NOTEBOOK],
    )
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(lesson.release_dir / NOTEBOOK, folder / "00_fixture (1).ipynb")
    (folder / "timestamp.txt").write_text("not a date")
    outcome = grading.Outcome("ada", LESSON)
    assert stage_submission(outcome, folder, lesson, tmp_path / "task")
    assert (tmp_path / "task" / "submitted" / "ada" / LESSON / NOTEBOOK).is_file()
    assert "graded 00_fixture (1).ipynb as 00_fixture.ipynb" in outcome.message
    assert "timestamp.txt is not a date" in outcome.message
    assert not outcome.flagged


def test_the_checks_repair_and_flag_a_meddled_notebook():
    released = nbformat.read(RELEASED, 4)
    solution = nbformat.read(SOLUTION, 4)
    untouched = check_submission(nbformat.read(RELEASED, 4), released, solution)
    assert (untouched.notes, untouched.flagged) == ([], False)

    nb = nbformat.read(RELEASED, 4)
    cell(nb, "test-squares").source = "pass"
    cell(nb, "test-quiz-engines").metadata["nbgrader"]["points"] = 100
    nb.cells.remove(cell(nb, "test-pids"))
    nb.cells.append(nbformat.from_dict(dict(cell(nb, "ex-squares"))))
    checked = check_submission(nb, released, solution)
    assert checked.flagged
    assert "edited locked cell(s) test-squares" in "; ".join(checked.notes)
    assert "nbgrader metadata of test-quiz-engines edited: restored" in checked.notes
    assert "deleted graded cell(s) test-pids: restored and graded" in checked.notes
    assert "duplicated cell(s) ex-squares: copies ignored" in checked.notes
    assert cell(nb, "test-quiz-engines").metadata["nbgrader"]["points"] == 1
    assert cell(nb, "test-pids").source == cell(released, "test-pids").source


def test_a_check_is_one_function_in_the_list():
    released = nbformat.read(RELEASED, 4)

    def no_prints(sub):
        if any("print(" in c.source for c in sub.notebook.cells):
            sub.notes.append("prints")

    nb = nbformat.read(RELEASED, 4)
    nb.cells.append(nbformat.v4.new_code_cell("print(1)"))
    checked = check_submission(nb, released, released, [*SUBMISSION_CHECKS, no_prints])
    assert checked.notes == ["prints"]
    assert not checked.flagged


def test_a_cell_added_with_test_metadata_becomes_the_students_own():
    """A cell marked as a test that the release does not have would run in the checker:
    it loses its nbgrader metadata, and the row says so."""
    from course_lib.grading.execute import is_test_cell

    released = nbformat.read(RELEASED, 4)
    nb = nbformat.read(RELEASED, 4)
    forged = nbformat.v4.new_code_cell("import course_lib.checking as c; c.check = print")
    forged.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": 9}
    named = nbformat.v4.new_code_cell("print('a test of mine')")
    named.metadata["nbgrader"] = {**forged.metadata["nbgrader"], "grade_id": "test-mine"}
    nb.cells[3:3] = [forged, named]
    assert is_test_cell(named)  # control: as submitted, it looks like a test
    checked = check_submission(nb, released, nbformat.read(SOLUTION, 4))
    assert checked.flagged
    assert (
        "added cell(s) with nbgrader metadata cell 4, test-mine: run as the student's own "
        "cells, not graded" in checked.notes
    )
    assert "nbgrader" not in forged.metadata and "nbgrader" not in named.metadata
    assert not any(is_test_cell(c) for c in (forged, named))
    assert sum(is_test_cell(c) for c in nb.cells) == 3  # the release's own tests
