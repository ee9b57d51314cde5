"""The grading worker: nbgrader imported once, submission after submission, nothing shared.

Two students' lessons are graded one after the other by the same worker
process (real nbgrader, real sandboxed kernels, the fixture lesson's real
cluster); the second task's course root, gradebook, notebooks, feedback,
result and log hold no trace of the first student.
"""

import re
import shutil
import sqlite3

import pytest
from grading_helpers import FIXTURES, LESSON, copy_course

from course_lib import _processes
from course_lib.grading.autograde import grade_one
from course_lib.grading.layout import prepare_lessons
from course_lib.grading.runner import RUN_VAR, Workspace, generate, make_course_root, run_steps

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

FIRST, SECOND = "zqxfirstada", "zqxsecondbob"


def _worker_pid(log_text):
    found = re.findall(r"== worker (\d+) \(task (\d+)\)", log_text)
    assert found, log_text[-2000:]
    return int(found[-1][0]), int(found[-1][1])


def _texts(root):
    """Every readable file under ``root`` (the gradebook as its SQL dump), by path."""
    texts = {}
    for path in root.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        if path.suffix == ".db":
            with sqlite3.connect(path) as db:
                texts[path] = "\n".join(db.iterdump())
        else:
            texts[path] = path.read_text(errors="replace")
    return texts


def test_one_worker_grades_two_students_and_nothing_of_the_first_reaches_the_second(tmp_path):
    course = tmp_path / "course"
    copy_course(course)
    workspace = Workspace(sandbox=True)
    try:
        template_root = generate(workspace, course, [LESSON], workspace.path / "template.db")
        lesson = prepare_lessons(course, [LESSON], template_root)[LESSON]
        # Only one grading worker from here on: the one generate used is reused.
        assert len(workspace.pool._all) == 1
        results = {}
        for student, kind in ((FIRST, "solutions"), (SECOND, "lessons")):
            folder = tmp_path / "submissions" / student / LESSON
            shutil.copytree(FIXTURES / "course" / kind / LESSON, folder)
            results[student] = grade_one(
                workspace,
                lesson,
                student,
                folder,
                workspace.path / "template.db",
                timeout=60,
                task_timeout=900,
            )
        (first, first_info), (second, second_info) = results[FIRST], results[SECOND]
        assert first.status == second.status == "graded", (first.notes, second.notes)
        assert first.score == first.max_score > 0
        assert second.score == 0
        assert first.attempts == second.attempts == 1
        # The same worker process, its second and third task (generate was its first).
        first_pid, first_count = _worker_pid((first_info["root"] / "nbgrader.log").read_text())
        second_pid, second_count = _worker_pid((second_info["root"] / "nbgrader.log").read_text())
        assert first_pid == second_pid
        assert second_count == first_count + 1
        assert len(workspace.pool._all) == 1
        # Nothing of the first student in anything of the second's task: names in the
        # gradebook, notebook, feedback, result, log, paths.
        second_root = second_info["root"]
        assert second_root != first_info["root"]
        with sqlite3.connect(second_info["db"]) as db:
            students = [row[0] for row in db.execute("select id from student")]
        assert students == [SECOND]
        texts = _texts(second_root)
        assert any(path.suffix == ".ipynb" for path in texts)
        assert any(path.suffix == ".html" for path in texts)
        traces = [str(p) for p, text in texts.items() if FIRST in text or FIRST in str(p)]
        assert traces == []
        # What the first one was sent sits in its own root only.
        assert any(FIRST in text for text in _texts(first_info["root"]).values())
        # No kernel, controller or engine of either task is still alive.
        left = [
            p
            for p in _processes.find_marked(RUN_VAR, workspace.run_id)
            if p.pid != first_pid and "_nbgrader_task" not in " ".join(p.cmdline())
        ]
        assert left == []
    finally:
        workspace.kill_all()
        workspace.cleanup()
    assert _processes.find_marked(RUN_VAR, workspace.run_id) == []


def test_a_task_past_its_limit_kills_its_worker_and_the_next_task_gets_a_fresh_one(tmp_path):
    course = tmp_path / "course"
    copy_course(course)
    workspace = Workspace(sandbox=False)
    try:
        generate(workspace, course, [LESSON], workspace.path / "first.db")
        (first,) = workspace.pool._all
        root = make_course_root(workspace, "late", {LESSON: course / "solutions" / LESSON})
        steps = [{"action": "generate_assignment", "assignment": "*"}]
        # nbgrader is imported already: what times out is the step itself.
        late = run_steps(workspace, root, steps, timeout=0.2)
        assert late.timed_out
        assert not first.alive()
        again = generate(workspace, course, [LESSON], workspace.path / "again.db")
        assert (again / "lessons" / LESSON).is_dir()
        assert len(workspace.pool._all) == 2 and workspace.pool._all[1].alive()
    finally:
        workspace.kill_all()
        workspace.cleanup()
    assert _processes.find_marked(RUN_VAR, workspace.run_id) == []
