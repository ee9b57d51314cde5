"""Lesson 4's autograder scores other correct answers fully and typical wrong answers zero.

Two students submit the lesson, graded by the course's pipeline against live
clusters: one answers every exercise correctly but differently from the
reference, the other makes a typical mistake in every exercise (and one quiz).
"""

import textwrap

import nbformat
import pytest

from course_lib import grading

LESSON = "04_model_selection"
SOLUTION = grading.REPO_ROOT / "solutions" / LESSON / f"{LESSON}.ipynb"

# Correct answers written differently from the reference.
ALTERNATIVE = {
    # module imports, copy-on-write map, fit and score chained
    "ex-evaluate": """
        def evaluate_split(split_path, estimator, params):
            import sklearn.base

            import course_lib.splits

            parts = course_lib.splits.load_cv_split(split_path, mmap_mode="c")
            model = sklearn.base.clone(estimator)
            model.set_params(**params)
            return float(model.fit(parts[0], parts[1]).score(parts[2], parts[3]))
        """,
    # defaultdict and heapq instead of a sort
    "ex-best-so-far": """
        def best_so_far(candidates, tasks, n_top=3):
            import heapq
            from collections import defaultdict

            done = defaultdict(list)
            for (i, _), task in tasks.items():
                if task.ready():
                    done[i].append(task.result()["test_score"])
            means = [(sum(s) / len(s), candidates[i]) for i, s in done.items()]
            return heapq.nlargest(n_top, means, key=lambda pair: pair[0])
        """,
    # a loop of our own over ParameterSampler instead of launch_search
    "ex-budget": """
        def budgeted_search(view, split_paths, budget, random_state):
            from sklearn.model_selection import ParameterSampler

            from course_lib.search import evaluate

            settings = list(ParameterSampler(svc_space, budget, random_state=random_state))
            pending = [[view.apply_async(evaluate, path, SVC(), params) for path in split_paths]
                       for params in settings]
            rows = [{"params": params,
                     "mean_test_score": float(np.mean([t.get()["test_score"] for t in row]))}
                    for params, row in zip(settings, pending)]
            return sorted(rows, key=lambda row: row["mean_test_score"], reverse=True)
        """,
}

# Typical mistakes, and the words of the message that should explain each.
WRONG = {
    "ex-evaluate": (
        """
        def evaluate_split(split_path, estimator, params):
            from sklearn.base import clone

            from course_lib.splits import load_cv_split

            X_train, y_train, X_test, y_test = load_cv_split(split_path)
            model = clone(estimator).set_params(**params).fit(X_train, y_train)
            return float(model.score(X_train, y_train))  # scored on the training part
        """,
        "scoring on the test part",
    ),
    "ex-best-so-far": (
        """
        def best_so_far(candidates, tasks, n_top=3):
            scores = {}
            for (i, j), task in tasks.items():
                scores.setdefault(i, []).append(task.get()["test_score"])  # waits
            ranked = sorted(scores, key=lambda i: np.mean(scores[i]), reverse=True)
            return [(float(np.mean(scores[i])), candidates[i]) for i in ranked[:n_top]]
        """,
        "waited for tasks still running",
    ),
    "ex-budget": (
        """
        def budgeted_search(view, split_paths, budget, random_state):
            run = launch_search(view, SVC(), svc_grid, split_paths)  # the budget is ignored
            run.wait(progress_bar=False)
            return run.best(n=len(run.candidates))
        """,
        "With a budget of 3 settings",
    ),
    "quiz-matters": (
        """
        answer_matters = "C"
        """,
        "",
    ),
}

TEST_OF = {
    "ex-evaluate": "test-evaluate",
    "ex-best-so-far": "test-best-so-far",
    "ex-budget": "test-budget",
    "quiz-matters": "test-quiz-matters",
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
