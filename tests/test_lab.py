"""`make lab` and `make instructor`: JupyterLab on loopback with a token, opened on
lessons/, announced once it answers; student and instructor settings; terminals that
find the course's commands."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from course_lib.lab import (
    INSTRUCTOR_LAB_PLUGINS,
    INSTRUCTOR_SERVER_EXTENSIONS,
    free_port,
    lab_command,
    lab_config,
    write_lab_config,
)

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as reply:
        return reply.status, reply.read().decode()


def test_lab_command_binds_loopback_and_opens_lessons():
    command = lab_command("127.0.0.1", 9999, "abc")
    assert "--ServerApp.ip=127.0.0.1" in command
    assert "--IdentityProvider.token=abc" in command
    assert "--LabApp.default_url=/lab/tree/lessons" in command


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
    port = free_port()
    env = dict(os.environ, COURSE_LAB_TOKEN="course-test-token", JUPYTER_RUNTIME_DIR=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "course_lib.lab", "--port", str(port), *extra],
        cwd=REPO,
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
        assert f"{base}/lab/tree/lessons?token=course-test-token" in lines[-1]
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
