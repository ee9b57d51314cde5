"""Submission checks: a submitted notebook, checked against its release.

Before nbgrader sees a submission, every check of :data:`SUBMISSION_CHECKS`
runs on it, in order, as nbgrader runs its preprocessors. A check is a
function of one :class:`SubmittedNotebook`: it may repair the notebook in
place, add a note for the instructor and the student (``notes``) and flag the
submission for a look by hand (``flagged``). To add a check, write such a
function and append it to the list.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
import warnings
from pathlib import Path

from course_lib.grading.notebooks import grade_id, nbgrader_meta, read_notebook

__all__ = [
    "SUBMISSION_CHECKS",
    "SubmittedNotebook",
    "check_submission",
    "load_submission",
    "stage_submission",
]

#: The nbgrader metadata a student must not change.
_META_KEYS = ("grade", "solution", "locked", "points", "task")


@dataclasses.dataclass
class SubmittedNotebook:
    """One submitted notebook and what the checks found in it.

    Attributes
    ----------
    notebook : nbformat.NotebookNode
        The submission; checks may repair it in place.
    released, solution : nbformat.NotebookNode
        The lesson's release and its solutions.
    notes : list of str
        What the checks noticed, in words for the student and the instructor.
    flagged : bool
        True when the instructor should look at it.
    """

    notebook: object
    released: object
    solution: object
    notes: list = dataclasses.field(default_factory=list)
    flagged: bool = False

    def first_cells(self):
        """``{grade_id: cell}`` of the submission's first cell of every released id."""
        released = {grade_id(c) for c in self.released.cells if grade_id(c)}
        found = {}
        for cell in self.notebook.cells:
            gid = grade_id(cell)
            if gid in released and gid not in found:
                found[gid] = cell
        return found

    def released_cells(self):
        """``{grade_id: cell}`` of the release."""
        return {grade_id(c): c for c in self.released.cells if grade_id(c)}


def check_duplicated_cells(sub):
    """Copies of a graded cell are ignored: only the first one counts."""
    seen, duplicates = set(), set()
    released = sub.released_cells()
    for cell in sub.notebook.cells:
        gid = grade_id(cell)
        if gid in released:
            (duplicates if gid in seen else seen).add(gid)
    if duplicates:
        sub.notes.append(f"duplicated cell(s) {', '.join(sorted(duplicates))}: copies ignored")
        sub.flagged = True


def check_edited_locked_cells(sub):
    """Edited locked cells are noted; nbgrader grades them as released."""
    released = sub.released_cells()
    solutions = {grade_id(c): c for c in sub.solution.cells if grade_id(c)}
    edited = []
    for gid, cell in sub.first_cells().items():
        meta = nbgrader_meta(released[gid])
        if not meta.get("locked") or meta.get("solution"):
            continue
        versions = [released[gid].source]
        if gid in solutions:
            versions.append(solutions[gid].source)
        if not any(cell.source.strip() == v.strip() for v in versions):
            edited.append(gid)
    if edited:
        sub.notes.append(f"edited locked cell(s) {', '.join(edited)}: graded as released")
        sub.flagged = True


def check_cell_metadata(sub):
    """The release's nbgrader metadata is restored on every cell it marks.

    So a test cell cannot be turned into a plain cell, nor its points changed.
    """
    released = sub.released_cells()
    changed = []
    for gid, cell in sub.first_cells().items():
        meta = nbgrader_meta(released[gid])
        submitted = nbgrader_meta(cell)
        if any(submitted.get(k) != meta.get(k) for k in _META_KEYS):
            changed.append(gid)
        cell.metadata["nbgrader"] = copy.deepcopy(meta)
    if changed:
        sub.notes.append(f"nbgrader metadata of {', '.join(changed)} edited: restored")
        sub.flagged = True


def check_deleted_cells(sub):
    """Deleted test cells are put back after the cell that preceded them.

    They are graded as released. Deleted answer cells are only noted.
    """
    nb, released = sub.notebook, sub.released
    present = set(sub.first_cells())
    restored, missing_answers = [], []
    for index, original in enumerate(released.cells):
        gid = grade_id(original)
        if gid is None or gid in present:
            continue
        meta = nbgrader_meta(original)
        if meta.get("solution") and not meta.get("grade"):
            missing_answers.append(gid)
            continue
        if not (meta.get("grade") or meta.get("task")):
            continue
        position = 0
        for previous in reversed(released.cells[:index]):
            found = _find_cell(nb, previous)
            if found is not None:
                position = found + 1
                break
        nb.cells.insert(position, copy.deepcopy(original))
        present.add(gid)
        restored.append(gid)
    if restored:
        sub.notes.append(f"deleted graded cell(s) {', '.join(restored)}: restored and graded")
        sub.flagged = True
    if missing_answers:
        sub.notes.append(f"deleted answer cell(s) {', '.join(missing_answers)}")


