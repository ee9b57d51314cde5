"""Lesson 1's autograder scores other correct answers fully and typical wrong answers zero.

Two students submit the lesson, graded by the course's pipeline against live
clusters: one answers every exercise and quiz correctly but differently from
the reference, the other makes a typical mistake in every exercise and in one
quiz.
"""

import pytest
from lesson_answers import LessonAnswerTests

LESSON = "01_parallel_primer"

# Grading two students takes a minute or two on a busy 2-core host.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

# Correct answers written differently from the reference.
ALTERNATIVE = {
    # a list, upper and lower case, in another order
    "quiz-parallel": """
        answer_parallel = ["E", "a", "C"]
        """,
    # a float, computed
    "quiz-copies": """
        answer_copies = 5 * (4 * 3) * 1.0
        """,
    # the arithmetic written out
    "quiz-targets": """
        answer_sum_a = 2 + (2 * 10 + 1)
        """,
    # the engines' PIDs, measured from the notebook; MiB as 1024 * 1024, as NumPy
    # float32 (any real number is a number of MiB)
    "ex-engine-rss": """
        def engine_rss_mib(view):
            import os

            import numpy
            import psutil

            pids = view.apply_async(os.getpid).get_dict()
            return {
                engine: numpy.float32(psutil.Process(pid).memory_info().rss / 1024 / 1024)
                for engine, pid in pids.items()
            }
        """,
    # a string executed on the engines instead of a function; np.full, not np.ones; it
    # returns the AsyncResult (not data: the return value does not matter)
    "ex-allocate": """
        def allocate_on_engines(view, size_mib):
            n_values = size_mib * 1024 * 1024 // 8
            return view.execute(f"import numpy as np; block = np.full({n_values}, 1.5)", block=True)
        """,
}

# Typical mistakes, and the words of the message that should explain each.
WRONG = {
    # the notebook's own process, not the engines'
    "ex-engine-rss": (
        """
        def engine_rss_mib(view):
            import psutil

            return {engine: psutil.Process().memory_info().rss / 2**20 for engine in view.targets}
        """,
        "Measure the engine's own process",
    ),
    # the right size, but np.zeros leaves its pages unwritten: no memory is used
    "ex-allocate": (
        """
        def allocate_on_engines(view, size_mib):
            view.execute(f"import numpy; block = numpy.zeros({size_mib} * 2**20 // 8)", block=True)
        """,
        "is every value of the array written",
    ),
    # forgot the value added to param_1: 5 folds x 9 settings
    "quiz-copies": (
        """
        answer_copies = 45
        """,
        "not the right answer yet",
    ),
}

TEST_OF = {
    "quiz-parallel": "test-quiz-parallel",
    "quiz-copies": "test-quiz-copies",
    "quiz-targets": "test-quiz-targets",
    "ex-engine-rss": "test-engine-rss",
    "ex-allocate": "test-allocate",
}


class TestLesson01Answers(LessonAnswerTests):
    LESSON = LESSON
    ALTERNATIVE = ALTERNATIVE
    WRONG = WRONG
    TEST_OF = TEST_OF


def test_an_empty_expected_message_is_refused():
    with pytest.raises(TypeError, match=r"WRONG\['ex-allocate'\]: give the words"):

        class Vacuous(LessonAnswerTests):
            WRONG = {"ex-allocate": ("def allocate_on_engines(view, size_mib): pass", "")}
