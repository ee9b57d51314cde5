"""The command line, ``python -m course_lib.grading``."""

import subprocess
import sys

import pytest

from course_lib import grading


def test_the_command_line_with_no_lesson(tmp_path, capsys):
    (tmp_path / "solutions").mkdir()
    submissions = tmp_path / "in"
    (submissions / "ada").mkdir(parents=True)
    assert grading.main(["--root", str(tmp_path), "check-release"]) == 0
    assert grading.main(["--root", str(tmp_path), "verify-exercises"]) == 0
    assert grading.main(["--root", str(tmp_path), "grade", str(submissions)]) == 0
    assert (tmp_path / "grades.csv").read_text().startswith("student,lesson,score")
    assert grading.main(["--root", str(tmp_path), "grade", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown lesson"):
        grading.check_release(tmp_path, ["01_nothing"])


def test_python_dash_m_runs_the_command_line(tmp_path):
    (tmp_path / "solutions").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "course_lib.grading", "--root", str(tmp_path), "check-release"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "lessons/ is up to date" in result.stdout
