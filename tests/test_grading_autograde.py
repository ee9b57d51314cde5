"""The grading pipeline end to end, with real nbgrader, kernels and clusters.

A class of fixture students (``tests/fixtures/submissions``, rebuilt by
``tests/fixtures/build_fixtures.py``) hands in the fixture lesson
(``tests/fixtures/course``), which starts its cluster with
``course_lib.cluster.local_cluster`` like every real lesson. The class is
graded once, two at a time, with a short per-cell timeout; the tests below
read that one run.
"""

import csv
import html.parser
import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from grading_helpers import FIXTURES, LESSON, NOTEBOOK, copy_course
from grading_helpers import cell as _cell

from course_lib import _processes, grading
from course_lib.grading.autograde import quiet_gradebook
from course_lib.grading.notebooks import nbgrader_meta, output_text

STUDENTS = {"ada", "wrong", "meddler", "hanger", "engine_hanger", "killer", "broken", "absent"}
#: Seconds per cell in these runs: above cluster start-up on a very busy 2-core
#: host (25 s was not, at a load of 20), and not nbgrader's default of 30 s (so the
#: notes show the key at work).
TIMEOUT = 60
NBGRADER_DEFAULT_TIMEOUT = 30

# Grading a class takes minutes on 2 cores; the module's fixtures count in
# the first test that uses them.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The fixture class graded by ``grading.grade`` in a copy of the course."""
    root = tmp_path_factory.mktemp("course")
    copy_course(root)
    submissions = tmp_path_factory.mktemp("submissions")
    shutil.copytree(FIXTURES / "submissions", submissions, dirs_exist_ok=True)
    report = grading.grade(submissions, root, jobs=2, timeout=TIMEOUT, verbose=False)
    print(report.table())
    return root, report


def _pids(descriptions):
    return [int(re.match(r"\d+", text).group()) for text in descriptions]


