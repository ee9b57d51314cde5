"""Lesson 5's autograder scores other correct answers fully and typical wrong answers zero.

Two students submit the lesson, graded by the course's pipeline against live
clusters: one answers every exercise and quiz correctly but differently from
the reference, the other makes a typical mistake in every exercise and in one
quiz.
"""

import pytest
from lesson_answers import LessonAnswerTests

LESSON = "05_text_at_scale"

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
        "not the right answer yet",
    ),
}

TEST_OF = {
    "quiz-vocab": "test-quiz-vocab",
    "quiz-weights": "test-quiz-weights",
    "quiz-online": "test-quiz-online",
    "ex-hash-counts": "test-hash-counts",
    "ex-learn-stream": "test-learn-stream",
}


class TestLesson05Answers(LessonAnswerTests):
    LESSON = LESSON
    ALTERNATIVE = ALTERNATIVE
    WRONG = WRONG
    TEST_OF = TEST_OF
