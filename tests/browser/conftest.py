"""Fixtures of the browser tests: JupyterLab started as `make lab` does, and Chromium.

Whatever a test's outcome, the fixtures stop everything they started, by PID.

The tests need Debian's Chromium (``apt-get install -y chromium``, which ``.ci/run``
does) and Playwright for Python (the ``test`` extra). Without them they are skipped
with a message that says how to enable them, or fail where the browser is required
(``COURSE_REQUIRE_BROWSER=1`` or ``COURSE_REQUIRE_ALL=1``: CI; tests/system_tools.py).
``COURSE_CHROMIUM`` names another Chromium binary; ``COURSE_ARTIFACTS`` another folder
for the screenshots.
"""

import json
import os

import pytest
from system_tools import unavailable

from .lab_browser import (
    ARTIFACTS_WRITTEN,
    CHROMIUM,
    TERMINAL_USER_SETTINGS,
    Browser,
    Lab,
    copy_course,
)


def pytest_terminal_summary(terminalreporter):
    if ARTIFACTS_WRITTEN:
        terminalreporter.section("browser test artifacts")
        for path in ARTIFACTS_WRITTEN:
            terminalreporter.write_line(str(path))


@pytest.fixture
def browser(tmp_path):
    """Debian's Chromium through Playwright, in a fresh profile; skipped if missing."""
    if not CHROMIUM.exists():
        unavailable("browser", f"no Chromium at {CHROMIUM}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable("browser", "Playwright for Python is not installed")
    chromium = Browser(tmp_path / "chromium")
    try:
        chromium.start()
        yield chromium
    finally:
        survivors = chromium.stop()
        assert not survivors, f"could not stop Chromium's processes: {survivors}"


def _lab(tmp_path, instructor):
    root = tmp_path / "course"
    home = tmp_path / "home"
    terminal_settings = home / ".jupyter" / "lab" / "user-settings" / "@jupyterlab"
    terminal_settings = terminal_settings / "terminal-extension"
    for folder in (root, terminal_settings):
        folder.mkdir(parents=True)
    copy_course(root)
    # Nothing else is configured here: the news pop-up and nbgrader's tools are what
    # `make lab` / `make instructor` set up themselves.
    (terminal_settings / "plugin.jupyterlab-settings").write_text(
        json.dumps(TERMINAL_USER_SETTINGS, indent=2)
    )
    server = Lab(root, home, token=os.urandom(12).hex(), instructor=instructor)
    try:
        server.start()
        yield server
    finally:
        survivors = server.stop()
        assert not survivors, f"could not stop JupyterLab's processes: {survivors}"


@pytest.fixture
def lab(tmp_path):
    """JupyterLab as `make lab` starts it (a student's), on a free 127.0.0.1 port with a
    token, on a copy of the course.

    Request it after ``browser``, so that a missing Chromium skips the test before
    JupyterLab starts. A test may call ``lab.stop()`` itself to check that nothing is
    left; the fixture stops it again (a no-op then) whatever happened.
    """
    yield from _lab(tmp_path, instructor=False)


@pytest.fixture
def instructor_lab(tmp_path):
    """JupyterLab as `make instructor` starts it, with nbgrader's formgrader; as ``lab``."""
    yield from _lab(tmp_path, instructor=True)
