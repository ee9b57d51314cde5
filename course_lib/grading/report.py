"""What grading found, for people: outcomes, the screen tables, ``grades.csv``."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

__all__ = [
    "CSV_COLUMNS",
    "NO_SANDBOX",
    "GradeReport",
    "Outcome",
    "VerifyReport",
    "class_outcomes",
    "read_csv",
    "write_csv",
    "write_lms_csv",
]

#: What every row says about a submission graded with ``SANDBOX=off``.
NO_SANDBOX = "graded without a sandbox"


@dataclasses.dataclass
class Outcome:
    """The grading of one student's lesson.

    Attributes
    ----------
    student, lesson : str
    status : str
        ``"graded"``; ``"missing"`` (nothing submitted); ``"invalid"`` (no
        notebook could be read); ``"error"`` (nbgrader could not grade it,
        for instance because the student's code killed its kernel).
    score, max_score : float
    cells : dict
        ``{grade_id: (score, max_score)}`` of every autograded cell.
    manual : list of str
        Cells that need grading by hand.
    notes : list of str
        What was noticed: edited or deleted cells, timeouts, broken files.
    seconds : float
        Wall-clock seconds of its grading task.
    leftovers : list of str
        Processes still alive after its grading, which were killed.
    sandboxed : bool
        Whether its notebooks ran in a sandbox; when not, its message says so.
    attempts : int
        Grading attempts it took (more than one after a failure that was not
        the student's).
    withheld : list of str
        Why its automatic points are withheld until it is graded by hand
        (code that changes the rules of grading); empty for most.
    failures : list of str
        What each test cell that lost points said (``grades.csv`` shows it).
    by_hand : bool
        A person graded it in the formgrader: every cell that needed grading by
        hand has a manual score, and ``score`` counts them.
    """

    student: str
    lesson: str
    status: str = "graded"
    score: float = 0.0
    max_score: float = 0.0
    cells: dict = dataclasses.field(default_factory=dict)
    manual: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    leftovers: list = dataclasses.field(default_factory=list)
    flagged: bool = False
    sandboxed: bool = True
    attempts: int = 1
    withheld: list = dataclasses.field(default_factory=list)
    failures: list = dataclasses.field(default_factory=list)
    by_hand: bool = False
    autograded: Path | None = None
    feedback: Path | None = None
    log: Path | None = None

    @property
    def flag_reasons(self):
        """Why it is flagged, in the words of its notes (empty when it is not).

        Examples
        --------
        >>> Outcome("ada", "01_x", withheld=["cell ex-1 replaces numpy.array_equal"]).flag_reasons
        ['cell ex-1 replaces numpy.array_equal']
        """
        if not (self.flagged or self.withheld):
            return []
        return list(self.withheld) or [n for n in self.notes if not n.startswith("log:")]

    @property
    def message(self):
        """The notes in one line; says when the notebooks ran without a sandbox."""
        notes = list(self.notes)
        if not self.sandboxed and self.status != "missing":
            notes.append(NO_SANDBOX)
        return "; ".join(notes)


@dataclasses.dataclass
class GradeReport:
    """What :func:`grade` did.

    Attributes
    ----------
    outcomes : list of Outcome
        One per student and lesson.
    problems : list of str
        Failures of the pipeline itself (not of students' work).
    csv_path : Path or None
    run_id : str
        The value of ``COURSE_GRADING_RUN`` in the environment of every
        process the run started.
    seconds, prepare_seconds : float
        Wall-clock seconds of the whole run, and of preparing the lessons
        (their release and template gradebook) before the first submission.
    """

    outcomes: list
    problems: list
    csv_path: Path | None
    run_id: str
    seconds: float = 0.0
    prepare_seconds: float = 0.0

    @property
    def ok(self):
        return not self.problems

    def outcome(self, student, lesson):
        for outcome in self.outcomes:
            if outcome.student == student and outcome.lesson == lesson:
                return outcome
        raise KeyError((student, lesson))

    def table(self):
        """Students × lessons, ``score/max``; ``!`` marks an outcome with notes."""
        students = sorted({o.student for o in self.outcomes})
        lessons = sorted({o.lesson for o in self.outcomes})
        cells = {}
        for o in self.outcomes:
            if o.status == "missing":
                text = "-"
            elif o.status in ("invalid", "error"):
                text = o.status
            else:
                text = f"{o.score:g}/{o.max_score:g}"
            if o.by_hand:
                text += " (by hand)"
            elif o.withheld:
                text = f"withheld/{o.max_score:g}"
            cells[o.student, o.lesson] = text + (" !" if o.message else "")
        rows = [["student", *lessons]]
        rows += [[s, *(cells.get((s, lesson), "") for lesson in lessons)] for s in students]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        notes = [
            f"! {o.student}/{o.lesson}: {o.message}"
            for o in sorted(self.outcomes, key=lambda o: (o.student, o.lesson))
            if o.message
        ]
        return "\n".join(lines + ([""] + notes if notes else []))


@dataclasses.dataclass
class VerifyReport:
    """What :func:`verify_exercises` found, lesson by lesson.

    Attributes
    ----------
    lessons : dict
        ``{lesson: {"reference": Outcome, "blank": Outcome, "problems": [...]}}``.
    """

    lessons: dict
    seconds: float = 0.0
    run_id: str = ""

    @property
    def ok(self):
        return all(not entry["problems"] for entry in self.lessons.values())

    def table(self):
        rows = [["lesson", "reference", "blank", "max", "seconds (ref/blank)", "result"]]
        for lesson, entry in sorted(self.lessons.items()):
            ref, blank = entry["reference"], entry["blank"]
            rows.append(
                [
                    lesson,
                    f"{auto_points(ref):g}",
                    f"{auto_points(blank):g}",
                    f"{auto_max(ref):g}",
                    f"{ref.seconds:.1f}/{blank.seconds:.1f}",
                    "ok" if not entry["problems"] else f"{len(entry['problems'])} problem(s)",
                ]
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        for lesson, entry in sorted(self.lessons.items()):
            lines.extend(f"! {lesson}: {problem}" for problem in entry["problems"])
        return "\n".join(lines)


def auto_points(outcome):
    return sum(score or 0.0 for score, _ in outcome.cells.values())


def auto_max(outcome):
    return sum(maximum or 0.0 for _, maximum in outcome.cells.values())


#: The columns of ``grades.csv``: ``(name, value of an Outcome)``, in order.
#: A new column is one more entry here.
CSV_COLUMNS = [
    ("student", lambda o: o.student),
    ("lesson", lambda o: o.lesson),
    # An error has no score: grading could not say what the work is worth.
    ("score", lambda o: "" if o.status == "error" else f"{o.score:g}"),
    ("max_score", lambda o: f"{o.max_score:g}"),
    ("status", lambda o: o.status),
    ("message", lambda o: "; ".join(m for m in (o.message, *o.failures) if m)),
    ("seconds", lambda o: f"{o.seconds:.1f}"),
    ("attempts", lambda o: str(o.attempts)),
    # Flagged, its automatic points withheld until a person grades it.
    ("withheld", lambda o: "yes" if o.withheld else ""),
    # Graded by hand in the formgrader: the score holds the manual points.
    ("by_hand", lambda o: "yes" if o.by_hand else ""),
]


def write_csv(path, outcomes):
    """Write one row per outcome, sorted by student and lesson, to ``path``.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "grades.csv"
    >>> write_csv(path, [Outcome("ada", "01_x", score=3, max_score=5)])
    >>> path.read_text().splitlines()[1]
    'ada,01_x,3,5,graded,,0.0,1,,'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([name for name, _ in CSV_COLUMNS])
        for o in sorted(outcomes, key=lambda o: (o.student, o.lesson)):
            writer.writerow([value(o) for _, value in CSV_COLUMNS])


def read_csv(path):
    """The outcomes a ``grades.csv`` holds (empty when there is no such file).

    What a row says comes back as it was written: its message becomes the
    outcome's one note.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "grades.csv"
    >>> write_csv(path, [Outcome("ada", "01_x", score=3, max_score=5, notes=["late"])])
    >>> [(o.student, o.score, o.message) for o in read_csv(path)]
    [('ada', 3.0, 'late')]
    """
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    outcomes = []
    for row in rows:
        message = row.get("message") or ""
        outcomes.append(
            Outcome(
                row["student"],
                row["lesson"],
                status=row.get("status") or "graded",
                score=float(row.get("score") or 0.0),
                max_score=float(row.get("max_score") or 0.0),
                notes=[message] if message else [],
                seconds=float(row.get("seconds") or 0.0),
                attempts=int(row.get("attempts") or 1),
                withheld=[message] if row.get("withheld") == "yes" else [],
                by_hand=row.get("by_hand") == "yes",
            )
        )
    return outcomes


def class_outcomes(outcomes, csv_path, gradebook=None, course_id=""):
    """The whole class: the rows of ``csv_path``, updated by ``outcomes`` and the gradebook.

    A late batch adds rows and replaces those it graded again; it drops none (a
    lesson missing from a batch does not replace one graded before). Where the
    gradebook is given, every submission it holds has a row, and every row's score
    is the gradebook's, manual scores included: after a grade by hand in the
    formgrader, the screen table and ``grades.csv`` say the same.

    Parameters
    ----------
    outcomes : list of Outcome
        What this run graded.
    csv_path : str or Path
        The class's ``grades.csv`` so far (it may not exist).
    gradebook : str or Path, optional
        The course's gradebook (``.nbgrader/gradebook.db``).
    course_id : str

    Returns
    -------
    list of Outcome
        Sorted by student and lesson.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "grades.csv"
    >>> write_csv(path, [Outcome("ada", "01_x", score=3, max_score=5)])
    >>> late = [Outcome("bob", "01_x", score=5, max_score=5)]
    >>> [o.student for o in class_outcomes(late, path)]
    ['ada', 'bob']
    """
    rows = {(o.student, o.lesson): o for o in read_csv(csv_path)}
    for o in outcomes:
        before = rows.get((o.student, o.lesson))
        if o.status == "missing" and before is not None and before.status != "missing":
            continue
        rows[o.student, o.lesson] = o
    if gradebook is not None and Path(gradebook).is_file():
        _scores_from_gradebook(rows, gradebook, course_id)
    return [rows[key] for key in sorted(rows)]


def _scores_from_gradebook(rows, gradebook, course_id):
    """Give ``rows`` the gradebook's scores, and a row to each submission it has."""
    from nbgrader.api import Gradebook

    from course_lib.grading.late import score_after_penalty

    with Gradebook(f"sqlite:///{gradebook}", course_id or "default_course") as gb:
        for assignment in gb.assignments:
            for submission in assignment.submissions:
                key = (submission.student.id, assignment.name)
                outcome = rows.get(key)
                if outcome is None:
                    outcome = rows[key] = Outcome(*key)
                if outcome.status == "missing":
                    outcome.status = "graded"
                if outcome.status == "error":
                    continue
                grades = [g for nb in submission.notebooks for g in nb.grades]
                graded = [g for g in grades if g.manual_score is not None]
                pending = any(g.needs_manual_grade for g in grades)
                outcome.by_hand = bool(graded) and not pending
                outcome.score = score_after_penalty(submission)
                outcome.max_score = float(submission.max_score or outcome.max_score)


def write_lms_csv(path, outcomes):
    """One row per student, one column of points per lesson: what an LMS gradebook imports.

    The first column, ``Username``, is the login both Moodle ("Import grades: CSV file",
    mapped to *username*) and Canvas (matched as *SIS Login ID*) identify students by;
    each lesson's column is headed ``<lesson> (<max> points)``. A lesson not graded (missing,
    an error) is left empty, never zero: the LMS keeps what it had.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "grades-lms.csv"
    >>> write_lms_csv(path, [Outcome("ada", "01_x", score=3, max_score=5),
    ...                      Outcome("bob", "01_x", status="missing", max_score=5)])
    >>> print(path.read_text().strip())
    Username,SIS Login ID,01_x (5 points)
    ada,ada,3
    bob,bob,
    """
    lessons = sorted({o.lesson for o in outcomes})
    maxima = {o.lesson: o.max_score for o in outcomes if o.max_score}
    points = {
        (o.student, o.lesson): f"{o.score:g}"
        for o in outcomes
        if o.status == "graded" and not (o.withheld and not o.by_hand)
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["Username", "SIS Login ID"]
            + [f"{lesson} ({maxima.get(lesson, 0):g} points)" for lesson in lessons]
        )
        for student in sorted({o.student for o in outcomes}):
            writer.writerow(
                [student, student] + [points.get((student, lesson), "") for lesson in lessons]
            )
