"""Lesson 2's autograder scores other correct answers fully and typical wrong answers zero.

Two students submit the lesson, graded by the course's pipeline against live
clusters: one answers every exercise and quiz correctly but differently from
the reference, the other makes a typical mistake in every exercise and in one
quiz.
"""

import pytest
from lesson_answers import LessonAnswerTests

LESSON = "02_load_balancing"

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
    # one apply_async per item, polled with ready(), instead of map and progress;
    # the pair as a list, the counts as NumPy integers
    "ex-map-progress": """
        import time

        import numpy as np


        def map_with_progress(view, func, items):
            tasks = [view.apply_async(func, item) for item in items]
            progress = []
            while True:
                done = np.int64(sum(task.ready() for task in tasks))
                progress.append(done)
                if done == len(tasks):
                    return [[task.get() for task in tasks], progress]
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
        "not the right answer yet",
    ),
}

TEST_OF = {
    "quiz-views": "test-quiz-views",
    "quiz-balance": "test-quiz-balance",
    "ex-map-progress": "test-map-progress",
    "ex-busy-seconds": "test-busy-seconds",
}


class TestLesson02Answers(LessonAnswerTests):
    LESSON = LESSON
    ALTERNATIVE = ALTERNATIVE
    WRONG = WRONG
    TEST_OF = TEST_OF
