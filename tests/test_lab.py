"""`make lab` serves JupyterLab on loopback with a token, opened on lessons/."""

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from course_lib.lab import free_port, lab_command

REPO = Path(__file__).resolve().parent.parent


def _get(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as reply:
        return reply.status, reply.read().decode()


def test_lab_command_binds_loopback_and_opens_lessons():
    command = lab_command("127.0.0.1", 9999, "abc")
    assert "--ServerApp.ip=127.0.0.1" in command
    assert "--IdentityProvider.token=abc" in command
    assert "--LabApp.default_url=/lab/tree/lessons" in command


def test_make_lab_answers_http(tmp_path, assert_all_gone):
    port = free_port()
    env = dict(os.environ, COURSE_LAB_TOKEN="course-test-token", JUPYTER_RUNTIME_DIR=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "course_lib.lab", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        first_line = ""
        while not first_line.strip():
            first_line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/lab/tree/lessons?token=course-test-token" in first_line
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body = _get(f"{base}/api/status?token=course-test-token")
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, "JupyterLab exited early"
                assert time.monotonic() < deadline, "JupyterLab did not answer in 60 s"
                time.sleep(0.3)
        assert status == 200
        try:
            _get(f"{base}/api/contents/lessons")
            raise AssertionError("the server answered without its token")
        except urllib.error.HTTPError as error:
            assert error.code == 403
        status, _ = _get(f"{base}/api/contents/lessons?token=course-test-token")
        assert status == 200
    finally:
        family = [proc.pid] + [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stdout.close()
    assert_all_gone(family)
