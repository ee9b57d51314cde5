"""Lesson 6's autograder scores other correct answers fully and typical wrong answers zero.

Two students submit the lesson, graded by the course's pipeline against live
clusters: one answers every exercise and quiz correctly but differently from
the reference, the other makes a typical mistake in every exercise and in one
quiz.
"""

import textwrap

import nbformat
import pytest

from course_lib import grading

LESSON = "06_parallel_text"
SOLUTION = grading.REPO_ROOT / "solutions" / LESSON / f"{LESSON}.ipynb"

# Grading two students takes a minute or two on a busy 2-core host.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

# Correct answers written differently from the reference.
ALTERNATIVE = {
    "quiz-partition": """
        answer_partition = 10 % 4
        """,
    # a tuple, upper case
    "quiz-average": """
        answer_average = ("D", "A")
        """,
    # one apply_async per partition, classes counted with a Counter
    "ex-partition-classes": """
        def partition_classes(view, csv_path, n_partitions):
            def count(path, n, k):
                from collections import Counter

                import course_lib.text

                labels = course_lib.text.read_tweets(path, n_partitions=n, partition_id=k)[1]
                c = Counter(labels.tolist())
                return [c[-1], c[1]]

            tasks = {k: view.apply_async(count, csv_path, n_partitions, k)
                     for k in range(n_partitions)}
            return {k: tuple(task.get()) for k, task in tasks.items()}
        """,
    # a running sum, and copy.copy of the estimator with fresh arrays
    "ex-average": """
        def average_by_hand(models):
            import copy

            total_coef = sum(m.coef_ for m in models)
            total_intercept = sum(m.intercept_ for m in models)
            new = copy.copy(models[-1])
            new.coef_ = total_coef / len(models)
            new.intercept_ = total_intercept / len(models)
            return new
        """,
}

# Typical mistakes, and the words of the message that should explain each.
WRONG = {
    # contiguous blocks of the file, which is sorted by polarity
    "ex-partition-classes": (
        """
        def partition_classes(view, csv_path, n_partitions):
            def count(k):
                from course_lib.text import read_tweets

                _, targets = read_tweets(csv_path)
                size = len(targets) // n_partitions
                block = targets[k * size:(k + 1) * size]
                return int((block == -1).sum()), int((block == 1).sum())

            return dict(enumerate(view.map_sync(count, range(n_partitions))))
        """,
        "modulo n_partitions",
    ),
    # the intercepts forgotten: the copy keeps the first model's
    "ex-average": (
        """
        def average_by_hand(models):
            import copy

            import numpy as np

            average = copy.deepcopy(models[0])
            average.coef_ = np.mean([m.coef_ for m in models], axis=0)
            return average
        """,
        "intercept_",
    ),
    "quiz-average": (
        """
        answer_average = {"a", "b", "d"}
        """,
        "Not the right answer yet",
    ),
}

TEST_OF = {
    "quiz-partition": "test-quiz-partition",
    "quiz-average": "test-quiz-average",
    "ex-partition-classes": "test-partition-classes",
    "ex-average": "test-average",
}


def _grade_id(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def _submission(answers):
    """The solution notebook with some answer cells replaced."""
    nb = nbformat.read(SOLUTION, as_version=4)
    replaced = set()
    for cell in nb.cells:
        if _grade_id(cell) in answers:
            cell.source = textwrap.dedent(answers[_grade_id(cell)]).strip()
            replaced.add(_grade_id(cell))
    assert replaced == set(answers), f"no answer cell for {set(answers) - replaced}"
    return nb


def _error_text(autograded_dir, grade_id):
    """The error messages the autograded test cell printed."""
    nb = nbformat.read(autograded_dir / SOLUTION.name, as_version=4)
    for cell in nb.cells:
        if _grade_id(cell) == grade_id:
            return "\n".join(
                f"{out.get('ename')}: {out.get('evalue')}"
                for out in cell.get("outputs", [])
                if out.get("output_type") == "error"
            )
    raise KeyError(grade_id)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = tmp_path_factory.mktemp("course")
    (course / "solutions").mkdir()
    (course / "solutions" / LESSON).symlink_to(SOLUTION.parent, target_is_directory=True)
    submissions = tmp_path_factory.mktemp("submissions")
    students = {
        "alternative": ALTERNATIVE,
        "wrong": {gid: source for gid, (source, _) in WRONG.items()},
    }
    for student, answers in students.items():
        folder = submissions / student / LESSON
        folder.mkdir(parents=True)
        nbformat.write(_submission(answers), folder / SOLUTION.name)
    report = grading.grade(submissions, course, lessons=[LESSON], jobs=2, verbose=False)
    assert report.ok, report.problems
    return report


def test_every_answer_cell_has_an_alternative():
    nb = nbformat.read(SOLUTION, as_version=4)
    answers = {
        _grade_id(c)
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("solution")
        and not c.metadata["nbgrader"].get("grade")
    }
    assert answers == set(ALTERNATIVE) == set(TEST_OF)


def test_other_correct_answers_get_full_marks(graded):
    outcome = graded.outcome("alternative", LESSON)
    assert outcome.status == "graded", outcome.message
    assert set(outcome.cells) == set(TEST_OF.values())
    lost = {gid: score for gid, score in outcome.cells.items() if score[0] != score[1]}
    assert not lost, f"correct answers lost points: {lost}"
    assert outcome.score == outcome.max_score > 0
    assert not outcome.leftovers


@pytest.mark.parametrize("answer_id", sorted(WRONG))
def test_typical_wrong_answer_gets_zero_with_a_helpful_message(graded, answer_id):
    outcome = graded.outcome("wrong", LESSON)
    assert outcome.status == "graded", outcome.message
    test_id = TEST_OF[answer_id]
    assert outcome.cells[test_id][0] == 0, f"{answer_id}: a wrong answer got points"
    assert WRONG[answer_id][1] in _error_text(outcome.autograded, test_id)


def test_wrong_answers_cost_only_their_own_points(graded):
    outcome = graded.outcome("wrong", LESSON)
    wrong_tests = {TEST_OF[gid] for gid in WRONG}
    others = {gid: s for gid, s in outcome.cells.items() if gid not in wrong_tests}
    assert others, "every graded cell was given a wrong answer"
    assert all(score == maximum for score, maximum in others.values()), others
