"""A student and an instructor in a real browser: lesson 1 and the formgrader.

JupyterLab is started as `make lab` starts it (see conftest.py) on a copy of the course;
Chromium, driven by Playwright, does what a person would: open lesson 1, run its first
code cells (the setup cell starts the lesson's 2-engine cluster), type a cell of its own
that uses the cluster, and, as the instructor (`make instructor`), open the formgrader.
"""

from __future__ import annotations

import json
import re
import time

import nbformat
import pytest

from course_lib._processes import alive

from .lab_browser import STOP_GRACE, notebook_cells, run_cell
from .lab_browser import screenshot as _screenshot

pytestmark = pytest.mark.slow

LESSON_1 = "lessons/01_parallel_primer/01_parallel_primer.ipynb"
#: Teaching cells run after the setup cell (besides those before it).
CELLS_AFTER_SETUP = 3
#: Seconds one cell may take (the setup cell starts a cluster on a busy machine).
CELL_TIMEOUT_S = 180
#: What a student types into a new cell: engines answer through the cluster.
STUDENT_CELL = "len(client.ids), client[:].apply_sync(lambda: 6 * 7)"
STUDENT_OUTPUT = "(2, [42, 42])"


def _is_graded(cell):
    """nbgrader's exercise and test cells (answers left blank in the release)."""
    meta = cell.metadata.get("nbgrader", {})
    return bool(meta.get("solution") or meta.get("grade"))


def cells_to_run(nb):
    """Indices of the code cells to run: those up to the cell that starts the
    cluster, and the next few teaching cells."""
    code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    setup = next(
        (
            i
            for i in code
            if "local_cluster(" in nb.cells[i].source and ".start(" in nb.cells[i].source
        ),
        None,
    )
    assert setup is not None, f"{LESSON_1}: no code cell starts a cluster with local_cluster()"
    teaching = [i for i in code if not _is_graded(nb.cells[i])]
    before = [i for i in teaching if i <= setup]
    after = [i for i in teaching if i > setup][:CELLS_AFTER_SETUP]
    return setup, before + after


def _normalize(text):
    return re.sub(r"\s+", " ", text).strip()


def _output_texts(output):
    """The texts a saved output shows in the page (stream text, plain text)."""
    if output.output_type == "stream":
        return [output.text]
    if output.output_type in ("execute_result", "display_data"):
        data = output.get("data", {})
        if "text/html" in data or "image/png" in data:
            return []  # shown as HTML or a picture: compared by presence only
        return [data["text/plain"]] if "text/plain" in data else []
    return []


def _wait_for_kernel_idle(page, timeout_s):
    page.get_by_text(re.compile(r"Python 3 \(ipykernel\) \| Idle")).first.wait_for(
        timeout=timeout_s * 1000
    )


