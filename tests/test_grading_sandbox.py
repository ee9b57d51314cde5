"""The sandbox and the retries, graded for real on a busy host.

The sandbox fixture course (``tests/fixtures/sandbox_course``, no cluster:
fast) is graded once, two at a time. ``ada`` hands in two references;
``spy`` hands in a right answer and code that tries to read and write what
it must not (the checker's folder too), looks at the network interfaces and
leaves a process running. Everything it tried is printed in its autograded
notebook, which the tests read.
"""

import csv
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import nbformat
import pytest
from grading_helpers import FIXTURES

from course_lib import _processes, grading
from course_lib.grading.sandbox import sandbox_problem

COURSE = FIXTURES / "sandbox_course"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


@pytest.fixture(scope="module")
def class_graded(tmp_path_factory):
    """The sandbox class graded with JOBS=2; what the spy aimed at."""
    problem = sandbox_problem()
    if problem is not None:
        pytest.fail(f"the grading tests need the sandbox: {problem}")
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(COURSE, root, dirs_exist_ok=True)
    submissions = tmp_path_factory.mktemp("submissions")
    shutil.copytree(FIXTURES / "sandbox_submissions", submissions, dirs_exist_ok=True)
    home = tmp_path_factory.mktemp("grader_home")
    (home / "secret.txt").write_text("the grader's own file\n")
    token = uuid.uuid4().hex
    solution = next((grading.REPO_ROOT / "solutions").glob("*/*.ipynb"), None)
    targets = {
        "read": {
            "solutions": str(root / "solutions" / "00_probe" / "00_probe.ipynb"),
            "repo_solutions": str(solution or grading.REPO_ROOT / "solutions"),
            "course_gradebook": str(root / ".nbgrader" / "gradebook.db"),
            "task_gradebook": "../../../gradebook.db",
            # The checker's own folder: its channel spec and connection file.
            "checker_spec": "../../../rc/channel.json",
            "checker_connection": "../../../rc/kernel.json",
            "other_student": str(submissions / "ada" / "01_flaky_setup" / "01_flaky_setup.ipynb"),
            "grader_home": str(home / "secret.txt"),
        },
        "write": {
            "course_root": str(root / "planted.txt"),
            "other_student_write": str(submissions / "ada" / "01_flaky_setup" / "planted.txt"),
            "grader_home_write": str(home / "planted.txt"),
            "task_root": "../../../planted.txt",
            "checker_log": "../../../rc/sent.jsonl",
            "private_tmp": f"/tmp/course-probe-{token}",
            "scratch": "probe-scratch.txt",
        },
        "escapee": token,
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COURSE_TEST_PROBE", json.dumps(targets))
        patch.setenv("HOME", str(home))
        report = grading.grade(submissions, root, jobs=2, timeout=120, verbose=False)
    print(report.table())
    return root, report, targets, home


def _probe(root):
    nb = nbformat.read(root / "autograded" / "spy" / "00_probe" / "00_probe.ipynb", 4)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            for line in output.get("text", "").splitlines():
                if line.startswith("PROBE "):
                    return json.loads(line.removeprefix("PROBE "))
    raise AssertionError("the spy's probe printed nothing")


def test_a_right_answer_gets_full_marks(class_graded):
    root, report, _, _ = class_graded
    assert report.ok, report.problems
    spy = report.outcome("spy", "00_probe")
    assert (spy.status, spy.score, spy.max_score, spy.attempts) == ("graded", 1, 1, 1)
    assert "without a sandbox" not in report.table()


def test_the_sandbox_hides_the_course_the_task_and_the_grader(class_graded):
    root, report, targets, _ = class_graded
    found = _probe(root)
    for name in targets["read"]:
        assert found[name] in ("FileNotFoundError", "PermissionError"), (name, found)
    # Controls: those files exist, and the spy was graded like anyone else.
    for name in ("solutions", "course_gradebook", "other_student", "grader_home"):
        assert Path(targets["read"][name]).is_file(), name


def test_the_sandbox_writes_only_to_its_scratch_copy(class_graded):
    root, report, targets, home = class_graded
    found = _probe(root)
    outside = (
        "course_root",
        "other_student_write",
        "grader_home_write",
        "task_root",
        "checker_log",
    )
    for name in outside:
        assert found[name] != "written", (name, found)
    assert not (root / "planted.txt").exists()
    assert not (home / "planted.txt").exists()
    assert not Path(targets["write"]["other_student_write"]).exists()
    # Inside, /tmp and the notebook's folder are writable, and neither is the host's.
    assert found["private_tmp"] == found["scratch"] == "written"
    assert not Path(targets["write"]["private_tmp"]).exists()
    assert not (root / "autograded" / "spy" / "00_probe" / "probe-scratch.txt").exists()


def test_the_only_network_interface_is_loopback(class_graded):
    root, _, _, _ = class_graded
    assert _probe(root)["interfaces"] == ["lo"]


def test_a_process_left_running_is_gone_after_grading(class_graded):
    root, report, targets, _ = class_graded
    spy = report.outcome("spy", "00_probe")
    assert any("sleep" in text for text in spy.leftovers), spy.leftovers
    assert "process(es) left after grading were killed" in spy.message
    assert _processes.find_marked("COURSE_TEST_ESCAPEE", targets["escapee"]) == []
    assert _processes.find_marked(grading.RUN_VAR, report.run_id) == []


def test_a_setup_cell_failing_once_is_retried_and_graded(class_graded):
    _, report, _, _ = class_graded
    flaky = report.outcome("ada", "01_flaky_setup")
    assert (flaky.status, flaky.score, flaky.max_score) == ("graded", 1, 1)
    assert flaky.attempts == 2
    assert flaky.notes == []


def test_a_setup_cell_always_failing_is_an_error_without_score(class_graded):
    root, report, _, _ = class_graded
    broken = report.outcome("ada", "02_broken_setup")
    assert broken.status == "error"
    assert broken.attempts == 3
    assert "the locked setup cell setup failed (TimeoutError: Hub connection" in broken.message
    with open(root / "grades.csv", newline="") as handle:
        rows = {(r["student"], r["lesson"]): r for r in csv.DictReader(handle)}
    row = rows["ada", "02_broken_setup"]
    assert (row["status"], row["score"], row["attempts"]) == ("error", "", "3")
    assert "not by the student" in row["message"]
    assert rows["ada", "01_flaky_setup"]["score"] == "1"


def test_without_bwrap_grading_refuses_and_says_how_to_install(tmp_path):
    shutil.copytree(COURSE, tmp_path / "course")
    bin_dir = tmp_path / "bin"  # the interpreter alone: no bwrap on this PATH
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    env = {**os.environ, "PATH": str(bin_dir)}
    command = [sys.executable, "-m", "course_lib.grading", "--root", str(tmp_path / "course")]
    submissions = str(FIXTURES / "sandbox_submissions")
    for args in (["grade", submissions], ["verify-exercises"], ["check-sandbox"]):
        result = subprocess.run(
            [*command, *args], env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert result.returncode != 0, args
        text = result.stdout + result.stderr
        assert "bubblewrap (`bwrap`) is not on PATH" in text, text
        assert "apt-get install bubblewrap" in text and "SANDBOX=off" in text
    assert not (tmp_path / "course" / "grades.csv").exists()


def test_a_python_kept_under_tmp_is_seen_inside_the_sandbox(tmp_path):
    """The private /tmp must not hide a venv (or a clone of the course) under /tmp."""
    venv = tmp_path / "venv"  # pytest's tmp_path is under /tmp here: check it
    assert str(venv).startswith("/tmp/"), venv
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = [p for p in sys.path if p.endswith("site-packages")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(grading.REPO_ROOT), *site]))
    probe = "from course_lib.grading.sandbox import sandbox_problem; print(sandbox_problem())"
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "None", result.stdout + result.stderr
