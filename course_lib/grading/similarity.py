"""The class similarity report: near-identical answers, for the instructor to read.

Per exercise (every solution cell that is not a pop quiz), the report lists

* **pairs** of submissions whose answers are near-identical after normalisation
  while differing from the release, and
* submissions whose answer is close to ``solutions/`` itself.

It never changes a score: it is a CSV and an HTML page that an instructor reads
before deciding anything. The comparison is copydetect's (winnowing
fingerprints, the method of MOSS): names, strings and whitespace are normalised
away (renaming variables changes nothing) and the release's own code of the cell
(the stub, the function's signature) is boilerplate, so two untouched or nearly
untouched notebooks never match.

Examples
--------
>>> first = "total = 0\\nfor value in values:\\n    total += value * value\\n"
>>> renamed = "acc = 0\\nfor v in data:\\n    acc += v * v\\n"
>>> shares(first, renamed, release="")
(1.0, 1.0)
"""

from __future__ import annotations

import csv
import dataclasses
import html
import io
from pathlib import Path

from course_lib.grading._quiz_release import QUIZ_PREFIX
from course_lib.grading.layout import RELEASE_DIR, SOURCE_DIR, select_lessons
from course_lib.grading.notebooks import grade_id, nbgrader_meta, read_notebook

__all__ = [
    "CSV_COLUMNS",
    "Match",
    "SimilarityReport",
    "answer_cells",
    "shares",
    "similarity_report",
]

#: Fingerprints of NOISE characters of normalised code (copydetect's noise
#: threshold ``k``); a copied stretch of GUARANTEE characters is always found.
#: Smaller than copydetect's defaults (25, 30): answer cells are short.
NOISE = 10
GUARANTEE = 14
#: The share of each answer that must be covered for a pair to be listed.
THRESHOLD = 0.8
#: Who a submission is compared with when it is close to the solutions.
SOLUTIONS = "solutions/"


def _fingerprint(code, boilerplate=None):
    from copydetect import CodeFingerprint

    return CodeFingerprint(
        "cell.py",
        NOISE,
        GUARANTEE - NOISE + 1,
        boilerplate=boilerplate,
        language="python",
        fp=io.StringIO(code),
    )


def _normalised(code):
    from copydetect.utils import filter_code

    return filter_code(code, "cell.py", "python")[0]


def shares(first, second, release=""):
    """How much of each of two answers the other covers, ``release`` set aside.

    Parameters
    ----------
    first, second : str
        The code of one cell in two submissions.
    release : str
        The cell's code in the release: what every student started from.

    Returns
    -------
    tuple of float
        The share of ``first`` found in ``second`` and of ``second`` in
        ``first``, each in [0, 1].

    Examples
    --------
    >>> shares("x = sorted(data)[::-1]", "y = list(reversed(sorted(v)))")
    (0.0, 0.0)
    """
    import numpy as np
    from copydetect import compare_files

    if _normalised(first) == _normalised(second):
        # Too short for a fingerprint, or the same code: equal after normalisation.
        return (1.0, 1.0)
    # copydetect wants the boilerplate's hashes as an array (a fingerprint holds a set).
    boilerplate = np.array(sorted(_fingerprint(release).hashes)) if release else None
    a, b = _fingerprint(first, boilerplate), _fingerprint(second, boilerplate)
    if not len(a.hashes) or not len(b.hashes):
        return (0.0, 0.0)
    _, (share_a, share_b), _ = compare_files(a, b)
    return (round(float(share_a), 3), round(float(share_b), 3))


def answer_cells(path):
    """``{grade_id: code}`` of the exercise cells of the notebook at ``path``.

    Exercise cells are nbgrader solution cells of code, pop quizzes excepted (a
    quiz has one right answer, which every good student writes).
    """
    cells = {}
    for cell in read_notebook(path).cells:
        cell_id = grade_id(cell)
        if (
            cell.cell_type == "code"
            and nbgrader_meta(cell).get("solution")
            and cell_id
            and not cell_id.startswith(QUIZ_PREFIX)
        ):
            cells[cell_id] = cell.source
    return cells


@dataclasses.dataclass
class Match:
    """Two answers to one exercise that are near-identical.

    Attributes
    ----------
    lesson, notebook, cell : str
        The exercise: its lesson, notebook file and ``grade_id``.
    first, second : str
        The two students (``second`` is ``"solutions/"`` for an answer close to
        the solutions).
    first_share, second_share : float
        The share of each answer that the other covers.
    first_code, second_code : str
    """

    lesson: str
    notebook: str
    cell: str
    first: str
    second: str
    first_share: float
    second_share: float
    first_code: str = ""
    second_code: str = ""

    @property
    def kind(self):
        return "solutions" if self.second == SOLUTIONS else "pair"


#: The columns of the report's CSV: ``(name, value of a Match)``.
CSV_COLUMNS = [
    ("lesson", lambda m: m.lesson),
    ("notebook", lambda m: m.notebook),
    ("cell", lambda m: m.cell),
    ("kind", lambda m: m.kind),
    ("first", lambda m: m.first),
    ("second", lambda m: m.second),
    ("first_share", lambda m: f"{m.first_share:.2f}"),
    ("second_share", lambda m: f"{m.second_share:.2f}"),
]


