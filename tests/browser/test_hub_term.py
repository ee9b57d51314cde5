"""A whole term on a real JupyterHub, in a real browser (course_lib.hub, nbgrader's exchange).

Two courses on one hub, as nbgrader documents them (groups ``nbgrader-<course>`` and
``formgrade-<course>``, one formgrader service per course run as its grader account):
course A has two students, course B one of them. The instructor releases two lessons of
A and one of B; each student logs in through the hub's login page, fetches a lesson from
the Assignment List, answers it (one right, one partly) and submits it; the instructor
collects, grades with the course's pipeline (sandboxed, from the hub's environment, where
course_lib is installed, not editable), and releases feedback; each student fetches their
own feedback and sees their score. Permissions are checked as the other student, not
assumed. Everything the hub started stops by PID; the users it made are deleted.

It needs root (Unix users), npm (configurable-http-proxy), Chromium and Playwright, and
skips naming what is missing.
"""

from __future__ import annotations

import csv
import json
import pwd
import re
import secrets
import shutil
import subprocess
import time
import urllib.error
from pathlib import Path

import nbformat
import pytest
import system_tools
from test_hub import hub_python, hub_skip_reason, processes_of, public_folder

from course_lib import _processes, hub
from course_lib.grading.notebooks import grade_id as grade_id_of

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "course"
LESSONS = ("00_fixture", "01_fixture")
#: The answers of the fixture lesson's exercises, from its solutions.
EXERCISES = ("ex-squares", "ex-pids", "quiz-engines")
pytestmark = pytest.mark.slow


def _two_lesson_course(folder):
    """The grading fixture's course with a second lesson, a copy of the first."""
    for part in ("solutions", "lessons"):
        shutil.copytree(FIXTURE / part / "00_fixture", folder / part / "00_fixture")
        second = folder / part / "01_fixture"
        shutil.copytree(FIXTURE / part / "00_fixture", second)
        (second / "00_fixture.ipynb").rename(second / "01_fixture.ipynb")
    return folder


@pytest.fixture
def term(browser):
    python = hub_python()
    reason = hub_skip_reason() or (None if python else "no Python every user can run")
    if reason:
        system_tools.unavailable("hub", reason)
    folder = public_folder("course-hub-term-")
    p = "t" + secrets.token_hex(2)
    source = _two_lesson_course(folder / "source")
    a = hub.Course(f"{p}a", [f"{p}ia"], [f"{p}s1", f"{p}s2"], source=source)
    b = hub.Course(f"{p}b", [f"{p}ib"], [f"{p}s1"], source=source)
    plan = hub.HubPlan(folder / "hub", [a, b], python=python, port=hub.free_ports(1)[0])
    made = []
    server = hub.Hub(plan)
    try:
        made = hub.prepare(plan, say=lambda *args: None)
        server.start()
        yield plan, server
    finally:
        survivors = server.stop()
        left = processes_of(plan.users)
        _processes.stop(left)
        print(server.tail(40))
        hub.remove_users(made)
        shutil.rmtree(folder, ignore_errors=True)
        assert not survivors and not left, f"left running: {survivors} {left}"
        assert not [name for name in made if _exists(name)]


