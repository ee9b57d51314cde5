"""``release`` and ``check-release``: the student notebooks, generated and compared.

``release`` runs nbgrader ``generate_assignment`` for every lesson of
``solutions/`` in a temporary course root and copies what changed into
``lessons/``; ``check-release`` fails when ``lessons/`` differs from that or
gives solutions away (:mod:`course_lib.grading.leaks`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from course_lib.grading import _notebook_format
from course_lib.grading.layout import (
    RELEASE_DIR,
    REPO_ROOT,
    SOURCE_DIR,
    released_lessons,
    select_lessons,
)
from course_lib.grading.leaks import release_leaks
from course_lib.grading.runner import Workspace, generate

__all__ = ["check_release", "lesson_leaks", "release"]


def _files(folder):
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    return {
        str(path.relative_to(folder)): path
        for path in sorted(folder.rglob("*"))
        if path.is_file() and ".ipynb_checkpoints" not in path.parts
    }


def _same_file(a, b):
    if a.suffix == ".ipynb":
        try:
            return json.loads(a.read_text()) == json.loads(b.read_text())
        except (OSError, ValueError):
            return False
    return a.read_bytes() == b.read_bytes()


def _diff_release(fresh_dir, course_root, lessons, stale_check):
    problems = []
    release_dir = Path(course_root) / RELEASE_DIR
    for lesson in lessons:
        fresh = _files(fresh_dir / lesson)
        committed = _files(release_dir / lesson)
        for name in sorted(set(fresh) | set(committed)):
            where = f"{RELEASE_DIR}/{lesson}/{name}"
            if name not in committed:
                problems.append(f"{where} is missing")
            elif name not in fresh:
                problems.append(f"{where} is not generated from {SOURCE_DIR}/{lesson}")
            elif not _same_file(fresh[name], committed[name]):
                problems.append(f"{where} differs from what `make release` writes")
    if stale_check:
        for name in sorted(set(released_lessons(course_root)) - set(lessons)):
            problems.append(f"{RELEASE_DIR}/{name} has no source in {SOURCE_DIR}/{name}")
    return problems


def release(course_root=REPO_ROOT, lessons=None, *, prune=False, verbose=True):
    """Regenerate ``lessons/`` from ``solutions/`` with nbgrader.

    Solutions become stubs, hidden tests disappear and outputs are cleared.
    A student release whose source is gone (``lessons/X`` without
    ``solutions/X``: a lesson removed, or a course root that is not the one
    meant) is never deleted silently: release refuses to run, changing
    nothing, unless ``prune=True``, which deletes it and says so.

    Parameters
    ----------
    course_root : str or Path
        The folder holding ``solutions/`` and ``lessons/``.
    lessons : list of str, optional
        Default: every lesson in ``solutions/``.
    prune : bool, default=False
        Delete the release folders whose source is gone (with every lesson
        only, ``lessons=None``).
    verbose : bool

    Returns
    -------
    list of str
        The lessons that were written, changed or deleted.

    Raises
    ------
    ValueError
        Before any work, naming the release folders whose source is gone,
        unless ``prune=True``.
    """
    course_root = Path(course_root)
    selected = select_lessons(course_root, lessons)
    stale = sorted(set(released_lessons(course_root)) - set(selected)) if lessons is None else []
    if stale and not prune:
        listed = ", ".join(f"{RELEASE_DIR}/{name}" for name in stale)
        raise ValueError(
            f"{listed} in {str(course_root)!r} has no source in {SOURCE_DIR}/: release "
            f"refuses to delete a student release, and changed nothing. Check --root, or, "
            f"if the lesson was removed on purpose, run release --prune (make release "
            f"PRUNE=1) to delete it."
        )
    workspace = Workspace(sandbox=False)  # no kernel runs
    changed = []
    try:
        fresh = generate(workspace, course_root, selected, workspace.path / "release.db")
        release_dir = course_root / RELEASE_DIR
        release_dir.mkdir(exist_ok=True)
        for lesson in selected:
            if _diff_release(fresh / RELEASE_DIR, course_root, [lesson], stale_check=False):
                shutil.rmtree(release_dir / lesson, ignore_errors=True)
                shutil.copytree(fresh / RELEASE_DIR / lesson, release_dir / lesson)
                changed.append(lesson)
        for name in stale:  # prune=True: asked for
            shutil.rmtree(release_dir / name)
            changed.append(name)
            if verbose:
                print(f"removed {RELEASE_DIR}/{name}: no {SOURCE_DIR}/{name} (--prune)")
    finally:
        workspace.cleanup()
    if verbose:
        for lesson in selected:
            state = "written" if lesson in changed else "up to date"
            print(f"{RELEASE_DIR}/{lesson}: {state}")
        if not selected:
            print(f"no lesson in {course_root / SOURCE_DIR}")
    return changed


def check_release(course_root=REPO_ROOT, lessons=None):
    """What differs between ``lessons/`` and what :func:`release` would write.

    Also checks every committed release for solution code, hidden tests and
    stored outputs (:func:`release_leaks`).

    Returns
    -------
    list of str
        One line per problem; empty when the release is up to date.
    """
    course_root = Path(course_root)
    selected = select_lessons(course_root, lessons)
    workspace = Workspace(sandbox=False)  # no kernel runs
    try:
        fresh = generate(workspace, course_root, selected, workspace.path / "check.db")
        problems = _diff_release(
            fresh / RELEASE_DIR, course_root, selected, stale_check=lessons is None
        )
    finally:
        workspace.cleanup()
    for lesson in selected:
        problems.extend(lesson_leaks(course_root, lesson))
        problems.extend(
            _notebook_format.problems(
                [course_root / SOURCE_DIR / lesson, course_root / RELEASE_DIR / lesson]
            )
        )
    return problems


def lesson_leaks(course_root, lesson):
    """What the committed release of ``lesson`` gives away (:func:`release_leaks`)."""
    problems = []
    release_dir = Path(course_root) / RELEASE_DIR / lesson
    for solution in sorted((Path(course_root) / SOURCE_DIR / lesson).glob("*.ipynb")):
        released = release_dir / solution.name
        if released.exists():
            for problem in release_leaks(solution, released):
                problems.append(f"{RELEASE_DIR}/{lesson}/{solution.name} {problem}")
    return problems