class _Text(html.parser.HTMLParser):
    """The text a reader sees in an HTML page (no styles, no scripts)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self._skip = [], 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("style", "script")

    def handle_endtag(self, tag):
        self._skip -= tag in ("style", "script") and self._skip > 0

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def _squash(text):
    return re.sub(r"\s+", " ", text).strip()


def _html_text(path):
    parser = _Text()
    parser.feed(Path(path).read_text())
    return _squash("".join(parser.parts))


def _outputs_text(nb):
    return _squash("\n".join(output_text(o) for c in nb.cells for o in c.get("outputs", [])))


def _sources_text(nb):
    return _squash("\n".join(cell.source for cell in nb.cells))


# --------------------------------------------------------------------------
# The whole class, graded once
# --------------------------------------------------------------------------


def test_grading_succeeds_and_every_student_gets_a_row(graded):
    root, report = graded
    assert report.ok, report.problems
    assert {o.student for o in report.outcomes} == STUDENTS
    with open(root / "grades.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {(row["student"], row["lesson"]) for row in rows} == {(s, LESSON) for s in STUDENTS}
    status = {row["student"]: row["status"] for row in rows}
    assert status["absent"] == "missing"
    assert status["broken"] == "invalid"
    assert {status[s] for s in STUDENTS - {"absent", "broken"}} == {"graded"}
    assert all(float(row["max_score"]) == 5 for row in rows)
    table = report.table()
    assert all(student in table for student in STUDENTS)


def test_the_solutions_get_full_marks(graded):
    root, report = graded
    ada = report.outcome("ada", LESSON)
    assert (ada.score, ada.max_score) == (5, 5)
    assert all(score == maximum for score, maximum in ada.cells.values())
    assert ada.notes == []


def test_wrong_answers_get_zero_and_feedback(graded):
    root, report = graded
    wrong = report.outcome("wrong", LESSON)
    assert wrong.status == "graded"
    assert wrong.score == 0
    assert (root / "feedback" / "wrong" / LESSON / f"{LESSON}.html").is_file()
    assert (root / "autograded" / "wrong" / LESSON / NOTEBOOK).is_file()
    assert (root / "submitted" / "wrong" / LESSON / NOTEBOOK).is_file()


def test_broken_json_gets_a_clear_message_and_others_are_graded(graded):
    root, report = graded
    broken = report.outcome("broken", LESSON)
    assert broken.status == "invalid"
    assert broken.score == 0
    assert f"{NOTEBOOK} is not a notebook: broken JSON" in broken.message
    assert report.outcome("ada", LESSON).score == 5


def test_hanging_cell_is_stopped_by_the_timeout_and_the_rest_is_graded(graded):
    root, report = graded
    hanger = report.outcome("hanger", LESSON)
    assert hanger.status == "graded"
    assert hanger.cells["test-squares"] == (0, 2)  # its answer never finished
    assert hanger.cells["test-pids"] == (2, 2)  # the rest of the notebook ran
    assert hanger.cells["test-quiz-engines"] == (1, 1)
    assert f"ex-squares stopped by the {TIMEOUT} s timeout" in hanger.message
    nb = nbformat.read(root / "autograded" / "hanger" / LESSON / NOTEBOOK, 4)
    errors = [o.ename for o in _cell(nb, "ex-squares").outputs if o.output_type == "error"]
    assert errors[-1] == "CellTimeoutError"  # interrupted by the timeout
    # The task ran with the configured key (Execute.timeout), not nbgrader's 30 s.
    assert TIMEOUT != NBGRADER_DEFAULT_TIMEOUT


def test_task_hanging_inside_the_engines_is_stopped_and_graded(graded):
    root, report = graded
    engine_hanger = report.outcome("engine_hanger", LESSON)
    assert engine_hanger.status == "graded"
    assert (engine_hanger.score, engine_hanger.max_score) == (5, 5)
    assert "quiz-engines stopped by" in engine_hanger.message


def test_a_dead_kernel_fails_the_tests_after_it_and_the_rest_is_graded(graded):
    root, report = graded
    killer = report.outcome("killer", LESSON)
    assert killer.status == "graded" and killer.flagged
    assert killer.cells == {
        "test-squares": (2, 2),
        "test-pids": (0, 2),
        "test-quiz-engines": (0, 1),
    }
    assert "the notebook's kernel died in ex-pids" in killer.message
    nb = nbformat.read(root / "autograded" / "killer" / LESSON / NOTEBOOK, 4)
    said = [o.evalue for o in _cell(nb, "test-pids").outputs if o.output_type == "error"]
    assert said and "the notebook's kernel died in ex-pids" in said[0]


def test_engines_of_a_killed_kernel_are_killed_by_pid(graded, assert_all_gone):
    root, report = graded
    killer = report.outcome("killer", LESSON)
    # Its engines ignored SIGTERM and its kernel was gone: grading killed them.
    assert any("ipyparallel.engine" in text for text in killer.leftovers), killer.leftovers
    assert_all_gone(_pids(killer.leftovers), timeout=10)


def test_no_process_outlives_grading(graded, assert_all_gone):
    root, report = graded
    assert _processes.find_marked(grading.RUN_VAR, report.run_id) == []
    for outcome in report.outcomes:
        assert_all_gone(_pids(outcome.leftovers), timeout=10)


def test_edited_and_deleted_test_cells_are_caught(graded):
    root, report = graded
    meddler = report.outcome("meddler", LESSON)
    # test-squares was replaced by `pass`: nbgrader restored it, and it failed.
    assert meddler.cells["test-squares"] == (0, 2)
    assert "edited locked cell(s) test-squares" in meddler.message
    # test-pids was deleted: it is reported, put back and graded.
    assert meddler.cells["test-pids"] == (2, 2)
    assert "deleted graded cell(s) test-pids" in meddler.message
    assert meddler.flagged
    nb = nbformat.read(root / "autograded" / "meddler" / LESSON / NOTEBOOK, 4)
    assert "### BEGIN HIDDEN TESTS" in _cell(nb, "test-squares").source


def test_hidden_tests_do_not_leak_into_feedback_or_outputs(graded):
    root, report = graded
    hidden = grading.hidden_test_lines(FIXTURES / "course" / "solutions" / LESSON / NOTEBOOK)
    assert len(hidden) >= 5
    visible = 'assert isinstance(result, list), "squares_on_engines should return a list"'
    for outcome in report.outcomes:
        if outcome.status != "graded":
            continue
        nb = nbformat.read(root / "autograded" / outcome.student / LESSON / NOTEBOOK, 4)
        feedback = _html_text(root / "feedback" / outcome.student / LESSON / f"{LESSON}.html")
        outputs = _outputs_text(nb)
        # Controls: the hidden tests did run, and the feedback text is readable.
        assert all(_squash(line) in _sources_text(nb) for line in hidden)
        assert _squash(visible) in feedback
        for line in hidden:
            assert _squash(line) not in feedback, (outcome.student, line)
            assert _squash(line) not in outputs, (outcome.student, line)
    # wrong passed the visible checks and failed every hidden test: the
    # tracebacks are there, and say no more than the error's name.
    nb = nbformat.read(root / "autograded" / "wrong" / LESSON / NOTEBOOK, 4)
    for grade_id in ("test-squares", "test-pids", "test-quiz-engines"):
        errors = [o for o in _cell(nb, grade_id).outputs if o.output_type == "error"]
        assert [e.ename for e in errors] == ["CheckFailed"], grade_id
        assert len(errors[0].traceback) == 1 and errors[0].traceback[0].startswith("\u2718 ")


def test_the_student_kernel_never_received_a_test_and_the_checker_held_only_data(graded):
    """What was sent to each student's kernel (the sent-log make grade keeps) holds no
    line of any test cell, and the checker held no object of a student's class."""
    root, report = graded
    logs = root / ".nbgrader" / "logs" / LESSON
    solution = nbformat.read(FIXTURES / "course" / "solutions" / LESSON / NOTEBOOK, 4)
    test_lines = {
        line.strip()
        for c in solution.cells
        if nbgrader_meta(c).get("grade")
        for line in c.source.splitlines()
        if len(line.strip()) > 20
    }
    assert len(test_lines) >= 10
    graded_students = [o.student for o in report.outcomes if o.status == "graded"]
    assert len(graded_students) >= 6
    for student in graded_students:
        sent = [json.loads(x) for x in (logs / f"{student}.sent.jsonl").read_text().splitlines()]
        checker = [x["code"] for x in sent if x["from"] == "checker"]
        assert checker and all(code.count("\n") == 0 for code in checker), student
        text = "\n".join(x["code"] for x in sent)
        assert not [line for line in test_lines if line in text], student
        types = json.loads((logs / f"{student}.checker-types.json").read_text())
        assert "builtins.dict" in types
        assert [t for t in types if t.startswith("__main__.")] == [], student