def _exists(user):
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def as_user(plan, user, *command, cwd=None, check=True, timeout=900):
    """``command`` as the Unix user ``user``, with the hub's environment first on PATH."""
    home = pwd.getpwnam(user).pw_dir
    env = ["env", f"HOME={home}", f"PATH={plan.env / 'bin'}:/usr/bin:/bin", f"USER={user}"]
    result = subprocess.run(
        ["runuser", "-u", user, "--", *env, *map(str, command)],
        cwd=cwd or home,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{user}: {command} failed:\n{result.stdout}\n{result.stderr}")
    return result


def in_parallel(plan, *jobs):
    """Run ``(user, cwd, command...)`` jobs at once (nbgrader's start-up is slow)."""
    running = []
    for user, cwd, *command in jobs:
        home = pwd.getpwnam(user).pw_dir
        env = ["env", f"HOME={home}", f"PATH={plan.env / 'bin'}:/usr/bin:/bin"]
        running.append(
            (
                command,
                subprocess.Popen(
                    ["runuser", "-u", user, "--", *env, *map(str, command)],
                    cwd=cwd,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                ),
            )
        )
    for command, process in running:
        out, _ = process.communicate(timeout=900)
        assert process.returncode == 0, f"{command}:\n{out}"


# ----------------------------------------------------------------------------------------
# The student's side, in the browser.


def log_in(page, plan, user):
    page.context.clear_cookies()
    page.goto(f"{plan.url}/hub/login")
    page.locator("#username_input").fill(user)
    page.locator("#password_input").fill(plan.password)
    page.locator("#login_submit").click()
    page.locator("#jp-main-dock-panel").wait_for(timeout=300_000)
    page.get_by_role("menuitem", name="Nbgrader").wait_for(timeout=120_000)


def assignment_list(page, course):
    """Open nbgrader's Assignment List on ``course``; returns the courses it offers."""
    page.get_by_role("menuitem", name="Nbgrader").click()
    page.locator(".lm-Menu .lm-Menu-itemLabel", has_text="Assignment List").click()
    dropdown = page.locator("#course_list_dropdown")
    page.wait_for_function(
        "() => !document.querySelector('#course_list_dropdown').disabled", timeout=120_000
    )
    dropdown.click()
    offered = sorted(t.strip() for t in page.locator("#course_list li").all_inner_texts())
    page.locator("#course_list li", has_text=course).first.click()
    page.locator("#course_list_default", has_text=course).wait_for(timeout=60_000)
    return offered


def row(page, section, lesson):
    return page.locator(f"#{section} .list_item", has_text=lesson).first


def click_and_wait(page, section, lesson, button, then_section, timeout=300_000):
    row(page, section, lesson).get_by_role("button", name=button).click()
    row(page, then_section, lesson).wait_for(timeout=timeout)


def _xsrf(page):
    return next(c["value"] for c in page.context.cookies() if c["name"] == "_xsrf")


def contents(page, plan, user, path, body=None):
    """The server's Contents API in the student's session (what the editor's save does)."""
    url = f"{plan.url}/user/{user}/api/contents/{path}"
    headers = {"X-XSRFToken": _xsrf(page)}
    if body is None:
        reply = page.request.get(url + "?content=1", headers=headers)
    else:
        reply = page.request.put(url, data=json.dumps(body), headers=headers)
    assert reply.ok, f"{path}: {reply.status} {reply.text()[:300]}"
    return reply.json()


def answer(page, plan, user, course, lesson, cells):
    """Write the answers ``cells`` (``{grade_id: source}``) into the fetched lesson."""
    path = f"{course}/{lesson}/{lesson}.ipynb"
    model = contents(page, plan, user, path)
    notebook = model["content"]
    for cell in notebook["cells"]:
        grade_id = grade_id_of(cell)
        if grade_id in cells:
            cell["source"] = cells[grade_id]
    contents(page, plan, user, path, {"type": "notebook", "format": "json", "content": notebook})


def solution_cells(lesson):
    nb = nbformat.read(str(FIXTURE / "solutions" / "00_fixture" / "00_fixture.ipynb"), 4)
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells if _gid(c) in EXERCISES}


def _gid(cell):
    return grade_id_of(cell)


# ----------------------------------------------------------------------------------------


