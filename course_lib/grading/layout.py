"""The course's layout: where solutions and releases live, which lessons exist.

A course root holds ``solutions/NN_topic/`` (the instructor's notebooks, the
single source) and ``lessons/NN_topic/`` (the student release generated from
them); its own ``nbgrader_config.py``, where it has one, is read on top of the
course's settings (:func:`course_lib.grading.config.course_config`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

__all__ = [
    "check_course_root",
    "course_root_of",
    "RELEASE_DIR",
    "REPO_ROOT",
    "SOURCE_DIR",
    "PreparedLesson",
    "find_lessons",
    "prepare_lessons",
    "released_lessons",
    "select_lessons",
]

#: The repository, where course_lib is installed editable (in a clone); an installed
#: course_lib grades the course root it is given, never this folder.
REPO_ROOT = Path(__file__).resolve().parent.parent.parent
SOURCE_DIR = "solutions"
RELEASE_DIR = "lessons"


def check_course_root(root, name="course_root"):
    """``root`` as a Path, if it is a course: an existing folder with ``solutions/``.

    Checked before any command does anything, so that a typo in ``--root``
    creates, changes and deletes nothing.

    Raises
    ------
    FileNotFoundError, NotADirectoryError, ValueError
        Naming ``root``: it does not exist, is a file, or has no ``solutions/``.

    Examples
    --------
    >>> import tempfile
    >>> check_course_root(tempfile.mkdtemp() + "/typo", "--root")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: --root ... does not exist: ...
    """
    path = Path(root)
    what = (
        f"a course root is the folder that holds {SOURCE_DIR}/ (the instructor's notebooks) "
        f"and nbgrader_config.py; nothing was created or changed."
    )
    if not path.exists():
        raise FileNotFoundError(f"{name} {str(root)!r} does not exist: {what}")
    if not path.is_dir():
        raise NotADirectoryError(f"{name} {str(root)!r} is a file, not a folder: {what}")
    if not (path / SOURCE_DIR).is_dir():
        found = sorted(child.name for child in path.iterdir())[:6]
        raise ValueError(
            f"{name} {str(root)!r} is not a course: it has no {SOURCE_DIR}/ folder "
            f"(it holds {found}); {what}"
        )
    return path


def course_root_of(lesson_dirs):
    """The course root that holds every folder of ``lesson_dirs`` (``<root>/solutions/<lesson>``).

    None when there is no lesson folder.

    Raises
    ------
    ValueError
        Naming the folders, when they are not the lessons of one course root.

    Examples
    --------
    >>> str(course_root_of(["/srv/course/solutions/01_a", "/srv/course/solutions/02_b"]))
    '/srv/course'
    """
    lesson_dirs = list(lesson_dirs)
    if not lesson_dirs:
        return None
    roots = {Path(path).absolute().parent.parent for path in lesson_dirs}
    parents = {Path(path).absolute().parent.name for path in lesson_dirs}
    if len(roots) != 1 or parents != {SOURCE_DIR}:
        raise ValueError(
            f"lesson folders {sorted(map(str, lesson_dirs))} are not the {SOURCE_DIR}/ "
            "folders of one course root"
        )
    return roots.pop()


def find_lessons(source_dir):
    """Names of the lessons in ``source_dir``: sub-folders holding a notebook.

    Parameters
    ----------
    source_dir : str or Path
        Usually ``solutions/``.

    Returns
    -------
    list of str
        Sorted folder names; empty when there is no lesson (or no folder).

    Examples
    --------
    >>> import tempfile
    >>> find_lessons(tempfile.mkdtemp())
    []
    """
    source_dir = Path(source_dir)
    if not source_dir.is_dir():
        return []
    return sorted(
        child.name
        for child in source_dir.iterdir()
        if child.is_dir() and not child.name.startswith((".", "_")) and any(child.glob("*.ipynb"))
    )


def select_lessons(course_root, lessons):
    """The lessons to work on: ``lessons`` checked against ``solutions/``, or all.

    Raises
    ------
    ValueError
        Naming every lesson that has no folder in ``solutions/``.
    """
    available = find_lessons(Path(course_root) / SOURCE_DIR)
    if lessons is None:
        return available
    if isinstance(lessons, str):
        lessons = [lessons]
    unknown = sorted(set(lessons) - set(available))
    if unknown:
        raise ValueError(
            f"unknown lesson(s) {unknown}: the lessons in {Path(course_root) / SOURCE_DIR} "
            f"are {available}."
        )
    return sorted(set(lessons))


def released_lessons(course_root):
    """Names of the lesson folders in ``lessons/`` (released or stale).

    Examples
    --------
    >>> import tempfile
    >>> released_lessons(tempfile.mkdtemp())
    []
    """
    release_dir = Path(course_root) / RELEASE_DIR
    if not release_dir.is_dir():
        return []
    return sorted(
        child.name
        for child in release_dir.iterdir()
        if child.is_dir() and not child.name.startswith(".")
    )


@dataclasses.dataclass
class PreparedLesson:
    """A lesson ready to grade: its solutions and a fresh release of them.

    Attributes
    ----------
    lesson : str
    source : Path
        The lesson's folder in ``solutions/``.
    release_dir : Path
        The fresh release of the lesson.
    notebooks : list of str
        Notebook file names of the lesson.
    """

    lesson: str
    source: Path
    release_dir: Path
    notebooks: list


def prepare_lessons(course_root, lessons, template_root):
    """``{lesson: PreparedLesson}`` from a release generated in ``template_root``."""
    prepared = {}
    for lesson in lessons:
        release_dir = Path(template_root) / RELEASE_DIR / lesson
        prepared[lesson] = PreparedLesson(
            lesson,
            Path(course_root) / SOURCE_DIR / lesson,
            release_dir,
            sorted(p.name for p in release_dir.glob("*.ipynb")),
        )
    return prepared
