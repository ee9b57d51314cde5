"""Fixtures of the browser tests: JupyterLab started as `make lab` does, and Chromium.

Whatever a test's outcome, the fixtures stop everything they started, by PID.

The tests need Debian's Chromium (``apt-get install -y chromium``, which ``.ci/run``
does) and Playwright for Python (the ``test`` extra). Without them they are skipped
with a message that says how to enable them. ``COURSE_CHROMIUM`` names another
Chromium binary; ``COURSE_ARTIFACTS`` another folder for the screenshots.
"""

import json
import os

import pytest

from .lab_browser import (
    ARTIFACTS_WRITTEN,
    CHROMIUM,
    HOW_TO_ENABLE,
    LAB_OVERRIDES,
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
        pytest.skip(HOW_TO_ENABLE)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("Playwright for Python is missing: install the test extra (`make test`).")
    chromium = Browser(tmp_path / "chromium")
    try:
        chromium.start()
        yield chromium
    finally:
        survivors = chromium.stop()
        assert not survivors, f"could not stop Chromium's processes: {survivors}"


@pytest.fixture
def lab(tmp_path):
    """JupyterLab on a free 127.0.0.1 port with a token, on a copy of the course.

    Request it after ``browser``, so that a missing Chromium skips the test before
    JupyterLab starts. A test may call ``lab.stop()`` itself to check that nothing is
    left; the fixture stops it again (a no-op then) whatever happened.
    """
    root = tmp_path / "course"
    home = tmp_path / "home"
    settings = tmp_path / "lab-settings"
    for folder in (root, home / ".jupyter", settings):
        folder.mkdir(parents=True)
    copy_course(root)
    # JupyterLab's news pop-up, turned off by a settings override file.
    (settings / "overrides.json").write_text(json.dumps(LAB_OVERRIDES, indent=2))
    (home / ".jupyter" / "jupyter_server_config.json").write_text(
        json.dumps({"LabApp": {"app_settings_dir": str(settings)}}, indent=2)
    )
    server = Lab(root, home, token=os.urandom(12).hex())
    try:
        server.start()
        yield server
    finally:
        survivors = server.stop()
        assert not survivors, f"could not stop JupyterLab's processes: {survivors}"
