"""Grading: each submission in a task of its own, then merged into the gradebook.

:func:`grade` prepares the lessons once (a fresh release and a template
gradebook), runs one grading task per (student, lesson) ``jobs`` at a time
(:mod:`course_lib.grading.runner`), each with the submission checked first
(:mod:`course_lib.grading.checks`), and merges every task's gradebook into the
course's ``.nbgrader/gradebook.db`` (manual scores are kept). Results are
copied to the course's ``autograded/``, ``feedback/`` and ``submitted/``.

nbgrader is imported where the gradebooks are (the merge, the due dates), not at
the top: :func:`grade_one` runs where nbgrader would be paid for nothing (a Slurm
element, whose grading worker imports nbgrader itself).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from course_lib.grading.checks import stage_submission
from course_lib.grading.handback import failure_messages, scrub_handback, stderr_notes
from course_lib.grading.layout import (
    REPO_ROOT,
    SOURCE_DIR,
    find_lessons,
    prepare_lessons,
    select_lessons,
)
from course_lib.grading.leaks import hidden_test_lines
from course_lib.grading.notebooks import grade_id, nbgrader_meta, read_notebook
from course_lib.grading.report import GradeReport, Outcome, class_outcomes, write_csv
from course_lib.grading.runner import (
    AUDIT_DIR,
    SENT_SUFFIX,
    TASK_TIMEOUT,
    TYPES_SUFFIX,
    Workspace,
    check_jobs,
    check_timeout,
    generate,
    make_course_root,
    run_steps,
    step_error,
)
from course_lib.grading.sandbox import FAILURE_PREFIX, sandbox_problem

__all__ = ["ATTEMPTS", "check_sandbox", "grade", "infrastructure_failure", "quiet_gradebook"]

_TIMEOUT_ERRORS = ("KeyboardInterrupt", "CellTimeoutError")
#: Attempts at grading one submission when what fails is not the student's.
ATTEMPTS = 3
#: Seconds between two attempts (a busy host may need a moment).
RETRY_PAUSE = 3.0


def discover_submissions(submissions):
    """``{student: folder}`` from ``<student>/<lesson>/`` or a course root."""
    submissions = Path(submissions)
    if not submissions.is_dir():
        raise FileNotFoundError(
            f"submissions folder {submissions} does not exist: pass "
            f"SUBMISSIONS=<folder> holding <student>/<lesson>/*.ipynb."
        )
    if (submissions / "submitted").is_dir() and not any(
        (child / "submitted").is_dir() for child in submissions.iterdir() if child.is_dir()
    ):
        nested = submissions / "submitted"
        if any(child.is_dir() for child in nested.iterdir()):
            submissions = nested
    return {
        child.name: child
        for child in sorted(submissions.iterdir())
        if child.is_dir() and not child.name.startswith((".", "_"))
    }


def timeout_notes(autograded_dir, timeout):
    notes = []
    for path in sorted(Path(autograded_dir).glob("*.ipynb")):
        with contextlib.suppress(Exception):
            nb = read_notebook(path)
            for index, cell in enumerate(nb.cells):
                names = {o.get("ename") for o in cell.get("outputs", [])}
                if names & set(_TIMEOUT_ERRORS):
                    label = grade_id(cell) or f"cell {index + 1}"
                    limit = f"the {timeout:g} s" if timeout else "the"
                    notes.append(f"{label} stopped by {limit} timeout")
    return notes


def dead_kernel_notes(autograded_dir):
    """Notes for a notebook whose kernel died or stopped answering while it ran."""
    notes = []
    for path in sorted(Path(autograded_dir).glob("*.ipynb")):
        with contextlib.suppress(Exception):
            for index, cell in enumerate(read_notebook(path).cells):
                for output in cell.get("outputs", []):
                    if output.get("ename") == "DeadKernelError" and "not run" not in str(
                        output.get("evalue")
                    ):
                        label = grade_id(cell) or f"cell {index + 1}"
                        notes.append(
                            f"the notebook's kernel died in {label}: the cells after it did "
                            "not run and the tests after it failed"
                        )
    return notes


def check_sandbox(sandbox):
    """Raise RuntimeError, saying what is missing, when ``sandbox`` cannot be made."""
    if sandbox:
        problem = sandbox_problem()
        if problem is not None:
            raise RuntimeError(f"grading needs a sandbox for the students' code: {problem}")


def grade_one(
    workspace, lesson, student, folder, template_db, *, timeout, task_timeout, pause=RETRY_PAUSE
):
    """Grade one student's lesson in a temporary course root of its own.

    A failure that is not the student's (:func:`infrastructure_failure`) is
    retried ``ATTEMPTS - 1`` more times, ``pause`` seconds apart, each
    attempt in a fresh course root; if it persists, the outcome is an
    ``error`` with its cause and no score.
    """
    outcome = Outcome(student, lesson.lesson, sandboxed=workspace.sandbox)
    if folder is None or not folder.is_dir():
        outcome.status = "missing"
        if folder is not None and folder.exists():
            outcome.notes.append(
                f"{student}/{lesson.lesson} is a file, not a folder: submit the lesson's "
                f"folder, with its notebook inside ({student}/{lesson.lesson}/*.ipynb)"
            )
        return outcome, None
    started = time.time()
    staged = make_course_root(workspace, "task", {lesson.lesson: lesson.source}, timeout=timeout)
    if not stage_submission(outcome, folder, lesson, staged):
        outcome.status = "invalid" if any(folder.glob("*.ipynb")) else "missing"
        if outcome.status == "missing":
            outcome.notes.append("no notebook submitted")
        outcome.seconds = time.time() - started
        return outcome, None
    names = {"assignment": lesson.lesson, "student": student}
    steps = [
        {"action": "autograde", **names},
        {"action": "generate_feedback", **names},
        {"action": "scores", **names},
    ]
    setup_cells = _setup_cells(lesson)
    failures = []
    for attempt in range(1, ATTEMPTS + 1):
        if attempt == 1:
            root = staged
        else:
            time.sleep(pause)
            root = make_course_root(
                workspace, "task", {lesson.lesson: lesson.source}, timeout=timeout
            )
            shutil.copytree(staged / "submitted", root / "submitted")
        db_path = root / "gradebook.db"
        shutil.copy(template_db, db_path)
        run = run_steps(workspace, root, steps, timeout=task_timeout, attempt=attempt)
        autograded = root / "autograded" / student / lesson.lesson
        failure = infrastructure_failure(run, root / "nbgrader.log", autograded, setup_cells)
        if failure is None:
            break
        failures.append(failure)
        with open(root / "nbgrader.log", "a") as log:
            print(
                f"== attempt {attempt} of {ATTEMPTS} failed, not by the student: {failure}",
                file=log,
            )
        if failure.startswith(HOST_LACKS):
            break
    outcome.attempts = attempt
    outcome.seconds = time.time() - started
    outcome.log = root / "nbgrader.log"
    outcome.leftovers = run.leftovers
    if run.leftovers:
        outcome.notes.append(f"{len(run.leftovers)} process(es) left after grading were killed")
    feedback = root / "feedback" / student / lesson.lesson
    outcome.autograded = autograded if autograded.is_dir() else None
    outcome.feedback = feedback if feedback.is_dir() else None
    info = {"root": root, "db": db_path, "survivors": run.survivors}
    if failure is not None:
        outcome.status = "error"
        outcome.flagged = True
        outcome.notes.append(
            f"not graded, no score: grading failed {attempt} time(s), not by the student's "
            f"fault: {failure}"
        )
        return outcome, info
    if outcome.autograded is not None:
        outcome.notes.extend(timeout_notes(autograded, run.execute_timeout))
        outcome.notes.extend(stderr_notes(autograded))
        died = dead_kernel_notes(autograded)
        outcome.notes.extend(died)
        outcome.flagged |= bool(died)
    if outcome.feedback is not None:
        hidden = set()
        for name in lesson.notebooks:
            hidden |= hidden_test_lines(lesson.source / name)
        removed = scrub_handback(outcome.feedback, hidden)
        if removed:
            outcome.flagged = True
            outcome.notes.append(
                f"feedback held {len(removed)} line(s) of a hidden test: removed before "
                "handing it back"
            )
    by_action = {step["action"]: step for step in run.steps}
    autograde_ok = by_action.get("autograde", {}).get("success", False)
    if not autograde_ok:
        outcome.status = "error"
        outcome.flagged = True
        outcome.notes.append(step_error(run))
    elif not by_action.get("generate_feedback", {}).get("success", False):
        outcome.notes.append(step_error(run))
    scores = by_action.get("scores", {}).get("scores")
    if scores is not None:
        outcome.score = float(scores["score"] or 0.0)
        outcome.max_score = float(scores["max_score"] or 0.0)
        for notebook in scores["notebooks"]:
            outcome.flagged |= notebook["flagged"]
            for cell in notebook["cells"]:
                if cell["autograded"]:
                    outcome.cells[cell["cell"]] = (cell["auto_score"], cell["max_score"])
                elif cell["needs_manual_grade"]:
                    outcome.manual.append(cell["cell"])
    if outcome.manual:
        outcome.notes.append(f"to grade by hand: {', '.join(outcome.manual)}")
    if outcome.autograded is not None:
        outcome.failures = failure_messages(outcome.autograded, outcome.cells)
    return outcome, info


def _setup_cells(lesson):
    """``{notebook: [grade_id]}``: the locked code cells before a lesson's first answer.

    They set the lesson up (imports, data, the cluster): the student's code
    has not run yet when they do, so their failure is never the student's.
    """
    found = {}
    for name in lesson.notebooks:
        ids = []
        for cell in read_notebook(lesson.release_dir / name).cells:
            meta = nbgrader_meta(cell)
            if meta.get("solution") or meta.get("grade"):
                break
            if cell.cell_type == "code" and meta.get("locked") and grade_id(cell):
                ids.append(grade_id(cell))
        found[name] = ids
    return found


#: Words in nbgrader's log when the grading kernel could not start.
_KERNEL_START_FAILURES = (
    "Kernel died before replying to kernel_info",
    "Kernel didn't respond",
    "kernel_info reply",
    FAILURE_PREFIX,
)
#: Words in nbgrader's log when the checker kernel failed (never the student's doing).
_CHECKER_FAILURES = ("CheckerKernelError",)
#: Errors of a kernel that the student's code may well have caused.
_STUDENT_KERNEL_ERRORS = ("DeadKernelError", "UnresponsiveKernelError")


def infrastructure_failure(run, log_path, autograded, setup_cells):
    """Why grading failed for a reason that is not the student's, or None.

    Such reasons: the kernel (or its sandbox) did not start, a locked setup
    cell (:func:`_setup_cells`) failed, nbgrader itself failed. A kernel
    that died or hung while the student's code ran, or a task that ran past
    its time limit, are the student's.
    """
    if run.timed_out:
        return None
    by_action = {step["action"]: step for step in run.steps}
    autograde = by_action.get("autograde")
    if autograde is None or not autograde.get("success"):
        text = "\n".join([(autograde or {}).get("log") or "", (autograde or {}).get("error") or ""])
        with contextlib.suppress(OSError):
            text += "\n" + Path(log_path).read_text(errors="replace")
        for words in _CHECKER_FAILURES:
            if words in text:
                line = next(x for x in text.splitlines() if words in x).strip()
                return f"the checker kernel failed ({line[:200]})"
        for words in _KERNEL_START_FAILURES:
            if words in text:
                line = next(x for x in text.splitlines() if words in x).strip()
                return f"the grading kernel did not start ({line[:200]})"
        if autograde is not None and any(e in text for e in _STUDENT_KERNEL_ERRORS):
            return None
        return step_error(run)
    for name, ids in setup_cells.items():
        path = Path(autograded) / name
        if not ids or not path.is_file():
            continue
        with contextlib.suppress(Exception):
            for cell in read_notebook(path).cells:
                if grade_id(cell) not in ids:
                    continue
                for output in cell.get("outputs", []):
                    if output.get("output_type") == "error":
                        error = f"{output.get('ename')}: {output.get('evalue')}".strip(": ")
                        return f"the locked setup cell {grade_id(cell)} failed ({error[:200]})"
    return _host_lacks_launcher(autograded)


#: Start of the reason given when the grading host lacks a launcher (MPI, Slurm): retrying
#: cannot help, so the submission is not graded again.
HOST_LACKS = "this grading host cannot start the engines an exercise needs"


def _host_lacks_launcher(autograded):
    """The reason a cell failed with :class:`course_lib.cluster.LauncherUnavailable`, or None.

    Such a cell asked for engines the grading host cannot start (no ``mpiexec``, no
    Slurm): not the student's mistake, so never a score of zero.
    """
    for path in sorted(Path(autograded).glob("*.ipynb")):
        with contextlib.suppress(Exception):
            for cell in read_notebook(path).cells:
                for output in cell.get("outputs", []):
                    if output.get("ename") == "LauncherUnavailable":
                        cell_id = grade_id(cell) or "a cell"
                        return f"{HOST_LACKS} ({cell_id}: {output.get('evalue', '')[:200]})"
    return None


def merge_into_gradebook(master, outcome, task, course_id, max_scores):
    """Copy one graded submission from its task gradebook into the course's."""
    from nbgrader.api import Gradebook, MissingEntry

    from course_lib.grading.late import late_note, score_after_penalty

    master.update_or_create_student(outcome.student)
    if outcome.status == "missing":
        return
    kwargs = {}
    task_sub = None
    if task is not None:
        with Gradebook(f"sqlite:///{task['db']}", course_id) as gb:
            with contextlib.suppress(MissingEntry):
                sub = gb.find_submission(outcome.lesson, outcome.student)
                task_sub = {
                    "timestamp": sub.timestamp,
                    "notebooks": {
                        nb.name: {
                            "flagged": nb.flagged,
                            "penalty": nb.late_submission_penalty,
                            "grades": {
                                g.name: (g.auto_score, g.needs_manual_grade) for g in nb.grades
                            },
                            "comments": {c.name: c.auto_comment for c in nb.comments},
                        }
                        for nb in sub.notebooks
                    },
                }
                if sub.timestamp is not None:
                    kwargs["timestamp"] = sub.timestamp
    submission = master.update_or_create_submission(outcome.lesson, outcome.student, **kwargs)
    graded = outcome.status == "graded" and task_sub is not None
    # Late by the course gradebook's due date: nbgrader's penalty, from the task.
    penalty = sum(nb["penalty"] or 0.0 for nb in (task_sub or {}).get("notebooks", {}).values())
    late = late_note(submission.total_seconds_late, penalty) if task_sub else None
    for notebook in submission.notebooks:
        data = (task_sub or {}).get("notebooks", {}).get(notebook.name)
        notebook.flagged = bool(outcome.flagged or (data and data["flagged"]))
        if data is not None:
            notebook.late_submission_penalty = data["penalty"]
        for grade in notebook.grades:
            if graded and data is not None and grade.name in data["grades"]:
                grade.auto_score, grade.needs_manual_grade = data["grades"][grade.name]
            else:
                # Not gradable automatically: zero, left for the instructor to look at.
                grade.auto_score, grade.needs_manual_grade = 0.0, True
            if grade.manual_score is not None:
                grade.needs_manual_grade = False
        # Why it is flagged, and how late it came, where the instructor grades it: the
        # formgrader shows a cell's comment (nbgrader's auto_comment) beside the cell.
        # The first comment of the notebook says why, and so does that of every cell a
        # reason names; then comes what nbgrader's autograde said.
        reasons = outcome.flag_reasons
        for position, comment in enumerate(notebook.comments):
            parts = []
            named = [reason for reason in reasons if comment.name in reason]
            if named or (reasons and position == 0):
                parts.append("Flagged for grading by hand: " + "; ".join(named or reasons))
            if late and position == 0:
                parts.append(f"Late: {late}.")
            said = None if data is None else data["comments"].get(comment.name)
            comment.auto_comment = "\n\n".join([*parts, *([said] if said else [])]) or None
    master.db.commit()
    if late:
        outcome.notes.append(late)
    outcome.score = score_after_penalty(submission)
    outcome.max_score = float(submission.max_score or max_scores.get(outcome.lesson, 0.0))
    grades = [grade for notebook in submission.notebooks for grade in notebook.grades]
    outcome.by_hand = any(g.manual_score is not None for g in grades) and not any(
        g.needs_manual_grade for g in grades
    )


