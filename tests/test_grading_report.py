"""What grading reports: the screen table and grades.csv, row by row."""

import csv
import os
import sys
from pathlib import Path

from course_lib import grading
from course_lib.grading.autograde import quiet_gradebook
from course_lib.grading.report import NO_SANDBOX, class_outcomes, write_csv


def _rows(path):
    with open(path, newline="") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


def test_every_row_says_when_there_was_no_sandbox(tmp_path):
    outcomes = [
        grading.Outcome("ada", "01_x", score=3, max_score=5, sandboxed=False),
        grading.Outcome("bob", "01_x", score=5, max_score=5, sandboxed=True),
        grading.Outcome("eve", "01_x", status="missing", sandboxed=False),
    ]
    write_csv(tmp_path / "grades.csv", outcomes)
    rows = _rows(tmp_path / "grades.csv")
    assert rows["ada"]["message"] == NO_SANDBOX == "graded without a sandbox"
    assert rows["bob"]["message"] == ""
    assert rows["eve"]["message"] == ""  # nothing was graded
    table = grading.GradeReport(outcomes, [], None, "run").table()
    assert f"! ada/01_x: {NO_SANDBOX}" in table
    assert "bob/01_x" not in table


def test_an_error_has_no_score_and_says_why(tmp_path):
    error = grading.Outcome("ada", "01_x", status="error", max_score=5, attempts=3)
    error.notes.append("not graded, no score: the locked setup cell setup failed")
    write_csv(tmp_path / "grades.csv", [error])
    row = _rows(tmp_path / "grades.csv")["ada"]
    assert (row["score"], row["max_score"], row["status"], row["attempts"]) == (
        "",
        "5",
        "error",
        "3",
    )
    assert "setup failed" in row["message"]


def test_a_late_batch_adds_rows_and_drops_none(tmp_path):
    path = tmp_path / "grades.csv"
    first = [
        grading.Outcome("ada", "01_x", score=3, max_score=5),
        grading.Outcome("ada", "02_y", score=4, max_score=5),
    ]
    write_csv(path, class_outcomes(first, path))
    # The late batch: bob, and ada's 02_y again; ada's 01_x is missing from it.
    late = [
        grading.Outcome("bob", "01_x", score=5, max_score=5),
        grading.Outcome("ada", "01_x", status="missing", max_score=5),
        grading.Outcome("ada", "02_y", score=5, max_score=5),
    ]
    write_csv(path, class_outcomes(late, path))
    rows = {(r["student"], r["lesson"]): r for r in csv.DictReader(open(path, newline=""))}
    assert {key: row["score"] for key, row in rows.items()} == {
        ("ada", "01_x"): "3",  # kept: a missing lesson in a late batch replaces nothing
        ("ada", "02_y"): "5",  # graded again: the new row
        ("bob", "01_x"): "5",
    }


def _gradebook_with_a_flagged_submission(root):
    """A real nbgrader gradebook: ada's 01_x, flagged, points withheld (as grading leaves it)."""
    from nbgrader.api import Gradebook

    db = root / ".nbgrader" / "gradebook.db"
    db.parent.mkdir(parents=True)
    with quiet_gradebook(), Gradebook(f"sqlite:///{db}") as gb:
        gb.add_assignment("01_x")
        gb.add_notebook("01_x", "01_x")
        for name, points in (("ex-a", 4), ("ex-b", 3)):
            gb.update_or_create_grade_cell(name, "01_x", "01_x", max_score=points, cell_type="code")
        gb.add_student("ada")
        submission = gb.update_or_create_submission("01_x", "ada")
        for grade in submission.notebooks[0].grades:
            grade.auto_score, grade.needs_manual_grade = 0.0, True
        gb.db.commit()
    return db


def test_after_a_grade_by_hand_the_table_and_grades_csv_agree(tmp_path, monkeypatch):
    from nbgrader.api import Gradebook

    # A new gradebook runs the `alembic` command of the course's environment.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    (tmp_path / "solutions").mkdir()
    db = _gradebook_with_a_flagged_submission(tmp_path)
    flagged = grading.Outcome("ada", "01_x", max_score=7, withheld=["cell ex-a replaces sum"])
    flagged.notes.append("flagged for grading by hand")
    write_csv(tmp_path / "grades.csv", [flagged])
    assert "withheld/7 !" in grading.GradeReport([flagged], [], None, "").table()

    # The instructor grades it in the formgrader: manual scores in the gradebook.
    with Gradebook(f"sqlite:///{db}") as gb:
        for grade in gb.find_submission("01_x", "ada").notebooks[0].grades:
            grade.manual_score = {"ex-a": 4, "ex-b": 1}[grade.name]
            grade.needs_manual_grade = False
        gb.db.commit()
    assert grading.main(["--root", str(tmp_path), "report"]) == 0
    row = _rows(tmp_path / "grades.csv")["ada"]
    assert (row["score"], row["max_score"], row["by_hand"]) == ("5", "7", "yes")
    outcomes = class_outcomes([], tmp_path / "grades.csv", db)
    table = grading.GradeReport(outcomes, [], None, "").table()
    assert "5/7 (by hand)" in table
    assert "withheld" not in table.splitlines()[2]
    # The export an LMS imports says the same.
    lms = (tmp_path / "grades-lms.csv").read_text().splitlines()
    assert lms == ["Username,SIS Login ID,01_x (7 points)", "ada,ada,5"]
