"""`make hub`: the course on a real multi-user JupyterHub on 127.0.0.1 (course_lib.hub).

The slow test runs `make hub` as an instructor would, logs in through the hub's login
form as a student and as the instructor, and checks what each gets: the student's server
runs as the student's Unix user with the Assignment List and no formgrader; the course's
formgrader service answers the instructor and refuses the student. Ctrl-C (SIGINT) stops
everything it started; `make hub-clean` deletes the users it made. It needs root (it
makes Unix users) and npm (configurable-http-proxy), and skips naming what is missing.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
from pathlib import Path

import psutil
import pytest
import system_tools

from course_lib import _processes, hub

REPO = Path(__file__).resolve().parent.parent


def _fake_python(folder, version):
    script = folder / "python3"
    script.write_text(f"#!/bin/sh\necho {version}\n")
    script.chmod(0o755)
    return script


def test_what_the_machine_lacks_is_named_before_anything_is_made():
    folder = public_folder("course-hub-check-")
    try:
        private = folder / "private"
        private.mkdir(mode=0o700)
        private.chmod(0o700)
        public = folder / "public"
        public.mkdir(mode=0o755)
        course = hub.Course("dmsa", ["ann"], ["bo"])
        plan = hub.HubPlan(folder / "hub", [course], python=str(_fake_python(private, "3.12.1")))
        problems = hub.missing(plan)
        assert any(f"{private} is not open to them" in p for p in problems), problems
        old = hub.HubPlan(folder / "hub", [course], python=str(_fake_python(public, "3.10.4")))
        assert any("is 3.10.4; the course needs 3.11" in p for p in hub.missing(old))
        if os.geteuid() != 0:
            assert any("run it as root" in p for p in problems)
        with pytest.raises(RuntimeError, match="cannot make the hub"):
            hub.prepare(plan)
        assert not (folder / "hub").exists()  # nothing made
    finally:
        shutil.rmtree(folder)


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda: hub.Course("Bad Course", ["ann"], ["bo"]), "'Bad Course' is not a valid"),
        (lambda: hub.Course("dmsa", ["ann"], ["bo;rm"]), "'bo;rm' is not a valid"),
        (lambda: hub.HubPlan("/opt/x", []), "at least one course"),
        (
            lambda: hub.HubPlan("/opt/x", [hub.Course("a", [], []), hub.Course("a", [], [])]),
            "not unique",
        ),
    ],
)
def test_bad_names_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        bad()


def test_the_configuration_templates_have_a_settings_block():
    for name in ("jupyterhub_config.py", "nbgrader_config.py"):
        text = (REPO / "hub" / name).read_text()
        assert text.count(hub.BEGIN) == text.count(hub.END) == 1, name
        compile(hub.render(text, {"X": 1}), name, "exec")


def hub_skip_reason():
    """Why a real hub cannot run here (None when it can)."""
    if os.geteuid() != 0:
        return "a real hub makes Unix users: needs root"
    if shutil.which("npm") is None:
        return "a real hub needs npm (configurable-http-proxy)"
    if shutil.which("useradd") is None:
        return "a real hub needs useradd"
    return None


def hub_python():
    """An interpreter every user can run, as new as the course needs, or None."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3", "/usr/bin/python3.12"):
        if Path(candidate).exists():
            plan = hub.HubPlan("/tmp/x", [hub.Course("x", [], [])], python=candidate)
            if not [p for p in hub.missing(plan) if "Python" in p]:
                return candidate
    return None


