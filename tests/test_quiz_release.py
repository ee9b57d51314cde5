"""course_lib.grading._quiz_release: quiz cells are released without a raising stub."""

import nbformat
from nbgrader.converters import GenerateAssignment
from nbgrader.preprocessors import ClearSolutions
from traitlets.config import Config

from course_lib.grading._quiz_release import ClearQuizSolutions, use_quiz_stubs

QUIZ = """answer_copies = ...  # a whole number
### BEGIN SOLUTION
answer_copies = 60
### END SOLUTION
quiz.check(answer_copies, "l1-copies")"""

EXERCISE = """def double(x):
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION"""


def _cell(source, grade_id):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata.nbgrader = {
        "grade": False,
        "grade_id": grade_id,
        "locked": False,
        "schema_version": 3,
        "solution": True,
    }
    return cell


def _release(preprocessor):
    nb = nbformat.v4.new_notebook(cells=[_cell(QUIZ, "quiz-copies"), _cell(EXERCISE, "ex-double")])
    nb.metadata.kernelspec = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nb, _ = preprocessor.preprocess(nb, {})
    return [cell.source for cell in nb.cells]


def test_quiz_cell_keeps_its_placeholder_and_check_only():
    quiz_cell, exercise = _release(ClearQuizSolutions())
    assert quiz_cell.splitlines() == QUIZ.splitlines()[:1] + QUIZ.splitlines()[-1:]
    # exercises keep nbgrader's stub, indented in the function
    assert exercise == "def double(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()"
    # nbgrader's own ClearSolutions would have put the raising stub in the quiz cell
    assert "raise NotImplementedError()" in _release(ClearSolutions())[0]


def test_the_release_uses_it_in_place_of_clear_solutions():
    c = Config()
    use_quiz_stubs(c)
    steps = c.GenerateAssignment.preprocessors
    assert ClearQuizSolutions in steps and ClearSolutions not in steps
    default = GenerateAssignment.class_traits()["preprocessors"].default()
    assert steps == [ClearQuizSolutions if s is ClearSolutions else s for s in default]
