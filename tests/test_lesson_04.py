"""Lesson 4's autograder scores other correct answers fully and typical wrong answers zero.

Two students submit the lesson, graded by the course's pipeline against live
clusters: one answers every exercise correctly but differently from the
reference, the other makes a typical mistake in every exercise (and one quiz).
"""

import pytest
from lesson_answers import LessonAnswerTests

# Grading two students takes a minute or two on a busy 2-core host.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

LESSON = "04_model_selection"

# Correct answers written differently from the reference.
ALTERNATIVE = {
    # quizzes: other case and number types
    "quiz-copies": """
        answer_naive_copies = 12 * 5.0
        answer_mapped_copies = 1.0
        """,
    "quiz-matters": """
        answer_matters = "Gamma"
        """,
    "quiz-halving": """
        answer_halving = -(-12 // 3 // 3) + 0.0
        """,
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
    # defaultdict and heapq instead of a sort; a tuple where the text says a list
    "ex-best-so-far": """
        def best_so_far(candidates, tasks, n_top=3):
            import heapq
            from collections import defaultdict

            done = defaultdict(list)
            for (i, _), task in tasks.items():
                if task.ready():
                    done[i].append(task.result()["test_score"])
            means = [(sum(s) / len(s), candidates[i]) for i, s in done.items()]
            return tuple(heapq.nlargest(n_top, means, key=lambda pair: pair[0]))
        """,
    # a loop of our own over ParameterSampler instead of launch_search; a tuple
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
            return tuple(sorted(rows, key=lambda row: row["mean_test_score"], reverse=True))
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
        "not the right answer yet",
    ),
}

TEST_OF = {
    "ex-evaluate": "test-evaluate",
    "ex-best-so-far": "test-best-so-far",
    "ex-budget": "test-budget",
    "quiz-matters": "test-quiz-matters",
    "quiz-copies": "test-quiz-copies",
    "quiz-halving": "test-quiz-halving",
}


class TestLesson04Answers(LessonAnswerTests):
    LESSON = LESSON
    ALTERNATIVE = ALTERNATIVE
    WRONG = WRONG
    TEST_OF = TEST_OF
