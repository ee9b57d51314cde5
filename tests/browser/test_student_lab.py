"""What a student does in `make lab`'s JupyterLab, in a real browser.

- No instructor tools: the Nbgrader menu has no Formgrader, the right sidebar no
  Create Assignment, and JupyterLab asks nothing about news.
- A terminal (File > New > Terminal) finds the course's commands: typing
  ``ipcluster --version`` and ``which python`` shows this environment's.

A lesson opening unmodified, and its setup cell run twice keeping one cluster, are
checked in lesson 1's session of test_lab_in_browser.py.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import ipyparallel
import pytest

from .lab_browser import screenshot as _screenshot

pytestmark = pytest.mark.slow


def _open_lab(page, lab, path="/lab"):
    page.goto(lab.url(path))
    page.locator("#jp-main-dock-panel").wait_for(timeout=120_000)
    page.get_by_role("menuitem", name="Nbgrader").wait_for(timeout=120_000)


def _sidebar_titles(page):
    return [
        (tab.get_attribute("title") or tab.text_content() or "").strip()
        for tab in page.locator(".jp-SideBar .lm-TabBar-tab").all()
    ]


def _terminal_screen(page):
    rows = page.locator(".jp-Terminal .xterm-accessibility-tree").first
    return rows.text_content() or ""


def test_student_lab_has_no_instructor_tools_and_terminals_find_the_course(browser, lab):
    page = browser.context.new_page()
    try:
        _open_lab(page, lab)
        page.get_by_role("menuitem", name="Nbgrader").click()
        items = page.locator(".lm-Menu .lm-Menu-itemLabel")
        items.first.wait_for(timeout=30_000)
        labels = [label.strip() for label in items.all_text_contents() if label.strip()]
        assert "Assignment List" in labels, labels
        assert not [label for label in labels if "Formgrader" in label], labels
        page.keyboard.press("Escape")
        page.locator(".lm-Menu").first.wait_for(state="hidden", timeout=30_000)
        assert not [t for t in _sidebar_titles(page) if "Create Assignment" in t]
        assert page.get_by_text("official Jupyter news").count() == 0
        news = lab.api("/lab/api/settings/@jupyterlab/apputils-extension:notification")
        assert news["schema"]["properties"]["fetchNews"]["default"] == "false"

        # A terminal, from the launcher, as a student would.
        card = page.locator(".jp-LauncherCard", has_text="Terminal").locator("visible=true")
        if card.count() == 0:
            page.keyboard.press("Control+Shift+l")  # File > New Launcher
        card.first.click()
        terminal = page.locator(".jp-Terminal").first
        terminal.wait_for(timeout=60_000)
        deadline = time.monotonic() + 60
        while "#" not in _terminal_screen(page) and "$" not in _terminal_screen(page):
            assert time.monotonic() < deadline, "no prompt in the terminal in 60 s"
            time.sleep(0.3)
        terminal.click()
        page.keyboard.type("ipcluster --version; which python\n")
        python = str(Path(sys.executable).parent / "python")
        deadline = time.monotonic() + 60
        while python not in _terminal_screen(page):
            assert time.monotonic() < deadline, f"the terminal shows: {_terminal_screen(page)!r}"
            time.sleep(0.3)
        screen = _terminal_screen(page)
        assert ipyparallel.__version__ in screen, screen
        assert "command not found" not in screen, screen
        _screenshot(page, "student_terminal.png")
    except BaseException:
        _screenshot(page, "student_terminal_FAILED.png")
        raise
