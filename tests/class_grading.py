"""The suite's practice class, graded once for the whole session.

Every lesson's reference and untouched release (what ``make verify-exercises``
grades), and the students of every lesson's answer tests
(:class:`lesson_answers.LessonAnswerTests`: the alternative, the wrong and any
extra students), are graded in one :func:`course_lib.grading.verify_exercises`
run: one nbgrader preparation for all lessons, one pool of grading tasks. The
tests that read its report (``tests/test_release.py``, ``tests/test_lesson_*.py``)
ask for the ``class_report`` fixture of ``tests/conftest.py``; only the lessons
their collected tests need are graded.
"""

import nbformat

from course_lib import grading


def lessons_needed(items):
    """The lessons the collected tests that read the class's report need.

    A test names its lesson by its class (``LESSON``) or by a ``lesson``
    parameter; it reads the report when it asks for ``class_report``.
    """
    lessons = set()
    for item in items:
        if "class_report" not in getattr(item, "fixturenames", ()):
            continue
        lesson = getattr(getattr(item, "cls", None), "LESSON", None)
        callspec = getattr(item, "callspec", None)
        if lesson is None and callspec is not None:
            lesson = callspec.params.get("lesson")
        if lesson is None:
            raise LookupError(f"{item.nodeid} reads class_report but names no lesson")
        lessons.add(lesson)
    return sorted(lessons)


def write_class(folder, answer_classes, lessons):
    """Write the answer tests' students of ``lessons`` as ``<student>/<lesson>/``."""
    for cls in answer_classes:
        if cls.LESSON not in lessons:
            continue
        for student, answers in cls.students().items():
            notebook = folder / student / cls.LESSON / cls.solution().name
            notebook.parent.mkdir(parents=True)
            nbformat.write(cls.submission(answers), notebook)


def grade_class(folder, answer_classes, lessons):
    """One verify-exercises run over ``lessons``, with the answer tests' students."""
    others = folder / "others"
    others.mkdir()
    write_class(others, answer_classes, lessons)
    report = grading.verify_exercises(
        grading.REPO_ROOT, lessons, others=others, jobs=2, verbose=False
    )
    print(report.table())
    return report
