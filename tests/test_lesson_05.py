"""Lesson 5's autograder scores other correct answers fully and typical wrong answers zero.

Two students submit the lesson, graded by the course's pipeline against live
clusters: one answers every exercise and quiz correctly but differently from
the reference, the other makes a typical mistake in every exercise and in one
quiz.
"""

import textwrap

import nbformat
import pytest

from course_lib import grading

LESSON = "05_text_at_scale"
SOLUTION = grading.REPO_ROOT / "solutions" / LESSON / f"{LESSON}.ipynb"

# Grading two students takes a minute or two on a busy 2-core host.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

# Correct answers written differently from the reference.
ALTERNATIVE = {
    # a list, in another order, upper case
    "quiz-vocab": """
        answer_vocab = ["E", "b", "c"]
        """,
    "quiz-weights": """
        answer_weights = 2**18
        """,
    "quiz-online": """
        answer_online = ("d", "a")
        """,
    # module imports and np.bincount instead of a loop over an array
    "ex-hash-counts": """
        def hash_counts(tokens, n_features):
            import numpy
            import sklearn.utils

            columns = [sklearn.utils.murmurhash3_32(t, seed=0, positive=True) % n_features
                       for t in tokens]
            return numpy.bincount(columns, minlength=n_features)
        """,
    # the stream iterated with zip, classes named only on the first call
    "ex-learn-stream": """
        def learn_from_stream(stream, classifier, vectorizer, n_batches):
            for i, (texts, labels) in zip(range(n_batches), stream):
                if i == 0:
                    classifier.partial_fit(vectorizer.transform(texts), labels,
                                           classes=list(stream.classes_))
                else:
                    classifier.partial_fit(vectorizer.transform(texts), labels)
            return classifier
        """,
}

# Typical mistakes, and the words of the message that should explain each.
WRONG = {
    # Python's hash(): salted per process, so every engine numbers columns its own way
    "ex-hash-counts": (
        """
        def hash_counts(tokens, n_features):
            import numpy as np

            counts = np.zeros(n_features, dtype=int)
            for token in tokens:
                counts[hash(token) % n_features] += 1
            return counts
        """,
        "murmurhash3_32",
    ),
    # fit on each batch: the classifier forgets the earlier batches
    "ex-learn-stream": (
        """
        def learn_from_stream(stream, classifier, vectorizer, n_batches):
            for _ in range(n_batches):
                texts, targets = stream.next_batch()
                classifier.fit(vectorizer.transform(texts), targets)
            return classifier
        """,
        "Call partial_fit, not fit",
    ),
    # the number of columns of a vocabulary fitted on 2**20 tweets, say
    "quiz-weights": (
        """
        answer_weights = 2**20
        """,
        "Not the right answer yet",
    ),
}

TEST_OF = {
    "quiz-vocab": "test-quiz-vocab",
    "quiz-weights": "test-quiz-weights",
    "quiz-online": "test-quiz-online",
    "ex-hash-counts": "test-hash-counts",
    "ex-learn-stream": "test-learn-stream",
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
