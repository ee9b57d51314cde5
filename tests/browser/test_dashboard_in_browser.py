"""The live cluster view in a real browser: drawn, and redrawn while the engines work.

A student's notebook in `make lab`'s JupyterLab starts a 2-engine cluster, calls
``watch(client)`` and sends 40 short tasks without waiting for them, so that the
kernel is idle while the view's thread updates it. In the page, the widget's panes
are checked as a person would see them: screenshots of the memory chart and of the
timeline hold the colours of both engines (not a blank pane), the timeline gains
finished tasks while we watch, and after ``stop()`` the last picture stays.
"""

from __future__ import annotations

import io
import re

import nbformat
import pytest

from .lab_browser import notebook_cells, run_cell, screenshot

pytestmark = pytest.mark.slow

NOTEBOOK = "my_work/live_view.ipynb"
CELLS = [
    "from course_lib.cluster import local_cluster\n"
    "from course_lib.dashboard import watch\n\n"
    "cluster = local_cluster(2)\n"
    "client = cluster.start()",
    "import time\n\n"
    "live = watch(client)\n"
    "tasks = client.load_balanced_view().map_async(time.sleep, [0.4] * 40)",
    "tasks.get()\nlive.stop()\ncluster.stop()",
]
#: The engines' colours in both charts (course_lib._dashboard_svg.COLOURS, as RGB).
ENGINE_COLOURS = [(0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)]
#: Milliseconds to wait for what a busy 2-core machine may be slow to show.
PATIENCE_MS = 180_000


def _coloured_pixels(png, colour, tolerance=12):
    """How many pixels of a screenshot show ``colour``, drawn opaque or, as the
    timeline draws some bars, at 80% or 55% opacity over white."""
    from PIL import Image

    shades = [tuple(a * c + (1 - a) * 255 for c in colour) for a in (1.0, 0.8, 0.55)]
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return sum(
        count
        for count, pixel in image.getcolors(maxcolors=image.width * image.height)
        if any(
            all(abs(p - s) <= tolerance for p, s in zip(pixel, shade, strict=True))
            for shade in shades
        )
    )


def _done_tasks(page):
    return page.locator("svg.course-dashboard-timeline rect.task.done").count()


def test_the_live_view_shows_both_panes_and_updates_while_work_runs(browser, lab):
    path = lab.root / NOTEBOOK
    path.parent.mkdir(exist_ok=True)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in CELLS])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nbformat.write(nb, path)
    page = browser.context.new_page()
    try:
        page.goto(lab.url(f"/lab/tree/{NOTEBOOK}"))
        page.get_by_text(re.compile(r"Python 3 \(ipykernel\) \| Idle")).first.wait_for(
            timeout=PATIENCE_MS
        )
        cells = notebook_cells(page)
        run_cell(page, cells.nth(0))
        run_cell(page, cells.nth(1))  # returns at once: the tasks run, the kernel is idle
        view = page.locator(".course-dashboard").first
        view.wait_for(timeout=PATIENCE_MS)
        timeline = page.locator("svg.course-dashboard-timeline").first
        memory = page.locator("svg.course-dashboard-memory").first
        # Redrawn while the work runs: finished tasks appear, one update after another.
        page.wait_for_function(
            "() => document.querySelectorAll("
            "'svg.course-dashboard-timeline rect.task.done').length >= 4",
            timeout=PATIENCE_MS,
        )
        seen = _done_tasks(page)
        page.wait_for_function(
            "n => document.querySelectorAll("
            "'svg.course-dashboard-timeline rect.task.done').length > n",
            arg=seen,
            timeout=PATIENCE_MS,
        )
        # The memory pane draws a line per engine once the engines said where they run.
        page.wait_for_function(
            "() => document.querySelectorAll('svg.course-dashboard-memory polyline').length >= 4",
            timeout=PATIENCE_MS,
        )
        view.scroll_into_view_if_needed()
        screenshot(view, "live_view_running.png")
        for name, pane in (("memory", memory), ("timeline", timeline)):
            png = pane.screenshot()
            for engine, colour in enumerate(ENGINE_COLOURS):
                assert _coloured_pixels(png, colour) >= 50, (
                    f"the {name} pane shows nothing of engine {engine}'s colour {colour}"
                )
        assert "live" in page.locator(".course-dashboard .course-dashboard-pane").first.inner_text()

        run_cell(page, cells.nth(2))
        status = page.locator(".course-dashboard .course-dashboard-pane").first
        page.wait_for_function(
            "el => el.textContent.includes('stopped after')",
            arg=status.element_handle(),
            timeout=PATIENCE_MS,
        )
        assert _done_tasks(page) == 40
        assert "40 tasks (0 running)" in status.inner_text()
        screenshot(view, "live_view_stopped.png")
    except BaseException:
        screenshot(page, "live_view_FAILED.png")
        raise
