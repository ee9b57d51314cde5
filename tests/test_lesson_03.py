"""Lesson 3's autograder scores other correct answers fully and typical wrong answers zero.

Two students submit the lesson, graded by the course's pipeline against live
clusters: one answers every exercise correctly but differently from the
reference, the other makes a typical mistake in every exercise (and one quiz).
"""

import pytest
from lesson_answers import LessonAnswerTests

# Grading two students takes a minute or two on a busy 2-core host.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

LESSON = "03_shared_memory"

# Correct answers written differently from the reference.
ALTERNATIVE = {
    # quizzes: other case, spacing and number types
    "quiz-mode": """
        answer_mode = " C "
        """,
    "quiz-compressed": """
        answer_compressed = 2.0 * 2
        """,
    "quiz-fancy": """
        answer_fancy = "B"
        """,
    # numpy arrays, the size converted to MiB the other way round, a float32
    "ex-copies-held": """
        def copies_held(before, after, nbytes):
            import numpy as np

            engines = sorted(after)
            pss_after = np.array([after[e]["pss_mb"] for e in engines])
            pss_before = np.array([before[e]["pss_mb"] for e in engines])
            return np.float32((pss_after - pss_before).sum() * 2**20 / nbytes)
        """,
    # a function that sets the engine's global, open_memmap instead of np.load; it returns
    # the AsyncResult (not data: the function returns nothing that matters)
    "ex-map-on-engines": """
        def map_on_engines(view, path, name):
            def open_here(name, path):
                import numpy as np

                globals()[name] = np.lib.format.open_memmap(path, mode="r")

            done = view.apply_async(open_here, name, str(path))
            done.get()
            return done
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
        quiz.check(answer_mode, "l3-mode")
        """,
        "not the right answer yet",
    ),
}

TEST_OF = {
    "ex-copies-held": "test-copies-held",
    "ex-map-on-engines": "test-map-on-engines",
    "ex-persist-splits": "test-persist-splits",
    "ex-split-sizes": "test-split-sizes",
    "quiz-mode": "test-quiz-mode",
    "quiz-compressed": "test-quiz-compressed",
    "quiz-fancy": "test-quiz-fancy",
}


class TestLesson03Answers(LessonAnswerTests):
    LESSON = LESSON
    ALTERNATIVE = ALTERNATIVE
    WRONG = WRONG
    TEST_OF = TEST_OF