# A term is a dozen nbgrader runs and two gradings: minutes on 2 busy cores.
@pytest.mark.timeout(2400)
def test_a_whole_term_on_a_real_hub(browser, term):
    plan, server = term
    a, b = plan.courses
    s1, s2 = a.students
    page = browser.context.new_page()
    page.set_default_timeout(120_000)

    # The instructor releases two lessons of A and one of B (as the courses' graders).
    in_parallel(
        plan,
        *[(a.grader, a.folder, "nbgrader", "release_assignment", lesson) for lesson in LESSONS],
        (b.grader, b.folder, "nbgrader", "release_assignment", LESSONS[0]),
    )

    # Each student logs in, fetches lesson 00 of A from the Assignment List, answers it
    # (s1 right, s2 only the first exercise) and submits it.
    right = solution_cells(LESSONS[0])
    partly = {"ex-squares": right["ex-squares"]}
    for student, answers, courses in ((s1, right, [a, b]), (s2, partly, [a])):
        log_in(page, plan, student)
        offered = assignment_list(page, a.course_id)
        # Two courses on one hub: each student sees the courses of their groups only.
        assert offered == sorted(c.course_id for c in courses), (student, offered)
        for lesson in LESSONS:
            row(page, "released_assignments_list", lesson).wait_for()
        click_and_wait(
            page, "released_assignments_list", LESSONS[0], "Fetch", "fetched_assignments_list"
        )
        answer(page, plan, student, a.course_id, LESSONS[0], answers)
        click_and_wait(
            page, "fetched_assignments_list", LESSONS[0], "Submit", "submitted_assignments_list"
        )

    # The instructor collects and grades with the course's pipeline, sandboxed, from the
    # hub's environment (course_lib installed, not editable; the course folder's own
    # nbgrader_config.py is read).
    as_user(plan, a.grader, "nbgrader", "collect", LESSONS[0], cwd=a.folder)
    grading = as_user(
        plan,
        a.grader,
        "python",
        "-m",
        "course_lib.grading",
        "--root",
        a.folder,
        "grade",
        a.folder / "submitted",
        "--lessons",
        LESSONS[0],
        cwd=a.folder,
        check=False,
    )
    assert grading.returncode == 0, grading.stdout[-3000:] + grading.stderr[-3000:]
    with open(a.folder / "grades.csv", newline="") as handle:
        rows = {r["student"]: (r["score"], r["max_score"]) for r in csv.DictReader(handle)}
    assert rows == {s1: ("5", "5"), s2: ("2", "5")}, rows
    as_user(plan, a.grader, "nbgrader", "release_feedback", LESSONS[0], cwd=a.folder)

    # Permissions, checked as the other student: s2 cannot list the inbound submissions
    # or the feedback. That is what nbgrader's file exchange protects: a submission's
    # folder is readable by whoever knows its name (the grader's account collects it and
    # shares no group with the students), so its name ends in a random part, and the
    # feedback's name is a hash keyed by the submission's own secret, kept inside it.
    exchange = plan.exchange / a.course_id
    inbound = sorted((exchange / "inbound").iterdir())
    s1_submission = next(p for p in inbound if p.name.startswith(f"{s1}+"))
    feedback = sorted((exchange / "feedback").iterdir())
    assert len(feedback) == 2
    for path in (exchange / "inbound", exchange / "feedback"):
        assert as_user(plan, s2, "ls", path, check=False).returncode != 0, path
    random_part = s1_submission.name.rsplit("+", 1)[1]
    assert len(random_part) >= 10, s1_submission.name
    assert (s1_submission / "submission_secret.txt").is_file()

    # Each student fetches their own feedback and sees their score.
    for student, score in ((s1, "5"), (s2, "2")):
        log_in(page, plan, student)
        assignment_list(page, a.course_id)
        submitted = row(page, "submitted_assignments_list", LESSONS[0])
        submitted.get_by_role("button", name="Fetch Feedback").click()
        folder = f"{a.course_id}/{LESSONS[0]}/feedback"
        listing = _wait_listing(page, plan, student, folder)
        html = f"{folder}/{listing[0]}/{LESSONS[0]}.html"
        page.goto(f"{plan.url}/user/{student}/files/{html}")
        text = page.locator("body").inner_text()
        assert re.search(rf"Score:\s*{score}(\.0)?\s*/\s*5", text), text[:500]
    # Feedback files are named by a hash of the submitted notebook and its time: s2, who
    # can neither list them nor read s1's submission, cannot name s1's.

    # The formgrader of each course answers its instructor only.
    as_ia = hub.login(plan.url, a.instructors[0], plan.password)
    with as_ia.open(f"{plan.url}/services/{a.course_id}/formgrader", timeout=300) as reply:
        assert reply.status == 200
    with pytest.raises(urllib.error.HTTPError) as refused:
        as_ia.open(f"{plan.url}/services/{b.course_id}/formgrader", timeout=300)
    assert refused.value.code == 403


def _wait_listing(page, plan, user, folder, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        url = f"{plan.url}/user/{user}/api/contents/{folder}"
        reply = page.request.get(url, headers={"X-XSRFToken": _xsrf(page)})
        if reply.ok:
            names = sorted(item["name"] for item in reply.json()["content"])
            if names:
                return names
        time.sleep(2)
    raise AssertionError(f"no feedback in {folder}")