def test_the_gradebook_holds_every_submission(graded):
    from nbgrader.api import Gradebook, MissingEntry

    root, report = graded
    with quiet_gradebook(), Gradebook(f"sqlite:///{root}/.nbgrader/gradebook.db") as gb:
        assert {s.id for s in gb.students} == STUDENTS
        assert gb.find_submission(LESSON, "ada").score == 5
        assert gb.find_submission(LESSON, "wrong").score == 0
        assert gb.find_submission_notebook(LESSON, LESSON, "meddler").flagged
        assert gb.find_submission_notebook(LESSON, LESSON, "killer").flagged
        assert gb.find_submission(LESSON, "killer").score == 2
        with pytest.raises(MissingEntry):
            gb.find_submission(LESSON, "absent")


def test_a_host_without_the_exercise_launcher_is_an_error_not_a_zero(tmp_path):
    """A test cell that raised LauncherUnavailable (no MPI, no Slurm on the grading host)
    makes the submission an infrastructure failure, named, and not retried."""
    from course_lib.grading.autograde import HOST_LACKS, infrastructure_failure
    from course_lib.grading.runner import RunResult

    nb = nbformat.v4.new_notebook()
    test_cell = nbformat.v4.new_code_cell("raise LauncherUnavailable('no mpiexec')")
    test_cell.metadata["nbgrader"] = {"grade": True, "grade_id": "test-mpi", "points": 3}
    test_cell.outputs = [
        nbformat.v4.new_output(
            "error", ename="LauncherUnavailable", evalue="no mpiexec on PATH", traceback=[]
        )
    ]
    nb.cells.append(test_cell)
    nbformat.write(nb, tmp_path / "07_scaling_out.ipynb")
    steps = [{"action": "autograde", "success": True}]
    run = RunResult(0, False, 1.0, steps, [], [])
    reason = infrastructure_failure(run, tmp_path / "log", tmp_path, {})
    assert reason is not None and reason.startswith(HOST_LACKS)
    assert "test-mpi" in reason and "no mpiexec on PATH" in reason

    test_cell.outputs[0]["ename"] = "AssertionError"
    nbformat.write(nb, tmp_path / "07_scaling_out.ipynb")
    assert infrastructure_failure(run, tmp_path / "log", tmp_path, {}) is None


def test_a_failed_checker_kernel_is_an_infrastructure_failure(tmp_path):
    """The executor's CheckerKernelError in nbgrader's log: retried, never the student's."""
    from course_lib.grading.autograde import infrastructure_failure
    from course_lib.grading.runner import RunResult

    error = (
        "Traceback (most recent call last):\n"
        "course_lib.grading.execute.CheckerKernelError: the checker kernel died while "
        "test-pids ran\n"
    )
    steps = [{"action": "autograde", "success": False, "log": "", "error": error}]
    run = RunResult(1, False, 1.0, steps, [], [])
    reason = infrastructure_failure(run, tmp_path / "log", tmp_path, {})
    assert reason.startswith("the checker kernel failed")
    assert "died while test-pids ran" in reason
