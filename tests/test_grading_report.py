"""What grading reports: the screen table and grades.csv, row by row."""

import csv

from course_lib import grading
from course_lib.grading.report import NO_SANDBOX, write_csv


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
