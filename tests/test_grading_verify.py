"""verify-exercises on the fixture lesson and on a lesson with mistakes."""

import shutil

import pytest
from grading_helpers import FIXTURES, LESSON, NOTEBOOK, copy_course

from course_lib import _processes, grading

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def verified(tmp_path_factory):
    """verify-exercises on the fixture lesson and on a lesson with mistakes."""
    root = tmp_path_factory.mktemp("verify")
    copy_course(root)
    shutil.copytree(FIXTURES / "bad_course" / "solutions", root / "solutions", dirs_exist_ok=True)
    others = tmp_path_factory.mktemp("others")
    (others / "ada" / LESSON).mkdir(parents=True)
    shutil.copy(root / "solutions" / LESSON / NOTEBOOK, others / "ada" / LESSON)
    report = grading.verify_exercises(root, others=others, jobs=2, verbose=False)
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


def test_verify_grades_other_students_in_the_same_run(verified):
    ada = verified.lessons[LESSON]["others"]["ada"]
    assert ada.status == "graded", ada.message
    assert ada.cells == verified.lessons[LESSON]["reference"].cells
    assert verified.lessons["01_vacuous"]["others"] == {}  # ada did not submit it


def test_verify_refuses_others_named_as_its_own_students(tmp_path):
    copy_course(tmp_path / "course")
    (tmp_path / "others" / "blank" / LESSON).mkdir(parents=True)
    with pytest.raises(ValueError, match=r"holds the student\(s\) \['blank'\]"):
        grading.verify_exercises(tmp_path / "course", others=tmp_path / "others", verbose=False)
    assert not (tmp_path / "course" / "autograded").exists()


def test_verify_exercises_rejects_a_vacuous_test_and_a_leftover_process(verified):
    problems = "\n".join(verified.lessons["01_vacuous"]["problems"])
    assert "untouched release gets 1.0 of 1.0 points on test-vacuous" in problems
    assert "left processes behind" in problems and "sleep" in problems
    assert "the untouched release fails in teaching cell 3 of 01_vacuous.ipynb" in problems
    assert "NotImplementedError" in problems
    assert "left files next to the notebook: ['scratch.txt']" in problems
    assert not verified.ok
    assert _processes.find_marked(grading.RUN_VAR, verified.run_id) == []