def check_added_graded_cells(sub):
    """Cells a student added with nbgrader metadata become plain cells of theirs.

    A cell marked as a test (``grade``) that the release does not have would
    otherwise be taken for one: it runs as the student's code, is not graded,
    and is noted.
    """
    released = set(sub.released_cells())
    added = []
    for index, cell in enumerate(sub.notebook.cells):
        meta = nbgrader_meta(cell)
        marks = grade_id(cell) is not None or any(meta.get(k) for k in _META_KEYS)
        if marks and grade_id(cell) not in released:
            added.append(grade_id(cell) or f"cell {index + 1}")
            del cell.metadata["nbgrader"]
    if added:
        sub.notes.append(
            f"added cell(s) with nbgrader metadata {', '.join(map(str, added))}: run as the "
            "student's own cells, not graded"
        )
        sub.flagged = True


#: The checks every submitted notebook goes through, in this order.
SUBMISSION_CHECKS = [
    check_edited_locked_cells,
    check_cell_metadata,
    check_deleted_cells,
    check_duplicated_cells,
    check_added_graded_cells,
]


def check_submission(notebook, released, solution, checks=None):
    """Run ``checks`` (default :data:`SUBMISSION_CHECKS`) on a submitted notebook.

    Parameters
    ----------
    notebook : nbformat.NotebookNode
        Repaired in place.
    released, solution : nbformat.NotebookNode
    checks : list of callable, optional

    Returns
    -------
    SubmittedNotebook
        With the notes and the flag of every check.

    Examples
    --------
    >>> from nbformat.v4 import new_notebook
    >>> check_submission(new_notebook(), new_notebook(), new_notebook()).notes
    []
    """
    sub = SubmittedNotebook(notebook, released, solution)
    for check in SUBMISSION_CHECKS if checks is None else checks:
        check(sub)
    return sub


def _find_cell(nb, wanted):
    gid = grade_id(wanted)
    cell_id = wanted.get("id")
    for position, cell in enumerate(nb.cells):
        if gid is not None and grade_id(cell) == gid:
            return position
        if gid is None and cell_id is not None and cell.get("id") == cell_id:
            return position
    return None


def load_submission(path):
    """A submitted notebook, or raise ValueError with a message for the student."""
    import nbformat

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{Path(path).name} cannot be read ({exc})") from None
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{Path(path).name} is not a notebook: broken JSON ({exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        raise ValueError(f"{Path(path).name} is not a notebook: it has no list of cells")
    try:
        with warnings.catch_warnings():
            # nbformat warns about missing cell ids and upgrades the notebook.
            warnings.simplefilter("ignore")
            nb = nbformat.reads(text, as_version=4)
            nbformat.validate(nb)
    except Exception as exc:  # nbformat raises many types for bad notebooks
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{Path(path).name} is not a valid notebook ({first})") from None
    return nb


def stage_submission(outcome, folder, lesson, task_root):
    """Copy one submission, checked and repaired, into a task's ``submitted/``.

    Returns True when there is something for nbgrader to grade.
    """
    dest = task_root / "submitted" / outcome.student / lesson.lesson
    dest.mkdir(parents=True)
    submitted = {p.name: p for p in sorted(folder.glob("*.ipynb"))}
    expected = lesson.notebooks
    unknown = sorted(set(submitted) - set(expected))
    absent = [name for name in expected if name not in submitted]
    renamed = {}
    if len(absent) == 1 and len(unknown) == 1:
        renamed[absent[0]] = unknown[0]
        outcome.notes.append(f"graded {unknown[0]} as {absent[0]}")
        unknown, absent = [], []
    for name in unknown:
        outcome.notes.append(f"{name} is not a notebook of this lesson: ignored")
    for name in absent:
        outcome.notes.append(f"{name} was not submitted")
    staged = 0
    for name in expected:
        if name not in submitted and name not in renamed:
            continue
        path = submitted.get(renamed.get(name, name))
        try:
            nb = load_submission(path)
        except ValueError as exc:
            outcome.notes.append(str(exc))
            outcome.flagged = True
            continue
        checked = check_submission(
            nb, read_notebook(lesson.release_dir / name), read_notebook(lesson.source / name)
        )
        outcome.notes.extend(checked.notes)
        outcome.flagged |= checked.flagged
        import nbformat

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nbformat.write(nb, str(dest / name))
        staged += 1
    timestamp = folder / "timestamp.txt"
    if timestamp.is_file():
        text = timestamp.read_text(errors="replace").strip()
        try:
            from nbgrader.utils import parse_utc

            parse_utc(text)
            shutil.copy(timestamp, dest / "timestamp.txt")
        except Exception:
            outcome.notes.append(f"timestamp.txt is not a date ({text[:40]!r}): ignored")
    return staged > 0
