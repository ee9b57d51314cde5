"""verify-exercises on the fixture lesson and on a lesson with mistakes."""

import shutil

import pytest
from grading_helpers import FIXTURES, LESSON, copy_course

from course_lib import _processes, grading

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def verified(tmp_path_factory):
    """verify-exercises on the fixture lesson and on a lesson with mistakes."""
    root = tmp_path_factory.mktemp("verify")
    copy_course(root)
    shutil.copytree(FIXTURES / "bad_course" / "solutions", root / "solutions", dirs_exist_ok=True)
    report = grading.verify_exercises(root, jobs=2, verbose=False)
    print(report.table())
    return report


def test_verify_exercises_passes_the_fixture_lesson(verified):
    entry = verified.lessons[LESSON]
    assert entry["problems"] == []
    reference, blank = entry["reference"], entry["blank"]
    assert set(reference.cells) == {"test-squares", "test-pids", "test-quiz-engines"}
    assert all(score == maximum for score, maximum in reference.cells.values())
    assert all(score == 0 for score, _ in blank.cells.values())
    assert LESSON in verified.table()


def test_verify_exercises_rejects_a_vacuous_test_and_a_leftover_process(verified):
    problems = "\n".join(verified.lessons["01_vacuous"]["problems"])
    assert "untouched release gets 1.0 of 1.0 points on test-vacuous" in problems
    assert "left processes behind" in problems and "sleep" in problems
    assert not verified.ok
    assert _processes.find_marked(grading.RUN_VAR, verified.run_id) == []