@dataclasses.dataclass
class SimilarityReport:
    """What :func:`similarity_report` found: near-identical answers, never a penalty.

    Attributes
    ----------
    matches : list of Match
    answers : int
        Answers compared (cells that differ from the release).
    threshold : float
    """

    matches: list
    answers: int
    threshold: float = THRESHOLD

    def write_csv(self, path):
        """One row per match."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([name for name, _ in CSV_COLUMNS])
            for match in self.matches:
                writer.writerow([value(match) for _, value in CSV_COLUMNS])

    def write_html(self, path):
        """A page for the instructor: each match with both answers side by side."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        parts = [
            "<!DOCTYPE html><html><head><meta charset='utf-8'>",
            "<title>Class similarity report</title><style>",
            "body{font-family:sans-serif;margin:2em} table{border-collapse:collapse}",
            "td,th{border:1px solid #ccc;padding:.3em .6em} pre{background:#f6f6f6;",
            "padding:.5em;overflow:auto} .side{display:flex;gap:1em} .side>div{flex:1}",
            "</style></head><body><h1>Class similarity report</h1>",
            f"<p>{self.answers} answer(s) compared; each match covers at least "
            f"{self.threshold:.0%} of both answers after normalisation (names, strings "
            "and whitespace set aside), the release's own code excepted. A match is a "
            "reason to read two answers, not proof of copying: no score changes.</p>",
        ]
        if not self.matches:
            parts.append("<p>No near-identical answers.</p>")
        else:
            head = "".join(f"<th>{html.escape(name)}</th>" for name, _ in CSV_COLUMNS)
            parts.append(f"<table><tr>{head}</tr>")
            for match in self.matches:
                cells = "".join(f"<td>{html.escape(value(match))}</td>" for _, value in CSV_COLUMNS)
                parts.append(f"<tr>{cells}</tr>")
            parts.append("</table>")
            for match in self.matches:
                title = f"{match.lesson} / {match.cell}: {match.first} and {match.second}"
                parts.append(f"<h2>{html.escape(title)}</h2><div class='side'>")
                for who, code in (
                    (match.first, match.first_code),
                    (match.second, match.second_code),
                ):
                    parts.append(
                        f"<div><h3>{html.escape(who)}</h3><pre>{html.escape(code)}</pre></div>"
                    )
                parts.append("</div>")
        parts.append("</body></html>")
        path.write_text("\n".join(parts) + "\n", encoding="utf-8")


def _submitted_notebook(folder, name, names):
    """The student's notebook for the release notebook ``name`` (or None)."""
    path = folder / name
    if path.is_file():
        return path
    found = sorted(p for p in folder.glob("*.ipynb") if p.is_file())
    # A lesson of one notebook handed in under another name (as grading accepts).
    if len(names) == 1 and len(found) == 1:
        return found[0]
    return None


def similarity_report(submissions, course_root, *, lessons=None, threshold=THRESHOLD):
    """Compare every answer of the class, exercise by exercise.

    Parameters
    ----------
    submissions : str or Path
        ``<student>/<lesson>/*.ipynb``, as :func:`course_lib.grading.grade` reads.
    course_root : str or Path
        The course: ``lessons/`` (the release, the boilerplate) and
        ``solutions/``.
    lessons : list of str, optional
        Default: every lesson.
    threshold : float
        The share of both answers that must be covered, in (0, 1].

    Returns
    -------
    SimilarityReport

    Raises
    ------
    ValueError
        ``threshold`` outside (0, 1], or an unknown lesson.
    """
    from course_lib.grading.autograde import discover_submissions

    if not isinstance(threshold, int | float) or not 0 < threshold <= 1:
        raise ValueError(f"threshold == {threshold!r}: it must be a number in (0, 1].")
    course_root = Path(course_root)
    selected = select_lessons(course_root, lessons)
    students = discover_submissions(submissions)
    matches, compared = [], 0
    for lesson in selected:
        release_dir = course_root / RELEASE_DIR / lesson
        names = sorted(p.name for p in release_dir.glob("*.ipynb"))
        for name in names:
            release = answer_cells(release_dir / name)
            solution_path = course_root / SOURCE_DIR / lesson / name
            solution = answer_cells(solution_path) if solution_path.is_file() else {}
            answers = {}
            for student, folder in students.items():
                path = _submitted_notebook(folder / lesson, name, names)
                if path is None:
                    continue
                try:
                    cells = answer_cells(path)
                except Exception:  # not a notebook: grading reports it as invalid
                    continue
                for cell_id, code in cells.items():
                    if cell_id in release and _normalised(code) != _normalised(release[cell_id]):
                        answers.setdefault(cell_id, {})[student] = code
            for cell_id, by_student in sorted(answers.items()):
                compared += len(by_student)
                stub = release[cell_id]
                who = sorted(by_student)
                for i, first in enumerate(who):
                    for second in who[i + 1 :]:
                        a, b = shares(by_student[first], by_student[second], stub)
                        if min(a, b) >= threshold:
                            matches.append(
                                Match(
                                    lesson,
                                    name,
                                    cell_id,
                                    first,
                                    second,
                                    a,
                                    b,
                                    by_student[first],
                                    by_student[second],
                                )
                            )
                if cell_id in solution:
                    for student in who:
                        a, b = shares(by_student[student], solution[cell_id], stub)
                        if a >= threshold:
                            matches.append(
                                Match(
                                    lesson,
                                    name,
                                    cell_id,
                                    student,
                                    SOLUTIONS,
                                    a,
                                    b,
                                    by_student[student],
                                    solution[cell_id],
                                )
                            )
    return SimilarityReport(matches, compared, threshold)
