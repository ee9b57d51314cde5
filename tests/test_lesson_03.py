"""Lesson 3's autograder scores other correct answers fully and typical wrong answers zero.

Two students submit the lesson, graded by the course's pipeline against live
clusters: one answers every exercise correctly but differently from the
reference, the other makes a typical mistake in every exercise (and one quiz).
"""

import textwrap

import nbformat
import pytest

from course_lib import grading

LESSON = "03_shared_memory"
SOLUTION = grading.REPO_ROOT / "solutions" / LESSON / f"{LESSON}.ipynb"

# Correct answers written differently from the reference.
ALTERNATIVE = {
    # numpy arrays, and the size converted to MiB the other way round
    "ex-copies-held": """
        def copies_held(before, after, nbytes):
            import numpy as np

            engines = sorted(after)
            pss_after = np.array([after[e]["pss_mb"] for e in engines])
            pss_before = np.array([before[e]["pss_mb"] for e in engines])
            return float((pss_after - pss_before).sum() * 2**20 / nbytes)
        """,
    # a function that sets the engine's global, open_memmap instead of np.load
    "ex-map-on-engines": """
        def map_on_engines(view, path, name):
            def open_here(name, path):
                import numpy as np

                globals()[name] = np.lib.format.open_memmap(path, mode="r")

            view.apply_sync(open_here, name, str(path))
        """,
    # StratifiedKFold instead of StratifiedShuffleSplit, plain joblib tuples
    "ex-persist-splits": """
        def persist_stratified_splits(X, y, folder):
            import os

            import joblib
            from sklearn.model_selection import StratifiedKFold

            paths = []
            cv = StratifiedKFold(n_splits=4, shuffle=True, random_state=42)
            for i, (train, test) in enumerate(cv.split(X, y)):
                path = os.path.join(folder, f"fold{i}.pkl")
                joblib.dump((X[train], y[train], X[test], y[test]), path)
                paths.append(path)
            return paths
        """,
    # one apply_async per split instead of map
    "ex-split-sizes": """
        def split_sizes(view, paths):
            def count(path):
                import course_lib.splits

                parts = course_lib.splits.load_cv_split(path)
                return parts[0].shape[0], parts[2].shape[0]

            pending = [view.apply_async(count, path) for path in paths]
            return [task.get() for task in pending]
        """,
}

# Typical mistakes, and the words of the message that should explain each.
WRONG = {
    "ex-copies-held": (
        """
        def copies_held(before, after, nbytes):
            return sum(after[e]["rss_mb"] - before[e]["rss_mb"] for e in after) / (nbytes / 2**20)
        """,
        "which of RSS, USS and PSS",
    ),
    "ex-map-on-engines": (
        """
        def map_on_engines(view, path, name):
            view.execute(f"import numpy; {name} = numpy.load({str(path)!r})", block=True)
        """,
        "can write into its array",
    ),
    "ex-persist-splits": (
        """
        def persist_stratified_splits(X, y, folder):
            from sklearn.model_selection import KFold

            return persist_cv_splits(X, y, KFold(n_splits=4), folder)
        """,
        "not stratified",
    ),
    "ex-split-sizes": (
        """
        def split_sizes(view, paths):
            def sizes(path):
                X_train, y_train, X_test, y_test = load_cv_split(path)  # not imported there
                return len(y_train), len(y_test)

            return view.map_sync(sizes, paths)
        """,
        "what it imports itself",
    ),
    "quiz-mode": (
        """
        answer_mode = "r"
        quiz.check(answer_mode, "l3-mode:3591461cb137d503585a")
        """,
        "",
    ),
}

TEST_OF = {
    "ex-copies-held": "test-copies-held",
    "ex-map-on-engines": "test-map-on-engines",
    "ex-persist-splits": "test-persist-splits",
    "ex-split-sizes": "test-split-sizes",
    "quiz-mode": "test-quiz-mode",
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


@pytest.mark.slow
def test_other_correct_answers_get_full_marks(graded):
    outcome = graded.outcome("alternative", LESSON)
    assert outcome.status == "graded", outcome.message
    lost = {gid: score for gid, score in outcome.cells.items() if score[0] != score[1]}
    assert not lost, f"correct answers lost points: {lost}"
    assert outcome.score == outcome.max_score > 0


@pytest.mark.slow
@pytest.mark.parametrize("answer_id", sorted(WRONG))
def test_typical_wrong_answer_gets_zero_with_a_helpful_message(graded, answer_id):
    outcome = graded.outcome("wrong", LESSON)
    assert outcome.status == "graded", outcome.message
    test_id = TEST_OF[answer_id]
    assert outcome.cells[test_id][0] == 0, f"{answer_id}: a wrong answer got points"
    message = WRONG[answer_id][1]
    assert message in _error_text(outcome.autograded, test_id)


@pytest.mark.slow
def test_wrong_answers_cost_only_their_own_points(graded):
    outcome = graded.outcome("wrong", LESSON)
    others = {gid: s for gid, s in outcome.cells.items() if gid not in TEST_OF.values()}
    assert others, "every graded cell was given a wrong answer"
    assert all(score == maximum for score, maximum in others.values()), others
