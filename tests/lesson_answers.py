"""Grade other correct answers and typical wrong answers of a lesson's exercises.

Every lesson's test module subclasses :class:`LessonAnswerTests` and gives, for
each answer cell, a correct answer written differently from the reference and,
for the exercises, a typical wrong answer with the words of the message that
should explain it. Two students submit the solution notebook with those cells
replaced, and the course's own pipeline grades them against live clusters:
once for the whole suite, with every other lesson's students and each
lesson's reference and untouched release (``tests/class_grading.py``).
"""

import textwrap

import nbformat
import pytest

from course_lib import grading
from course_lib.grading.notebooks import grade_id as grade_id_of
from course_lib.grading.notebooks import nbgrader_meta


def _grade_id(cell):
    return grade_id_of(cell)


class LessonAnswerTests:
    """Base of ``TestLessonNN`` classes: set the four attributes below.

    Attributes
    ----------
    LESSON : str
        The lesson folder, e.g. ``"01_parallel_primer"``.
    ALTERNATIVE : dict
        ``{answer grade_id: source}``: correct answers unlike the reference.
    WRONG : dict
        ``{answer grade_id: (source, words of the expected message)}``.
    TEST_OF : dict
        ``{answer grade_id: grade_id of the test cell that grades it}``.
    EXTRA_STUDENTS : dict, optional
        ``{student: {answer grade_id: source}}``: more submissions graded in
        the same run, for a lesson's own tests (the reference elsewhere).
    """

    LESSON = ALTERNATIVE = WRONG = TEST_OF = None
    EXTRA_STUDENTS = {}
    #: Every subclass defined (imported), in order: the class the suite grades.
    registered = []

    def __init_subclass__(cls, **kwargs):
        """Register the lesson; refuse a wrong answer without the words of its message.

        An empty expected message is contained in every text, so the test
        would pass whatever the student is told (or if nothing is said).
        """
        super().__init_subclass__(**kwargs)
        if any(other.LESSON == cls.LESSON for other in LessonAnswerTests.registered):
            raise TypeError(f"{cls.__name__}: lesson {cls.LESSON!r} has answer tests already")
        for gid, (_, words) in (cls.WRONG or {}).items():
            if not isinstance(words, str) or not words.strip():
                raise TypeError(
                    f"{cls.__name__}.WRONG[{gid!r}]: give the words of the message the student "
                    f"must read, not {words!r}."
                )
        LessonAnswerTests.registered.append(cls)

    @classmethod
    def students(cls):
        """``{student: {answer grade_id: source}}``: who submits this lesson."""
        return {
            "alternative": cls.ALTERNATIVE,
            "wrong": {gid: source for gid, (source, _) in cls.WRONG.items()},
            **cls.EXTRA_STUDENTS,
        }

    @classmethod
    def solution(cls):
        return grading.REPO_ROOT / "solutions" / cls.LESSON / f"{cls.LESSON}.ipynb"

    @classmethod
    def submission(cls, answers):
        """The solution notebook with some answer cells replaced."""
        nb = nbformat.read(cls.solution(), as_version=4)
        replaced = set()
        for cell in nb.cells:
            if _grade_id(cell) in answers:
                cell.source = textwrap.dedent(answers[_grade_id(cell)]).strip()
                replaced.add(_grade_id(cell))
        assert replaced == set(answers), f"no answer cell for {set(answers) - replaced}"
        return nb

    @staticmethod
    def error_text(outcome, grade_id):
        """What a test cell that lost points said (``grades.csv``'s message)."""
        return "\n".join(
            failure for failure in outcome.failures if failure.startswith(f"{grade_id}: ")
        )

    @pytest.fixture
    def graded(self, class_report):
        """This lesson's entry of the class's report: ``graded.outcome(student)``."""
        entry = class_report.lessons[self.LESSON]
        assert set(entry["others"]) == set(self.students()), entry["problems"]
        return Graded(entry)

    def test_every_answer_cell_has_an_alternative(self):
        nb = nbformat.read(self.solution(), as_version=4)
        answers = {
            _grade_id(c)
            for c in nb.cells
            if nbgrader_meta(c).get("solution") and not c.metadata["nbgrader"].get("grade")
        }
        assert answers == set(self.ALTERNATIVE) == set(self.TEST_OF)
        assert set(self.WRONG) <= answers

    def test_every_exercise_has_a_typical_mistake_with_its_message(self):
        exercises = {gid for gid in self.ALTERNATIVE if gid.startswith("ex-")}
        assert exercises <= set(self.WRONG), f"no wrong answer for {exercises - set(self.WRONG)}"
        assert all(words.strip() for _, words in self.WRONG.values())

    @pytest.mark.slow
    def test_other_correct_answers_get_full_marks(self, graded):
        outcome = graded.outcome("alternative")
        assert outcome.status == "graded", outcome.message
        assert set(outcome.cells) == set(self.TEST_OF.values())
        lost = {gid: score for gid, score in outcome.cells.items() if score[0] != score[1]}
        assert not lost, f"correct answers lost points: {lost}"
        assert outcome.score == outcome.max_score > 0
        assert not outcome.leftovers

    @pytest.mark.slow
    def test_typical_wrong_answer_gets_zero_with_a_helpful_message(self, graded, wrong_answer):
        outcome = graded.outcome("wrong")
        assert outcome.status == "graded", outcome.message
        test_id = self.TEST_OF[wrong_answer]
        assert outcome.cells[test_id][0] == 0, f"{wrong_answer}: a wrong answer got points"
        assert self.WRONG[wrong_answer][1] in self.error_text(outcome, test_id)

    @pytest.mark.slow
    def test_wrong_answers_cost_only_their_own_points(self, graded):
        outcome = graded.outcome("wrong")
        wrong_tests = {self.TEST_OF[gid] for gid in self.WRONG}
        others = {gid: s for gid, s in outcome.cells.items() if gid not in wrong_tests}
        assert others, "every graded cell was given a wrong answer"
        assert all(score == maximum for score, maximum in others.values()), others
        assert not outcome.leftovers


class Graded:
    """One lesson's students in the class's report."""

    def __init__(self, entry):
        self.entry = entry

    def outcome(self, student):
        return self.entry["others"][student]
