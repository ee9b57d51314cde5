"""Every lesson's release is up to date and its exercises prove themselves.

The tests are parametrized over the lessons in ``solutions/``, so a lesson
added later is covered without touching this file; with no lesson, they have
no case. What they run is what ``make check-release`` and ``make
verify-exercises`` run (``course_lib.grading``), once for all lessons; the
verification is the suite's one grading of the class (``class_report``).
"""

import pytest

from course_lib import grading
from course_lib.grading.layout import released_lessons

LESSONS = grading.find_lessons(grading.REPO_ROOT / grading.SOURCE_DIR)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]


@pytest.fixture(scope="module")
def release_problems():
    """``make check-release``: what differs from a fresh release, what leaks."""
    return grading.check_release(grading.REPO_ROOT)


def test_every_release_folder_has_its_source():
    stale = set(released_lessons(grading.REPO_ROOT)) - set(LESSONS)
    assert not stale, f"lessons/ without solutions/: {sorted(stale)}; run `make release`"


@pytest.mark.parametrize("lesson", LESSONS)
def test_release_is_up_to_date(lesson, release_problems):
    mine = [p for p in release_problems if p.startswith(f"{grading.RELEASE_DIR}/{lesson}/")]
    assert not mine, "\n".join([*mine, "run `make release` and commit lessons/"])


@pytest.mark.parametrize("lesson", LESSONS)
def test_exercises_prove_themselves(lesson, class_report):
    """``make verify-exercises``, in the suite's grading of the class (tests/class_grading.py).

    Among its checks: the untouched release runs to the end, failing only in its
    exercises, and leaves no process and no file behind.
    """
    entry = class_report.lessons[lesson]
    assert not entry["problems"], "\n".join(entry["problems"])
    reference, blank = entry["reference"], entry["blank"]
    assert reference.cells, "no autograded test cell"
    assert all(score == maximum for score, maximum in reference.cells.values())
    assert all(not score for score, _ in blank.cells.values())