def public_folder(prefix):
    """A folder under /tmp that every user can enter (pytest's own is private)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    folder.chmod(0o755)
    return folder


def _uids(names):
    uids = set()
    for name in names:
        try:
            uids.add(pwd.getpwnam(name).pw_uid)
        except KeyError:
            pass
    return uids


def processes_of(names):
    uids = _uids(names)
    found = []
    for process in psutil.process_iter(["uids", "status"]):
        try:
            if process.info["uids"].real in uids and process.info["status"] != "zombie":
                found.append(process)
        except (psutil.Error, AttributeError):
            pass
    return found


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"{what}: not within {timeout} s")


def _get(opener, url, timeout=120):
    with opener.open(url, timeout=timeout) as reply:
        return reply.status, reply.geturl(), reply.read().decode("utf-8", "replace")


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_make_hub_serves_the_course_to_a_student_and_an_instructor():
    python = hub_python()
    reason = hub_skip_reason() or (None if python else "no Python every user can run")
    if reason:
        system_tools.unavailable("hub", reason)
    folder = public_folder("course-hub-")
    prefix = "t" + secrets.token_hex(2)
    student, instructor = f"{prefix}student1", f"{prefix}instructor"
    users = [student, f"{prefix}student2", instructor, "grader-dmsa"]
    port = hub.free_ports(1)[0]
    already = _uids(["grader-dmsa"])
    args = [f"HUB_DIR={folder}", f"HUB_PYTHON={python}", f"HUB_PORT={port}", f"HUB_PREFIX={prefix}"]
    log = open(folder.parent / f"{folder.name}.log", "w+")
    make = psutil.Popen(["make", "hub", *args], cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    hub_pid = None
    try:
        wait_for(
            lambda: "JupyterHub 6.1.1" in Path(log.name).read_text() or make.poll() is not None,
            900,
            "make hub serving",
        )
        assert make.poll() is None, Path(log.name).read_text()[-3000:]
        hub_pid = int((folder / "state" / "jupyterhub.pid").read_text())
        url = f"http://127.0.0.1:{port}"

        # A student logs in through the login form; their server runs as them.
        with pytest.raises(PermissionError):
            hub.login(url, student, "wrong-password")
        as_student = hub.login(url, student, "course-try-out")
        status, where, _ = _get(as_student, f"{url}/hub/spawn")
        assert status == 200
        # Its first page completes the hub's OAuth (API paths answer 403 until then).
        wait_for(lambda: _answers(as_student, f"{url}/user/{student}/lab"), 300, "server")
        servers = [
            p for p in processes_of([student]) if "jupyterhub-singleuser" in " ".join(p.cmdline())
        ]
        assert servers, "the student's server does not run as the student"
        assert Path(servers[0].exe()).resolve().is_relative_to(Path(python).resolve().parent)
        # The Assignment List is there, the formgrader is not.
        status, _, body = _get(as_student, f"{url}/user/{student}/assignments?course_id=dmsa")
        assert json.loads(body)["success"] is True
        for path in (f"/user/{student}/formgrader", "/services/dmsa/formgrader"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                _get(as_student, url + path)
            assert refused.value.code in (403, 404), path

        # The instructor opens the course's formgrader in its own tab.
        as_instructor = hub.login(url, instructor, "course-try-out")
        status, where, body = _get(as_instructor, f"{url}/services/dmsa/formgrader", 300)
        assert status == 200 and "/services/dmsa/formgrader" in where
        assert "Manage Assignments" in body or "formgrader" in body.lower()

        # The exchange and the course folder, as nbgrader wants them.
        assert stat.S_IMODE((folder / "exchange").stat().st_mode) == 0o777
        course = Path(pwd.getpwnam("grader-dmsa").pw_dir) / "dmsa"
        assert (course / "lessons" / "01_parallel_primer").is_dir()
        assert "course_id = 'dmsa'" in (course / "nbgrader_config.py").read_text()
    finally:
        # Ctrl-C, as an instructor stops it: the hub and all it started stop.
        children = [p for p in make.children() if p.is_running()]
        for child in children:
            child.send_signal(signal.SIGINT)
        try:
            make.wait(120)
        except psutil.TimeoutExpired:
            _processes.stop([make, *children])
        left = processes_of(users)
        hub_alive = hub_pid is not None and psutil.pid_exists(hub_pid)
        _processes.stop(left + ([hub_pid] if hub_alive else []))
        made = (
            json.loads((folder / "users.json").read_text())
            if (folder / "users.json").exists()
            else []
        )
        hub_log = folder / "jupyterhub.log"
        if hub_log.exists():
            print("\n".join(hub_log.read_text(errors="replace").splitlines()[-60:]))
        subprocess.run(["make", "hub-clean", f"HUB_DIR={folder}"], cwd=REPO, check=False)
        print("\n".join(Path(log.name).read_text(errors="replace").splitlines()[-40:]))
        log.close()
        os.unlink(log.name)
    assert not left, f"still running after Ctrl-C: {[_processes.describe(p) for p in left]}"
    assert not hub_alive, "the hub outlived Ctrl-C"
    assert not folder.exists()
    if not already:
        assert "grader-dmsa" in made
    assert not _uids(made), f"users left: {made}"


def _answers(opener, url):
    """Whether the user's own server answers ``url`` (not the hub's spawn-pending page)."""
    try:
        status, where, _ = _get(opener, url, 30)
    except (urllib.error.URLError, OSError):
        return False
    return status == 200 and "/hub/" not in where


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-x", "-q"]))
