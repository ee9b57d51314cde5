"""`make lab` and `make instructor`: JupyterLab on loopback with a token, opened on
the student's working copy (instructors: lessons/), announced once it answers; the
working copy made once and never overwritten, also through `make release` and
`git pull`; student and instructor settings, the same for Binder; terminals that
find the course's commands."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import psutil
import pytest
from grading_helpers import FIXTURES, LESSON, NOTEBOOK

from course_lib.grading.notebooks import nbgrader_meta
from course_lib.lab import (
    INSTRUCTOR_LAB_PLUGINS,
    INSTRUCTOR_SERVER_EXTENSIONS,
    RELEASES_RECORD,
    STUDENT_SERVER_EXTENSIONS,
    free_port,
    lab_command,
    lab_config,
    prepare_working_copy,
    write_lab_config,
)

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ANSWER = "def squares_on_engines(view, values):\n    return view.map_sync(abs, values)  # mine"


def _get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as reply:
        return reply.status, reply.read().decode()


def test_lab_command_binds_loopback_and_opens_the_given_folder():
    command = lab_command("127.0.0.1", 9999, "abc")
    assert "--ServerApp.ip=127.0.0.1" in command
    assert "--IdentityProvider.token=abc" in command
    assert "--LabApp.default_url=/lab/tree/lessons" in command
    assert "--LabApp.default_url=/lab/tree/my_work" in lab_command(
        "127.0.0.1", 9999, "abc", default_path="my_work"
    )


def _lessons(tmp_path, text="release 1"):
    lessons = tmp_path / "lessons"
    for lesson in ("01_a", "02_b"):
        (lessons / lesson).mkdir(parents=True, exist_ok=True)
        (lessons / lesson / f"{lesson}.ipynb").write_text(json.dumps({"text": f"{lesson} {text}"}))
    return lessons


def test_working_copy_is_made_once_and_new_releases_go_beside_it(tmp_path):
    lessons, work = _lessons(tmp_path), tmp_path / "my_work"
    messages = prepare_working_copy(lessons, work)
    assert len(messages) == 2 and all("your copy is" in m for m in messages), messages
    mine = work / "01_a" / "01_a.ipynb"
    mine.write_text('{"text": "my answers"}')
    assert prepare_working_copy(lessons, work) == []  # nothing new: nothing said or written
    _lessons(tmp_path, "release 2")  # make release, or git pull, rewrote lessons/
    messages = prepare_working_copy(lessons, work)
    assert mine.read_text() == '{"text": "my answers"}'
    beside = sorted((work / "01_a").glob("01_a.release-*.ipynb"))
    assert len(beside) == 1 and "release 2" in beside[0].read_text()
    assert len(messages) == 2 and "released again" in messages[0], messages
    assert str(beside[0]) in messages[0] and "unchanged" in messages[0]
    # Untouched copies are not replaced either: a student may have read or run them.
    assert "release 1" in (work / "02_b" / "02_b.ipynb").read_text()
    assert prepare_working_copy(lessons, work) == []  # said once, copied once
    # A copy the student deleted comes back fresh from the release.
    mine.unlink()
    assert prepare_working_copy(lessons, work) == [f"01_a/01_a.ipynb: your copy is {mine}"]
    assert "release 2" in mine.read_text()
    assert json.loads((work / RELEASES_RECORD).read_text()).keys() == {
        "01_a/01_a.ipynb",
        "02_b/02_b.ipynb",
    }


def test_working_copy_refuses_bad_folders_naming_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="no-lessons"):
        prepare_working_copy(tmp_path / "no-lessons", tmp_path / "my_work")
    assert not (tmp_path / "my_work").exists()
    not_a_folder = tmp_path / "my_work"
    not_a_folder.write_text("a file of the user's")
    with pytest.raises(NotADirectoryError, match="my_work"):
        prepare_working_copy(_lessons(tmp_path), not_a_folder)
    assert not_a_folder.read_text() == "a file of the user's"


def _git(*args, cwd):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _make_release(course):
    result = subprocess.run(
        ["make", "--no-print-directory", "release", f"COURSE={course}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_answers_in_the_working_copy_survive_make_release_and_git_pull(tmp_path):
    """A student answers in my_work/ of a clone; the instructor changes the lesson and
    releases it; the student runs `make release` and `git pull`, then `make lab` again:
    the answers are intact, git sees nothing of them, the new release is beside them."""
    upstream, clone = tmp_path / "upstream", tmp_path / "clone"
    shutil.copytree(FIXTURES / "course" / "solutions", upstream / "solutions")
    shutil.copytree(FIXTURES / "course" / "lessons", upstream / "lessons")
    shutil.copy2(REPO / ".gitignore", upstream / ".gitignore")
    identity = ["-c", "user.name=Instructor", "-c", "user.email=instructor@127.0.0.1"]
    _git("init", "-q", "-b", "main", cwd=upstream)
    _git("add", "-A", cwd=upstream)
    _git(*identity, "commit", "-q", "-m", "course", cwd=upstream)
    _git("clone", "-q", str(upstream), str(clone), cwd=tmp_path)

    # The student's `make lab`: a working copy; they answer exercise 1 there.
    prepare_working_copy(clone / "lessons", clone / "my_work")
    mine = clone / "my_work" / LESSON / NOTEBOOK
    nb = nbformat.read(mine, as_version=4)
    exercise = next(c for c in nb.cells if nbgrader_meta(c).get("solution"))
    exercise.source = ANSWER
    nbformat.write(nb, mine)
    answered = mine.read_bytes()
    status = subprocess.run(
        ["git", "status", "--porcelain", "--ignored=no"], cwd=clone, capture_output=True, text=True
    )
    assert status.stdout == "", f"git sees the student's work: {status.stdout}"

    # The instructor changes the lesson, releases it and pushes (commits upstream).
    source = upstream / "solutions" / LESSON / NOTEBOOK
    lesson = nbformat.read(source, as_version=4)
    lesson.cells[2].source += "\n\nA sentence added in the second release."
    nbformat.write(lesson, source)
    _make_release(upstream)
    assert "second release" in (upstream / "lessons" / LESSON / NOTEBOOK).read_text()
    _git("add", "-A", cwd=upstream)
    _git(*identity, "commit", "-q", "-m", "second release", cwd=upstream)

    # The student: `make release` (by mistake, or to see the lessons), `git pull`, `make lab`.
    _make_release(clone)
    _git("pull", "-q", "--ff-only", cwd=clone)
    assert "second release" in (clone / "lessons" / LESSON / NOTEBOOK).read_text()
    messages = prepare_working_copy(clone / "lessons", clone / "my_work")

    assert mine.read_bytes() == answered, "the student's answers changed"
    beside = list(mine.parent.glob(f"{LESSON}.release-*.ipynb"))
    assert len(beside) == 1 and "second release" in beside[0].read_text(), beside
    assert any("released again" in m and str(beside[0]) in m for m in messages), messages
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True
    )
    assert status.stdout == "", f"after make release and git pull: {status.stdout}"


@pytest.mark.slow
def test_binder_gets_the_same_student_settings_as_make_lab(tmp_path):
    """install_student_settings (binder/postBuild) in a throw-away environment that sees
    this one's packages: nbgrader's instructor tools off and locked, the students' on,
    no news, the student server settings of make lab."""
    prefix = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", prefix], check=True)
    site_packages = next(Path(sys.prefix, "lib").glob("python3*/site-packages"))
    (next((prefix / "lib").glob("python3*")) / "site-packages" / "course.pth").write_text(
        f"import site; site.addsitedir({str(site_packages)!r})\n"
    )
    env = dict(os.environ, JUPYTERLAB_DIR=str(prefix / "share" / "jupyter" / "lab"))
    subprocess.run(
        [
            prefix / "bin" / "python",
            "-c",
            "from course_lib.lab import *; install_student_settings()",
        ],
        env=env,
        check=True,
        timeout=300,
    )
    etc = prefix / "etc" / "jupyter"
    page = json.loads((etc / "labconfig" / "page_config.json").read_text())
    assert page["disabledExtensions"] == dict.fromkeys(INSTRUCTOR_LAB_PLUGINS, True)
    assert page["lockedExtensions"] == dict.fromkeys(INSTRUCTOR_LAB_PLUGINS, True)
    for module in (*INSTRUCTOR_SERVER_EXTENSIONS, *STUDENT_SERVER_EXTENSIONS):
        enabled = json.loads((etc / "jupyter_server_config.d" / f"{module}.json").read_text())
        expected = module in STUDENT_SERVER_EXTENSIONS
        assert enabled["ServerApp"]["jpserver_extensions"] == {module: expected}
    server = json.loads((etc / "jupyter_server_config.d" / "course-lab.json").read_text())
    student = lab_config("student", BIN, prefix / "etc" / "course-lab" / "student" / "bashrc")
    assert server == student["jupyter_server_config.json"]
    overrides = json.loads(
        (Path(env["JUPYTERLAB_DIR"]) / "settings" / "overrides.json").read_text()
    )
    assert overrides == student["labconfig/default_setting_overrides.json"]
    lab = json.loads((etc / "jupyter_lab_config.json").read_text())
    assert lab["LabApp"]["default_url"] == "/lab/tree/lessons"  # Binder: the session is the copy


def test_students_get_no_instructor_tools_and_instructors_do(tmp_path):
    student = lab_config("student", BIN, tmp_path / "bashrc")
    instructor = lab_config("instructor", BIN, tmp_path / "bashrc")
    off = student["jupyter_server_config.json"]["ServerApp"]["jpserver_extensions"]
    assert off == dict.fromkeys(INSTRUCTOR_SERVER_EXTENSIONS, False)
    disabled = student["labconfig/page_config.json"]["disabledExtensions"]
    assert disabled == dict.fromkeys(INSTRUCTOR_LAB_PLUGINS, True)
    assert "jpserver_extensions" not in instructor["jupyter_server_config.json"]["ServerApp"]
    assert "labconfig/page_config.json" not in instructor
    for files in (student, instructor):  # no news pop-up for either
        overrides = files["labconfig/default_setting_overrides.json"]
        assert overrides["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"


def test_write_lab_config_rejects_an_unknown_role(tmp_path):
    with pytest.raises(ValueError, match="'teacher'"):
        write_lab_config(tmp_path, "teacher")
    assert not any(tmp_path.iterdir())


def test_terminal_shell_finds_the_course_commands_despite_a_reset_path(tmp_path):
    """The terminal's bash reads /etc/profile (which resets PATH, as a login shell
    would) and still finds this environment's python and ipcluster first."""
    folder = write_lab_config(tmp_path / "student", "student", BIN)
    settings = json.loads((folder / "jupyter_server_config.json").read_text())
    shell = settings["ServerApp"]["terminado_settings"]["shell_command"]
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "TERM": "dumb"}
    result = subprocess.run(
        [*shell, "-c", "command -v python; command -v ipcluster; ipcluster --version"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = result.stdout.split()
    assert lines[0] == str(BIN / "python"), result.stdout
    assert lines[1] == str(BIN / "ipcluster"), result.stdout
    import ipyparallel

    assert lines[2] == ipyparallel.__version__


def _start_lab(tmp_path, *extra):
    """`make lab` in a copy of the course (it makes the copy's my_work/)."""
    course = tmp_path / "course"
    for folder in ("course_lib", "lessons"):
        shutil.copytree(
            REPO / folder, course / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    port = free_port()
    env = dict(os.environ, COURSE_LAB_TOKEN="course-test-token", JUPYTER_RUNTIME_DIR=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "course_lib.lab", "--port", str(port), *extra],
        cwd=course,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    return port, proc


def _stop_lab(proc):
    family = [proc.pid] + [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
    os.kill(proc.pid, signal.SIGTERM)  # course_lib.lab passes it on to JupyterLab
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    proc.stdout.close()
    return family


@pytest.mark.slow
def test_make_lab_prints_its_url_once_the_server_answers(tmp_path, assert_all_gone):
    port, proc = _start_lab(tmp_path)
    lines = []
    try:
        deadline = time.monotonic() + 180
        while not any("Open the course" in line for line in lines):
            assert time.monotonic() < deadline, "no URL printed in 180 s:\n" + "".join(lines)
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "JupyterLab exited:\n" + "".join(lines)
            lines.append(line)
        base = f"http://127.0.0.1:{port}"
        assert f"{base}/lab/tree/my_work?token=course-test-token" in lines[-1]
        work = tmp_path / "course" / "my_work"
        assert any(f"Your work is saved in {work}" in line for line in lines), lines
        for lesson in filter(Path.is_dir, (REPO / "lessons").iterdir()):
            copy = work / lesson.name / f"{lesson.name}.ipynb"
            assert copy.read_bytes() == (lesson / copy.name).read_bytes()
        # The URL is printed only once the server answers: no retry here.
        status, body = _get(f"{base}/api/status?token=course-test-token")
        assert status == 200 and "started" in json.loads(body)
        with pytest.raises(urllib.error.HTTPError) as error:
            _get(f"{base}/api/contents/lessons")
        assert error.value.code == 403, "the server answered without its token"
        status, _ = _get(f"{base}/api/contents/lessons?token=course-test-token")
        assert status == 200
        # Students: no formgrader on the server either.
        with pytest.raises(urllib.error.HTTPError) as error:
            _get(f"{base}/formgrader/api/assignments?token=course-test-token")
        assert error.value.code == 404
    finally:
        family = _stop_lab(proc)
    assert_all_gone(family, timeout=30)
