"""Lesson 2's autograder scores other correct answers fully and typical wrong answers zero.

Two students submit the lesson, graded by the course's pipeline against live
clusters: one answers every exercise and quiz correctly but differently from
the reference, the other makes a typical mistake in every exercise and in one
quiz.
"""

import textwrap

import nbformat
import pytest

from course_lib import grading

LESSON = "02_load_balancing"
SOLUTION = grading.REPO_ROOT / "solutions" / LESSON / f"{LESSON}.ipynb"

# Grading two students takes a minute or two on a busy 2-core host.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

# Correct answers written differently from the reference.
ALTERNATIVE = {
    # a list, upper and lower case, in another order
    "quiz-views": """
        answer_views = ["D", "c", "a"]
        """,
    "quiz-balance": """
        answer_seconds = 4.0
        """,
    # one apply_async per item, polled with ready(), instead of map and progress
    "ex-map-progress": """
        import time


        def map_with_progress(view, func, items):
            tasks = [view.apply_async(func, item) for item in items]
            progress = []
            while True:
                done = sum(task.ready() for task in tasks)
                progress.append(done)
                if done == len(tasks):
                    return [task.get() for task in tasks], progress
                time.sleep(0.02)
        """,
    # a Counter, and timestamps subtracted as floats
    "ex-busy-seconds": """
        from collections import Counter


        def busy_seconds(result):
            seconds = Counter()
            for record in result.metadata:
                ran = record["completed"].timestamp() - record["started"].timestamp()
                seconds[record["engine_id"]] += ran
            return dict(seconds)
        """,
}

# Typical mistakes, and the words of the message that should explain each.
WRONG = {
    # the progress read once, after waiting for everything
    "ex-map-progress": (
        """
        def map_with_progress(view, func, items):
            batch = view.map(func, items)
            results = batch.get()
            return results, [batch.progress]
        """,
        "were not taken while the tasks ran",
    ),
    # counts the time in the queue and in transit too
    "ex-busy-seconds": (
        """
        def busy_seconds(result):
            busy = {}
            for record in result.metadata:
                spent = (record["received"] - record["submitted"]).total_seconds()
                busy[record["engine_id"]] = busy.get(record["engine_id"], 0.0) + spent
            return busy
        """,
        "busy times add up to",
    ),
    # the direct view's time
    "quiz-balance": (
        """
        answer_seconds = 6
        """,
        "Not the right answer yet",
    ),
}

TEST_OF = {
    "quiz-views": "test-quiz-views",
    "quiz-balance": "test-quiz-balance",
    "ex-map-progress": "test-map-progress",
    "ex-busy-seconds": "test-busy-seconds",
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
