"""The grading pipeline end to end, with real nbgrader, kernels and clusters.

A class of fixture students (``tests/fixtures/submissions``, rebuilt by
``tests/fixtures/build_fixtures.py``) hands in the fixture lesson
(``tests/fixtures/course``), which starts its cluster with
``course_lib.cluster.local_cluster`` like every real lesson. The class is
graded once, two at a time, with a short per-cell timeout; the tests below
read that one run.
"""

import csv
import datetime
import html.parser
import json
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from course_lib import grading

FIXTURES = Path(__file__).resolve().parent / "fixtures"
LESSON = "00_fixture"
NOTEBOOK = f"{LESSON}.ipynb"
STUDENTS = {"ada", "wrong", "meddler", "hanger", "engine_hanger", "killer", "broken", "absent"}
#: Seconds per cell in these runs: above cluster start-up on a busy 2-core
#: host, below nbgrader's default of 30 s (so the key is seen to work).
TIMEOUT = 25
NBGRADER_DEFAULT_TIMEOUT = 30

# Grading a class takes minutes on 2 cores; the module's fixtures count in
# the first test that uses them.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def _copy_course(dest):
    """The fixture course, without what a sample `make grade` may have left in it."""
    leftovers = shutil.ignore_patterns(".nbgrader", "autograded", "feedback", "submitted", "*.csv")
    shutil.copytree(FIXTURES / "course", dest, dirs_exist_ok=True, ignore=leftovers)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The fixture class graded by ``grading.grade`` in a copy of the course."""
    root = tmp_path_factory.mktemp("course")
    _copy_course(root)
    submissions = tmp_path_factory.mktemp("submissions")
    shutil.copytree(FIXTURES / "submissions", submissions, dirs_exist_ok=True)
    report = grading.grade(submissions, root, jobs=2, timeout=TIMEOUT, verbose=False)
    print(report.table())
    return root, report


@pytest.fixture(scope="module")
def verified(tmp_path_factory):
    """verify-exercises on the fixture lesson and on a lesson with mistakes."""
    root = tmp_path_factory.mktemp("verify")
    _copy_course(root)
    shutil.copytree(FIXTURES / "bad_course" / "solutions", root / "solutions", dirs_exist_ok=True)
    report = grading.verify_exercises(root, jobs=2, verbose=False)
    print(report.table())
    return report


def _cell_seconds(cell):
    times = cell.metadata.get("execution", {})
    start, end = times.get("iopub.execute_input"), times.get("shell.execute_reply")
    if not (start and end):
        return None
    parse = datetime.datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


def _cell(nb, grade_id):
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return cell
    raise KeyError(grade_id)


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
    return _squash(
        "\n".join(grading._output_text(o) for c in nb.cells for o in c.get("outputs", []))
    )


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
    assert status["killer"] == "error"
    assert {status[s] for s in STUDENTS - {"absent", "broken", "killer"}} == {"graded"}
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
    seconds = _cell_seconds(_cell(nb, "ex-squares"))
    # The configured key (Execute.timeout) took effect: not nbgrader's 30 s.
    assert TIMEOUT - 1 <= seconds <= TIMEOUT + 3 < NBGRADER_DEFAULT_TIMEOUT


def test_task_hanging_inside_the_engines_is_stopped_and_graded(graded):
    root, report = graded
    engine_hanger = report.outcome("engine_hanger", LESSON)
    assert engine_hanger.status == "graded"
    assert (engine_hanger.score, engine_hanger.max_score) == (5, 5)
    assert "quiz-engines stopped by" in engine_hanger.message


def test_engines_of_a_killed_kernel_are_killed_by_pid(graded, assert_all_gone):
    root, report = graded
    killer = report.outcome("killer", LESSON)
    assert killer.status == "error"
    assert "the kernel died while the notebook ran" in killer.message
    # Its engines ignored SIGTERM and its kernel was gone: grading killed them.
    assert any("ipyparallel.engine" in text for text in killer.leftovers), killer.leftovers
    assert_all_gone(_pids(killer.leftovers), timeout=10)


def test_no_process_outlives_grading(graded, assert_all_gone):
    root, report = graded
    assert grading.marked_processes(grading.RUN_VAR, report.run_id) == []
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
        assert [e.ename for e in errors] == ["AssertionError"], grade_id


def test_the_gradebook_holds_every_submission(graded):
    from nbgrader.api import Gradebook, MissingEntry

    root, report = graded
    with grading._quiet_gradebook(), Gradebook(f"sqlite:///{root}/.nbgrader/gradebook.db") as gb:
        assert {s.id for s in gb.students} == STUDENTS
        assert gb.find_submission(LESSON, "ada").score == 5
        assert gb.find_submission(LESSON, "wrong").score == 0
        assert gb.find_submission_notebook(LESSON, LESSON, "meddler").flagged
        assert gb.find_submission_notebook(LESSON, LESSON, "killer").flagged
        with pytest.raises(MissingEntry):
            gb.find_submission(LESSON, "absent")


# --------------------------------------------------------------------------
# verify-exercises
# --------------------------------------------------------------------------


def test_verify_exercises_passes_the_fixture_lesson(verified):
    entry = verified.lessons[LESSON]
    assert entry["problems"] == []
    reference, blank = entry["reference"], entry["blank"]
    assert set(reference.cells) == {"test-squares", "test-pids", "test-quiz-engines"}
    assert all(score == maximum for score, maximum in reference.cells.values())
    assert all(score == 0 for score, _ in blank.cells.values())
    assert "00_fixture" in verified.table()


def test_verify_exercises_rejects_a_vacuous_test_and_a_leftover_process(verified):
    problems = "\n".join(verified.lessons["01_vacuous"]["problems"])
    assert "untouched release gets 1.0 of 1.0 points on test-vacuous" in problems
    assert "left processes behind" in problems and "sleep" in problems
    assert not verified.ok
    assert grading.marked_processes(grading.RUN_VAR, verified.run_id) == []


# --------------------------------------------------------------------------
# release and check-release
# --------------------------------------------------------------------------


def test_check_release_finds_drift_and_release_repairs_it(tmp_path):
    _copy_course(tmp_path)
    released = tmp_path / "lessons" / LESSON / NOTEBOOK
    nb = nbformat.read(released, 4)
    _cell(
        nb, "ex-squares"
    ).source += "\n    return view.map_sync(lambda value: value * value, values)"
    nbformat.write(nb, released)
    (tmp_path / "lessons" / "99_gone").mkdir()
    problems = "\n".join(grading.check_release(tmp_path))
    assert f"lessons/{LESSON}/{NOTEBOOK} differs" in problems
    assert "contains solution code: 'return view.map_sync(lambda value: value * value" in problems
    assert "lessons/99_gone has no source" in problems

    assert grading.release(tmp_path, verbose=False) == [LESSON, "99_gone"]
    committed = FIXTURES / "course" / "lessons" / LESSON / NOTEBOOK
    assert released.read_bytes() == committed.read_bytes()
    assert not (tmp_path / "lessons" / "99_gone").exists()


def test_release_leaks_finds_solutions_hidden_tests_and_outputs():
    solution = nbformat.read(FIXTURES / "course" / "solutions" / LESSON / NOTEBOOK, 4)
    released = nbformat.read(FIXTURES / "course" / "lessons" / LESSON / NOTEBOOK, 4)
    assert grading.release_leaks(solution, released) == []
    assert "return client[:].apply_async(os.getpid).get_dict()" in grading.solution_lines(solution)
    leaky = nbformat.from_dict(json.loads(json.dumps(released)))
    _cell(leaky, "test-pids").source += "\nassert os.getpid() not in pids.values()"
    _cell(leaky, "ex-pids").source += "\n    ### BEGIN SOLUTION"
    _cell(leaky, "setup").outputs = [nbformat.v4.new_output("stream", text="2\n")]
    problems = "\n".join(grading.release_leaks(solution, leaky))
    assert "contains a hidden test: 'assert os.getpid() not in pids.values()'" in problems
    assert "contains the marker 'BEGIN SOLUTION'" in problems
    assert "has stored outputs" in problems


# --------------------------------------------------------------------------
# Configuration, command line, small parts
# --------------------------------------------------------------------------


def test_nbgrader_config_sets_what_grading_relies_on():
    from nbgrader.preprocessors import ClearHiddenTests, Execute
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(grading.REPO_ROOT)).load_config()
    execute = Execute(config=config)
    assert execute.timeout >= 120
    assert "--InteractiveShell.xmode=Minimal" in execute.extra_arguments
    assert execute.kernel_name == "python3"
    assert ClearHiddenTests in config.GenerateFeedback.preprocessors
    assert config.CourseDirectory.source_directory == "solutions"
    assert config.CourseDirectory.release_directory == "lessons"
    db = config.CourseDirectory.db_url.removeprefix("sqlite:///")
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", db], cwd=grading.REPO_ROOT, check=False
    ).returncode
    assert ignored == 0, f"{db} is not ignored by git"


def test_the_command_line_with_no_lesson(tmp_path, capsys):
    (tmp_path / "solutions").mkdir()
    submissions = tmp_path / "in"
    (submissions / "ada").mkdir(parents=True)
    assert grading.main(["--root", str(tmp_path), "check-release"]) == 0
    assert grading.main(["--root", str(tmp_path), "verify-exercises"]) == 0
    assert grading.main(["--root", str(tmp_path), "grade", str(submissions)]) == 0
    assert (tmp_path / "grades.csv").read_text().startswith("student,lesson,score")
    assert grading.main(["--root", str(tmp_path), "grade", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown lesson"):
        grading.check_release(tmp_path, ["01_nothing"])


def test_default_jobs_counts_cpus_and_memory(monkeypatch):
    monkeypatch.setattr(grading.joblib, "cpu_count", lambda: 64)
    monkeypatch.setattr(grading, "_available_memory", lambda: 1000 * 2**30)
    assert grading.default_jobs() == 64
    monkeypatch.setattr(grading, "_available_memory", lambda: 5 * 2**30)
    assert grading.default_jobs() == 3
    monkeypatch.setattr(grading, "_available_memory", lambda: 0)
    assert grading.default_jobs() == 1
    with pytest.raises(ValueError, match="jobs == 0"):
        grading._check_jobs(0)


def test_a_renamed_notebook_is_graded_under_its_name(tmp_path):
    lesson = grading._Prepared(
        LESSON,
        FIXTURES / "course" / "solutions" / LESSON,
        FIXTURES / "course" / "lessons" / LESSON,
        [NOTEBOOK],
    )
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(lesson.release_dir / NOTEBOOK, folder / "00_fixture (1).ipynb")
    (folder / "timestamp.txt").write_text("not a date")
    outcome = grading.Outcome("ada", LESSON)
    assert grading._stage_submission(outcome, folder, lesson, tmp_path / "task")
    assert (tmp_path / "task" / "submitted" / "ada" / LESSON / NOTEBOOK).is_file()
    assert "graded 00_fixture (1).ipynb as 00_fixture.ipynb" in outcome.message
    assert "timestamp.txt is not a date" in outcome.message
    assert not outcome.flagged


def test_marked_processes_finds_a_detached_child_by_its_environment(assert_all_gone):
    env = {"PATH": "/usr/bin:/bin", grading.TASK_VAR: "test-marker"}
    proc = subprocess.Popen(["sleep", "60"], env=env, start_new_session=True)
    try:
        found = grading.marked_processes(grading.TASK_VAR, "test-marker")
        assert [p.pid for p in found] == [proc.pid]
        assert grading._stop_processes(found) == []
    finally:
        proc.kill()
        proc.wait()
    assert_all_gone([proc.pid])
