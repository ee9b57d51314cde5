"""Lesson 6's autograder scores other correct answers fully and typical wrong answers zero.

Two students submit the lesson, graded by the course's pipeline against live
clusters: one answers every exercise and quiz correctly but differently from
the reference, the other makes a typical mistake in every exercise and in one
quiz.
"""

import pytest
from lesson_answers import LessonAnswerTests

LESSON = "06_parallel_text"

# Grading two students takes a minute or two on a busy 2-core host.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

# Correct answers written differently from the reference.
ALTERNATIVE = {
    # a whole number written as a float
    "quiz-partition": """
        answer_partition = 10 % 4 * 1.0
        """,
    # a tuple, upper case
    "quiz-average": """
        answer_average = ("D", "A")
        """,
    # one apply_async per partition, classes counted with a Counter; NumPy integer
    # keys and lists where the text shows tuples
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
            return {np.int64(k): task.get() for k, task in tasks.items()}
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
        "not the right answer yet",
    ),
}

TEST_OF = {
    "quiz-partition": "test-quiz-partition",
    "quiz-average": "test-quiz-average",
    "ex-partition-classes": "test-partition-classes",
    "ex-average": "test-average",
}


class TestLesson06Answers(LessonAnswerTests):
    LESSON = LESSON
    ALTERNATIVE = ALTERNATIVE
    WRONG = WRONG
    TEST_OF = TEST_OF