def test_lesson1_runs_in_the_browser(browser, lab):
    notebook_file = lab.root / LESSON_1
    assert notebook_file.exists(), f"{LESSON_1} is missing: lesson 1 is not released yet"
    nb = nbformat.read(notebook_file, as_version=4)
    setup, to_run = cells_to_run(nb)

    page = browser.context.new_page()
    started = time.monotonic()
    try:
        page.goto(lab.url(f"/lab/tree/{LESSON_1}"))
        cells = notebook_cells(page)
        page.wait_for_function(
            f"() => document.querySelectorAll("
            f"'.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell').length"
            f" === {len(nb.cells)}",
            timeout=120_000,
        )
        _wait_for_kernel_idle(page, 120)
        # No news pop-up: the settings override took effect.
        assert page.get_by_text("official Jupyter news").count() == 0

        for index in to_run:
            run_cell(page, cells.nth(index), CELL_TIMEOUT_S)
            if index == setup:
                # The cluster's processes are the kernel's children: note them
                # while they run, to check below that they are stopped.
                family = lab.remember_family()
        assert len(family) >= 5, (
            "expected the server, a kernel, a controller and 2 engines, "
            f"found {[' '.join(p.cmdline()[:3]) for p in family]}"
        )

        # A student's own cell, below the last one run: the engines answer.
        last = cells.nth(to_run[-1])
        last.locator(".jp-InputPrompt").first.click()
        page.keyboard.press("Escape")
        page.keyboard.press("b")
        new_cell = cells.nth(to_run[-1] + 1)
        new_cell.locator(".cm-content").click()
        page.keyboard.type(STUDENT_CELL)
        page.keyboard.press("Control+Enter")
        new_cell.locator(".jp-OutputArea").get_by_text(STUDENT_OUTPUT).wait_for(
            timeout=CELL_TIMEOUT_S * 1000
        )

        # What the page shows is what the kernel sent: save, read the file back.
        page.keyboard.press("Control+s")
        page.get_by_text(re.compile("Saving completed|Saved")).first.wait_for(timeout=30_000)
        saved = nbformat.from_dict(lab.api(f"/api/contents/{LESSON_1}")["content"])
        assert saved.cells[to_run[-1] + 1].source == STUDENT_CELL
        shown = 0
        for index in to_run:
            cell = saved.cells[index]
            assert cell.execution_count, f"cell {index} did not run"
            errors = [o for o in cell.outputs if o.output_type == "error"]
            assert not errors, f"cell {index} failed: {errors[0].ename}: {errors[0].evalue}"
            shown_cell = cells.nth(index)
            shown_cell.evaluate("el => el.scrollIntoView({block: 'center'})")
            in_page = _normalize(shown_cell.locator(".jp-OutputArea").text_content())
            for output in cell.outputs:
                for text in _output_texts(output):
                    assert _normalize(text) in in_page, f"cell {index}: {text!r} not shown"
                    shown += 1
            images = sum("image/png" in o.get("data", {}) for o in cell.outputs)
            assert shown_cell.locator(".jp-OutputArea img").count() >= images
            shown += images
        assert shown >= 2, "the cells run showed almost nothing"
        assert saved.cells[setup].outputs, "the setup cell showed nothing"

        new_cell.evaluate("el => el.scrollIntoView({block: 'end'})")
        _screenshot(page, "lesson01_engines_answer.png")
        cells.nth(setup).evaluate("el => el.scrollIntoView({block: 'start'})")
        _screenshot(page, "lesson01_in_jupyterlab.png")
        print(f"lesson 1 in the browser: {time.monotonic() - started:.1f} s")
    except BaseException:
        _screenshot(page, "lesson01_in_jupyterlab_FAILED.png")
        raise

    # Stopping JupyterLab stops the kernel, and the kernel its cluster.
    cluster_pids = {p.pid for p in family}
    assert not lab.stop()
    still = [pid for pid in cluster_pids if alive(pid)]
    assert not still, f"still running after JupyterLab stopped: {still}"
    if lab.killed:
        print(f"needed SIGKILL after {STOP_GRACE} s: {[p.pid for p in lab.killed]}")


def _assignments(root):
    names = set()
    for folder in ("solutions", "lessons"):
        if (root / folder).is_dir():
            names |= {p.name for p in (root / folder).iterdir() if p.is_dir()}
    return sorted(names)


def test_formgrader_lists_the_lessons(browser, instructor_lab):
    lab = instructor_lab
    lessons = _assignments(lab.root)
    assert lessons, "no lesson in solutions/ or lessons/"
    page = browser.context.new_page()
    try:
        page.goto(lab.url("/lab"))
        _wait_for_lab(page)
        # The instructor opens it from JupyterLab's menu: Nbgrader > Formgrader.
        page.get_by_role("menuitem", name="Nbgrader").click()
        page.get_by_role("menuitem", name=re.compile(r"^Formgrader")).first.click()
        frame = page.frame_locator("iframe[src*='formgrader']").first
        frame.get_by_text("Manage Assignments").first.wait_for(timeout=120_000)
        table = frame.locator("table")
        deadline = time.monotonic() + 120
        while table.get_by_text(lessons[0], exact=True).count() == 0:
            # nbgrader creates the gradebook with the `alembic` command, found on PATH:
            # `make lab` must put the environment's bin folder there (course_lib.lab).
            assert "No such file or directory: 'alembic'" not in lab.log(), (
                "the formgrader could not create its gradebook: `alembic` not on PATH"
            )
            assert time.monotonic() < deadline, "the formgrader listed no lesson in 120 s"
            time.sleep(1)
        for name in lessons:
            table.get_by_text(name, exact=True).first.wait_for(timeout=30_000)
        _screenshot(page, "formgrader.png")
    except BaseException:
        _screenshot(page, "formgrader_FAILED.png")
        raise
    # The same list, from formgrader's own API.
    listed = {a["name"] for a in lab.api("/formgrader/api/assignments")}
    assert set(lessons) <= listed, json.dumps(sorted(listed))


def _wait_for_lab(page):
    page.locator("#jp-main-dock-panel").wait_for(timeout=120_000)
    page.get_by_role("menuitem", name="Nbgrader").wait_for(timeout=120_000)
