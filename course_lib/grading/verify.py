"""``verify-exercises``: every lesson's exercises prove that they grade what they claim.

The solutions and the untouched release of every lesson are graded as two
students: the solutions must get full marks, the release zero on every
autograded cell, the release must give nothing away, its teaching cells must
run without an error (a student who skips an exercise keeps the rest of the
lesson), and no process or file may be left behind. More students
(``others``) can be graded in the same run, on the same preparation: the
test suite grades its whole practice class this way, once.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from course_lib.grading.autograde import check_sandbox, discover_submissions, grade_one
from course_lib.grading.layout import REPO_ROOT, SOURCE_DIR, prepare_lessons, select_lessons
from course_lib.grading.leaks import release_leaks
from course_lib.grading.notebooks import nbgrader_meta, read_notebook
from course_lib.grading.releases import lesson_leaks
from course_lib.grading.report import VerifyReport
from course_lib.grading.runner import (
    TASK_TIMEOUT,
    Workspace,
    check_jobs,
    check_timeout,
    generate,
    run_tasks,
)
from course_lib.grading.sandbox import FILES_LEFT_SUFFIX

__all__ = ["verify_exercises"]

#: The students verify grades itself; ``others`` may not take their names.
OWN_STUDENTS = ("reference", "blank")


def verify_exercises(
    course_root=REPO_ROOT,
    lessons=None,
    *,
    others=None,
    jobs=None,
    timeout=None,
    verbose=True,
    sandbox=True,
):
    """Prove that every lesson's exercises grade what they claim.

    For every lesson, its solutions and its untouched release are graded as
    two students, each in a grading task of its own, and

    1. the solutions get full points on every autograded cell;
    2. the untouched release gets zero on every autograded cell (no test
       passes vacuously);
    3. the release holds no solution code, no hidden test, no output;
    4. the release's teaching cells (all but exercises, quizzes and their
       tests) run without an error, and leave no file next to the notebook;
    5. no engine, controller or kernel is alive when grading ends.

    Parameters
    ----------
    course_root : str or Path
    lessons : list of str, optional
        Default: every lesson in ``solutions/``.
    others : str or Path, optional
        A folder of ``<student>/<lesson>/*.ipynb`` (as for
        :func:`~course_lib.grading.grade`), graded in the same run and on the
        same preparation; each outcome is ``report.lessons[lesson]["others"][student]``.
        No student may be called ``reference`` or ``blank``.
    jobs : int, optional
        Notebooks graded at once; default :func:`default_jobs`.
    timeout : float, optional
        Seconds per cell; default ``Execute.timeout`` of ``nbgrader_config.py``.
    verbose : bool
    sandbox : bool
        Grade in bubblewrap sandboxes (see :func:`course_lib.grading.grade`).

    Returns
    -------
    VerifyReport
    """
    started = time.time()
    course_root = Path(course_root).resolve()
    selected = select_lessons(course_root, lessons)
    jobs = check_jobs(jobs)
    timeout = check_timeout(timeout)
    check_sandbox(sandbox)
    students = {} if others is None else discover_submissions(others)
    taken = sorted(set(students) & set(OWN_STUDENTS))
    if taken:
        raise ValueError(
            f"others={str(others)!r} holds the student(s) {taken}: verify grades "
            f"{' and '.join(OWN_STUDENTS)} itself; rename them"
        )
    entries = {}
    if not selected:
        if verbose:
            print(f"no lesson in {course_root / SOURCE_DIR}: nothing to verify")
        return VerifyReport({}, time.time() - started)
    workspace = Workspace(sandbox=sandbox)
    try:
        template_root = generate(workspace, course_root, selected, workspace.path / "template.db")
        prepared = prepare_lessons(course_root, selected, template_root)
        template_db = workspace.path / "template.db"
        submissions = workspace.new_dir("students")
        for lesson in selected:
            for student, source in (
                ("reference", prepared[lesson].source),
                ("blank", prepared[lesson].release_dir),
            ):
                dest = submissions / student / lesson
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copytree(source, dest)
            entries[lesson] = {"problems": [], "others": {}}
        folders = {
            (student, lesson): submissions / student / lesson
            for lesson in selected
            for student in OWN_STUDENTS
        }
        for student, folder in students.items():
            for lesson in selected:
                if (folder / lesson).is_dir():
                    folders[student, lesson] = folder / lesson

        def task(student, lesson):
            return lambda: grade_one(
                workspace,
                prepared[lesson],
                student,
                folders[student, lesson],
                template_db,
                timeout=timeout,
                task_timeout=TASK_TIMEOUT,
            )

        def done(result):
            outcome, info = result
            entry = entries[outcome.lesson]
            if outcome.student in OWN_STUDENTS:
                entry[outcome.student] = outcome
            else:
                entry["others"][outcome.student] = outcome
            if info is not None and info["survivors"]:
                entry["problems"].append(f"processes survived SIGKILL: {info['survivors']}")
            if outcome.student == "blank" and outcome.autograded is not None:
                entry["problems"].extend(release_run_problems(outcome, info["root"]))

        tasks = [task(student, lesson) for student, lesson in folders]
        if verbose:
            print(f"grading {len(tasks)} notebook set(s), {jobs} at a time ...")
        run_tasks(workspace, tasks, jobs, done)
        for lesson in selected:
            entry = entries[lesson]
            entry["problems"].extend(_verify_problems(entry, timeout))
            for problem in release_problems(prepared[lesson]):
                entry["problems"].append(f"fresh release {problem}")
            entry["problems"].extend(lesson_leaks(course_root, lesson))
    finally:
        workspace.kill_all()
        workspace.cleanup()
    report = VerifyReport(entries, time.time() - started, workspace.run_id)
    if verbose:
        print(report.table())
    return report


def release_run_problems(outcome, task_root):
    """What went wrong when the untouched release ran, outside its exercises.

    Parameters
    ----------
    outcome : Outcome
        The grading of the untouched release (its ``autograded`` notebooks
        hold every cell's outputs).
    task_root : Path
        The course root it was graded in: the sandbox's launcher lists there
        the files the kernel left next to the notebook; without a sandbox they
        are in its ``submitted/`` folder, beside what was staged.

    Returns
    -------
    list of str
        A teaching cell that failed (with its error), or the files left.
    """
    problems = []
    for path in sorted(Path(outcome.autograded).glob("*.ipynb")):
        for index, cell in enumerate(read_notebook(path).cells):
            meta = nbgrader_meta(cell)
            if cell.cell_type != "code" or meta.get("solution") or meta.get("grade"):
                continue
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    first_line = cell.source.splitlines()[0][:60] if cell.source else ""
                    problems.append(
                        f"the untouched release fails in teaching cell {index} of {path.name}"
                        f" ({first_line!r}): {output.get('ename')}: {output.get('evalue')}"
                    )
    left = set()
    for listing in Path(task_root).glob(f".sandbox/*{FILES_LEFT_SUFFIX}"):
        left.update(listing.read_text().split("\n"))
    staged = Path(task_root) / "submitted" / outcome.student / outcome.lesson
    staged_names = {"timestamp.txt", *(p.name for p in Path(outcome.autograded).glob("*.ipynb"))}
    left.update(
        str(p.relative_to(staged))
        for p in staged.rglob("*")
        if not p.is_dir() and str(p.relative_to(staged)) not in staged_names
    )
    left.discard("")
    if left:
        problems.append(
            f"running the untouched release left files next to the notebook: {sorted(left)}"
        )
    return problems


def release_problems(prepared):
    problems = []
    for name in prepared.notebooks:
        for problem in release_leaks(prepared.source / name, prepared.release_dir / name):
            problems.append(f"{name} {problem}")
    return problems


def _verify_problems(entry, timeout):
    problems = []
    ref, blank = entry["reference"], entry["blank"]
    for who, outcome in (("solutions", ref), ("release", blank)):
        if outcome.status != "graded":
            problems.append(f"the {who} could not be graded: {outcome.message}")
            continue
        if outcome.leftovers:
            problems.append(f"grading the {who} left processes behind: {outcome.leftovers}")
        for note in outcome.notes:
            if not note.startswith("to grade by hand") and "left after grading" not in note:
                problems.append(f"grading the {who}: {note}")
    if not ref.cells:
        problems.append("no autograded test cell")
    for cell, (score, maximum) in sorted(ref.cells.items()):
        if score != maximum:
            problems.append(f"the solutions get {score} of {maximum} points on {cell}")
    for cell, (score, maximum) in sorted(blank.cells.items()):
        if score:
            problems.append(
                f"the untouched release gets {score} of {maximum} points on {cell}: "
                f"its test passes without an answer"
            )
    if ref.manual:
        problems.append(f"cells need grading by hand: {', '.join(ref.manual)}")
    return problems