def copy_audit(audit_dir, log_dir, student):
    """Copy a task's sent-logs and checker types to ``log_dir`` (one pair per student).

    ``<student>.sent.jsonl`` holds every code sent to the student's kernel,
    ``<student>.checker-types.json`` the types the checker held at the end
    (the union over the lesson's notebooks).
    """
    sent = sorted(Path(audit_dir).glob(f"*{SENT_SUFFIX}"))
    found = sorted(Path(audit_dir).glob(f"*{TYPES_SUFFIX}"))
    if not sent and not found:
        return
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"{student}{SENT_SUFFIX}", "w", encoding="utf-8") as out:
        for path in sent:
            out.write(path.read_text(encoding="utf-8"))
    types = set()
    for path in found:
        with contextlib.suppress(OSError, ValueError, TypeError):
            value = json.loads(path.read_text())
            types |= set(value) if isinstance(value, list) else {f"?{value}"}
    (log_dir / f"{student}{TYPES_SUFFIX}").write_text(json.dumps(sorted(types), indent=0))


def copy_results(course_root, outcome, folder, audit_dir=None):
    for kind, source in (("autograded", outcome.autograded), ("feedback", outcome.feedback)):
        dest = course_root / kind / outcome.student / outcome.lesson
        shutil.rmtree(dest, ignore_errors=True)
        if source is not None:
            shutil.copytree(source, dest)
    if outcome.autograded is not None:
        outcome.autograded = course_root / "autograded" / outcome.student / outcome.lesson
    if outcome.feedback is not None:
        outcome.feedback = course_root / "feedback" / outcome.student / outcome.lesson
        # nbgrader's release_feedback names the feedback it hands back after the secret
        # that `nbgrader submit` wrote in the submission (nbgrader >= 0.9), as
        # generate_feedback copies it: without it, release_feedback stops.
        secret = None if folder is None else folder / "submission_secret.txt"
        if secret is not None and secret.is_file():
            shutil.copy(secret, outcome.feedback / secret.name)
    submitted = course_root / "submitted" / outcome.student / outcome.lesson
    if folder is not None and folder.is_dir() and folder.resolve() != submitted.resolve():
        shutil.rmtree(submitted, ignore_errors=True)
        shutil.copytree(folder, submitted, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    if outcome.log is not None:
        log_dir = course_root / ".nbgrader" / "logs" / outcome.lesson
        log_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(outcome.log, log_dir / f"{outcome.student}.log")
        outcome.log = log_dir / f"{outcome.student}.log"
    if audit_dir is not None:
        copy_audit(audit_dir, course_root / ".nbgrader" / "logs" / outcome.lesson, outcome.student)


@contextlib.contextmanager
def quiet_gradebook():
    """nbgrader's gradebook emits SQLAlchemy ``SAWarning``\\ s about objects
    "not in session" while it creates submissions (nbgrader's own pattern,
    harmless). Silence that warning only."""
    with warnings.catch_warnings():
        try:
            from sqlalchemy.exc import SAWarning

            warnings.filterwarnings("ignore", message=r".*not in session", category=SAWarning)
        except ImportError:  # pragma: no cover
            pass
        yield


def grade(
    submissions,
    course_root=REPO_ROOT,
    *,
    lessons=None,
    jobs=None,
    timeout=None,
    task_timeout=TASK_TIMEOUT,
    csv_path=None,
    verbose=True,
    sandbox=True,
    on="local",
    place_options=None,
):
    """Autograde every submission, write feedback, the gradebook and a CSV.

    Parameters
    ----------
    submissions : str or Path
        A folder of ``<student>/<lesson>/*.ipynb`` (the layout of nbgrader's
        ``submitted/``), or a course root holding ``submitted/``.
    course_root : str or Path
        Where ``solutions/`` is and where the results go: ``autograded/``,
        ``feedback/``, ``submitted/``, the gradebook
        ``.nbgrader/gradebook.db`` and ``grades.csv``.
    lessons : list of str, optional
        Lessons to grade; default every lesson in ``solutions/``.
    jobs : int, optional
        Submissions graded at once; default :func:`default_jobs`.
    timeout : float, optional
        Seconds per cell; default ``Execute.timeout`` of ``nbgrader_config.py``.
    task_timeout : float
        Seconds one student's lesson may take in all before it is stopped.
    csv_path : str or Path, optional
        Default ``<course_root>/grades.csv``.
    verbose : bool
        Print progress and the students × lessons table.
    sandbox : bool
        Run every graded notebook in a bubblewrap sandbox
        (:mod:`course_lib.grading.sandbox`). Without it, every row says
        "graded without a sandbox".
    on : str or place
        Where the tasks run (:mod:`course_lib.grading.placement`): ``"local"``
        (``jobs`` at a time on this host) or ``"slurm"`` (a job array,
        :mod:`course_lib.grading.slurm`), or a place object.
    place_options : dict, optional
        The place's settings (for ``"slurm"``: ``shared``, ``partition``, ...).

    Returns
    -------
    GradeReport
        Bad student work is graded (zero, with a note), never fatal; the
        report's ``problems`` list only failures of the pipeline itself.
    """
    started = time.time()
    course_root = Path(course_root).resolve()
    selected = select_lessons(course_root, lessons)
    jobs = check_jobs(jobs)
    timeout = check_timeout(timeout)
    task_timeout = check_timeout(task_timeout, "task_timeout")
    students = discover_submissions(submissions)
    csv_path = Path(csv_path) if csv_path else course_root / "grades.csv"
    from course_lib.grading.placement import GradingTask, make_place

    place = make_place(on, **({"jobs": jobs} if on == "local" else {}), **(place_options or {}))
    place.check(course_root)  # refused at the door: nothing prepared or submitted yet
    check_sandbox(sandbox)
    workspace = Workspace(sandbox=sandbox)
    problems, outcomes = [], []
    prepare_seconds = 0.0
    say = print if verbose else (lambda *a, **k: None)
    try:
        if not selected:
            say(f"no lesson in {course_root / SOURCE_DIR}: nothing to grade")
            write_csv(csv_path, [])
            return GradeReport([], [], csv_path, workspace.run_id, time.time() - started)
        known = set(find_lessons(course_root / SOURCE_DIR))
        for student, folder in students.items():
            for child in sorted(folder.iterdir()):
                if child.is_dir() and not child.name.startswith(".") and child.name not in known:
                    say(f"warning: {student}/{child.name} is not a lesson: ignored")
        master_db = course_root / ".nbgrader" / "gradebook.db"
        master_db.parent.mkdir(parents=True, exist_ok=True)
        say(f"preparing {len(selected)} lesson(s) with nbgrader ...")
        # What takes long to start starts now, while the lessons are prepared.
        place.begin(workspace, len(students) * len(selected), task_timeout, say)
        template_db = workspace.path / "template.db"
        if master_db.exists():
            # An earlier batch's gradebook: nbgrader adds what is new to it, keeping its rows.
            with ThreadPoolExecutor(max_workers=2) as pool:
                template = pool.submit(generate, workspace, course_root, selected, template_db)
                master = pool.submit(
                    generate, workspace, course_root, selected, master_db, "master"
                )
                template_root = template.result()
                master.result()
        else:
            # A new gradebook is the template's: one preparation, copied.
            template_root = generate(workspace, course_root, selected, template_db)
            shutil.copy(template_db, master_db)
        prepared = prepare_lessons(course_root, selected, template_root)
        course_id = course_id_of(template_root)
        # The due dates the instructor set in the course's gradebook, for nbgrader's
        # late-submission policy in every task (course_lib.grading.late).
        from course_lib.grading.late import copy_duedates

        copy_duedates(master_db, template_db, selected, course_id or "default_course")
        prepare_seconds = time.time() - started

        tasks = [
            GradingTask(
                s,
                f / lesson if (f / lesson).exists() else None,
                prepared[lesson],
                template_db,
                timeout,
                task_timeout,
            )
            for lesson in selected
            for s, f in students.items()
        ]
        say(f"grading {len(tasks)} submission(s) of {len(students)} student(s), {place.describe()}")
        from nbgrader.api import Gradebook

        with quiet_gradebook(), Gradebook(f"sqlite:///{master_db}", course_id) as master_gb:
            max_scores = {a.name: float(a.max_score) for a in master_gb.assignments}

            def done(result):
                outcome, task_info = result
                if task_info is not None and task_info["survivors"]:
                    problems.append(
                        f"{outcome.student}/{outcome.lesson}: processes survived SIGKILL: "
                        f"{task_info['survivors']}"
                    )
                try:
                    merge_into_gradebook(master_gb, outcome, task_info, course_id, max_scores)
                except Exception as exc:
                    master_gb.db.rollback()
                    problems.append(
                        f"{outcome.student}/{outcome.lesson}: merging into the gradebook "
                        f"failed: {exc!r}"
                    )
                if outcome.status != "missing":
                    folder = students[outcome.student] / outcome.lesson
                    audit = task_info["root"] / AUDIT_DIR if task_info is not None else None
                    copy_results(course_root, outcome, folder, audit)
                if outcome.status == "error" and outcome.log is not None:
                    outcome.notes.append(f"log: {outcome.log}")
                if not outcome.max_score:
                    outcome.max_score = max_scores.get(outcome.lesson, 0.0)
                outcomes.append(outcome)
                if outcome.status != "missing":
                    say(
                        f"  {outcome.student}/{outcome.lesson}: {outcome.status} "
                        f"{outcome.score:g}/{outcome.max_score:g} ({outcome.seconds:.1f} s)"
                    )

            place.run(workspace, tasks, done, say)
        write_csv(csv_path, class_outcomes(outcomes, csv_path, master_db, course_id))
    except (RuntimeError, FileNotFoundError, ValueError) as exc:
        problems.append(str(exc))
    except KeyboardInterrupt:
        write_csv(csv_path, outcomes)  # what was merged before the interruption
        say(f"interrupted: {len(outcomes)} row(s) merged and written to {csv_path}")
        raise
    finally:
        place.close()
        survivors = workspace.kill_all()
        if survivors:
            problems.append(f"processes could not be stopped: {survivors}")
        workspace.cleanup()
    report = GradeReport(outcomes, problems, csv_path, workspace.run_id, time.time() - started)
    report.prepare_seconds = prepare_seconds
    if verbose and outcomes:
        print()
        print(report.table())
        print(f"\n{len(outcomes)} row(s) written to {csv_path} in {report.seconds:.0f} s")
    for problem in problems:
        say(f"PIPELINE ERROR: {problem}", file=sys.stderr)
    return report


def course_id_of(root):
    """The course id nbgrader uses in ``root`` (``CourseDirectory.course_id``)."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    course_id = config.CourseDirectory.get("course_id", "")
    return course_id if isinstance(course_id, str) else ""
