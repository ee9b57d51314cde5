"""A student and an instructor in a real browser: lessons run to the end, and the formgrader.

JupyterLab is started as `make lab` starts it (see conftest.py) on a copy of the course;
Chromium, driven by Playwright, does what a person would, in the student's working copy
(``my_work/``, made from the untouched release when the lab starts):

- lesson 1: it opens unmodified, Run All (the menu Run > Run All Cells) reaches its last
  cell, the exercises and checks left blank fail with one line each and nothing else
  does; then the setup cell run twice keeps one cluster, a quiz and an exercise answered
  by typing get one-line verdicts, and a cell of the student's own uses the engines;
- lessons 4 and 7, in one lab: Run All reaches the last cell of each;
- after the lab stops, no process of any cluster the lessons started is left;
- as the instructor (`make instructor`), the formgrader lists the lessons.

What the page shows is checked against the notebook saved and read back through
JupyterLab's contents API.
"""

from __future__ import annotations

import json
import re
import sys
import time

import nbformat
import pytest

from course_lib._processes import alive
from course_lib.grading import _notebook_format
from course_lib.grading.notebooks import grade_id, nbgrader_meta, output_text

from .lab_browser import (
    STOP_GRACE,
    cluster_processes,
    open_notebook,
    replace_cell_source,
    run_all_cells,
    run_cell,
    save_notebook,
)
from .lab_browser import screenshot as _screenshot

pytestmark = pytest.mark.slow

LESSON_1 = "01_parallel_primer"
#: Lessons run with Run All in one lab, after lesson 1's own.
RUN_ALL_LESSONS = ("04_model_selection", "07_scaling_out")
#: Where `make lab` puts a student's copy of the lessons (course_lib.lab.WORK_DIR).
WORK_DIR = "my_work"
#: Seconds one cell may take (the setup cell starts a cluster on a busy machine).
CELL_TIMEOUT_S = 180
#: Seconds a whole lesson may take with Run All (lesson 7 starts four clusters).
RUN_ALL_TIMEOUT_S = 900
#: What a student answers in lesson 1: a quiz and an exercise (answers of solutions/).
ANSWERED = {"quiz-parallel": "test-quiz-parallel", "ex-engine-rss": "test-engine-rss"}
#: What a student types into a new cell: engines answer through the cluster.
STUDENT_CELL = "len(client.ids), client[:].apply_sync(lambda: 6 * 7)"
STUDENT_OUTPUT = "(2, [42, 42])"
#: What a quiz cell left as released prints (course_lib.quiz.check).
QUIZ_UNANSWERED = "Replace ... with your answer"


def _notebook(lesson):
    return f"{WORK_DIR}/{lesson}/{lesson}.ipynb"


def _role(cell):
    """``"teaching"``, ``"test"`` (an nbgrader test cell), ``"quiz"`` (a quiz's
    answer cell) or ``"exercise"`` (an answer cell that raises until answered)."""
    meta = nbgrader_meta(cell)
    if meta.get("grade") and not meta.get("solution"):
        return "test"
    if meta.get("solution"):
        return "exercise" if "NotImplementedError" in cell.source else "quiz"
    return "teaching"


def _errors(cell):
    return [o for o in cell.outputs if o.output_type == "error"]


def _read_saved(lab, path):
    return nbformat.from_dict(lab.api(f"/api/contents/{path}")["content"])


def assert_ran_to_the_end(saved, lesson):
    """What Run All of an untouched release leaves in the saved notebook: every code
    cell ran, teaching cells without errors, blank exercises and their checks failed
    (their tag ``raises-exception`` let Run All go on), each check with one line."""
    code = [(i, c) for i, c in enumerate(saved.cells) if c.cell_type == "code"]
    assert code[-1][1].execution_count, f"{lesson}: the last cell did not run"
    not_run = [i for i, c in code if not c.execution_count]
    assert not not_run, f"{lesson}: code cells {not_run} did not run"
    for index, cell in code:
        role, errors = _role(cell), _errors(cell)
        where = f"{lesson}, cell {index} ({role}, {grade_id(cell)})"
        if role == "teaching":
            assert not errors, f"{where} failed: {errors[0].ename}: {errors[0].evalue}"
        elif role == "quiz":
            shown = "".join(output_text(o) for o in cell.outputs)
            assert not errors and QUIZ_UNANSWERED in shown, f"{where} showed {shown!r}"
        else:
            assert errors, f"{where} left blank, but it did not fail"
            assert "raises-exception" in cell.metadata.get("tags", []), where
        if role == "test" and errors[0].ename == "CheckFailed":
            lines = "\n".join(errors[0].traceback).splitlines()
            assert len(lines) == 1 and lines[0].startswith("\u2718"), f"{where}: {lines}"


def _note_clusters(lab, seen):
    """Add the PIDs of the clusters running now to ``seen`` (controllers, engines)."""
    controllers, engines = cluster_processes(lab)
    seen[0].update(controllers)
    seen[1].update(engines)


def assert_clusters_gone_after_the_lab_stops(lab, seen):
    """Stop JupyterLab: it stops the kernels, and they stop their clusters."""
    assert len(seen[0]) >= 1 and len(seen[1]) >= 2, f"no cluster was seen running: {seen}"
    assert not lab.stop()
    still = [pid for pid in seen[0] | seen[1] if alive(pid)]
    assert not still, f"still running after JupyterLab stopped: {still}"
    if lab.killed:
        print(f"needed SIGKILL after {STOP_GRACE} s: {[p.pid for p in lab.killed]}")


# ----------------------------------------------------------------------------------------
# What the page shows.


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


def assert_page_shows_the_saved_outputs(cells, saved, indices):
    shown = 0
    for index in indices:
        shown_cell = cells.nth(index)
        shown_cell.evaluate("el => el.scrollIntoView({block: 'center'})")
        in_page = _normalize(shown_cell.locator(".jp-OutputArea").text_content())
        for output in saved.cells[index].outputs:
            for text in _output_texts(output):
                assert _normalize(text) in in_page, f"cell {index}: {text!r} not shown"
                shown += 1
        images = sum("image/png" in o.get("data", {}) for o in saved.cells[index].outputs)
        assert shown_cell.locator(".jp-OutputArea img").count() >= images, f"cell {index}"
        shown += images
    assert shown >= 10, "the cells run showed almost nothing"


def shown_outputs(cell):
    """Each output of a cell as the page shows it: ``(mime type, text)``; error
    outputs are drawn as ``application/vnd.jupyter.stderr``."""
    cell.evaluate("el => el.scrollIntoView({block: 'center'})")
    return [
        tuple(item)
        for item in cell.evaluate(
            "el => Array.from(el.querySelectorAll('.jp-OutputArea-child'), c => {"
            " const r = c.querySelector('[data-mime-type]');"
            " return [r ? r.getAttribute('data-mime-type') : '', (r || c).innerText.trim()]; })"
        )
    ]


def verdict(cell):
    """The one line a check cell shows, and whether it was printed (stdout) or
    raised (stderr); fails if the cell shows more, or a traceback."""
    outputs = shown_outputs(cell)
    assert len(outputs) == 1, f"a check showed {len(outputs)} outputs: {outputs}"
    mime, text = outputs[0]
    assert "\n" not in text and "Traceback" not in text, f"not one line: {text!r}"
    coloured = cell.locator('.jp-OutputArea [class*="ansi-"]').count()
    assert coloured == 0, f"{coloured} ANSI-coloured parts, as in a traceback: {text!r}"
    return mime.rsplit(".", 1)[-1], text


def _answer(solutions_nb, gid):
    """The solution's source of cell ``gid``, without nbgrader's region markers."""
    (cell,) = [c for c in solutions_nb.cells if grade_id(c) == gid]
    lines = cell.source.splitlines()
    return "\n".join(
        line
        for line in lines
        if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line
    )


# ----------------------------------------------------------------------------------------


@pytest.mark.timeout(1200)
def test_lesson1_runs_to_the_end_and_answers_get_one_line_verdicts(browser, lab):
    path = _notebook(LESSON_1)
    notebook_file = lab.root / path
    assert notebook_file.exists(), f"{path} is missing: `make lab` made no working copy"
    # The release stores the Python version it was made with: under another Python the
    # kernel's version differs, the one change opening may make (course_lib.grading.
    # _notebook_format). Under the release's Python this rewrites nothing.
    released = json.loads(notebook_file.read_text())["metadata"]["language_info"]["version"]
    if sys.version.split()[0] != released:
        _notebook_format.normalise_file(notebook_file)
    nb = nbformat.read(notebook_file, as_version=4)
    solutions = nbformat.read(lab.root / "solutions" / LESSON_1 / f"{LESSON_1}.ipynb", 4)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    by_id = {grade_id(nb.cells[i]): i for i in code if grade_id(nb.cells[i])}
    setup = next(i for i in code if "local_cluster(" in nb.cells[i].source)
    dview = next(i for i in code if nb.cells[i].source.startswith("dview = client[:]"))
    teaching = [i for i in code if _role(nb.cells[i]) == "teaching"]
    seen = (set(), set())

    page = browser.context.new_page()
    started = time.monotonic()
    try:
        cells = open_notebook(page, lab, path, len(nb.cells))
        time.sleep(2)  # the kernel's info has reached the notebook's metadata
        tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=LESSON_1).first
        assert "jp-mod-dirty" not in (tab.get_attribute("class") or ""), (
            "the lesson shows as modified (●) as soon as it opens"
        )
        assert page.get_by_text("official Jupyter news").count() == 0

        run_all_cells(page, RUN_ALL_TIMEOUT_S, on_poll=lambda: _note_clusters(lab, seen))
        save_notebook(page, LESSON_1)
        saved = _read_saved(lab, path)
        assert_ran_to_the_end(saved, LESSON_1)
        assert_page_shows_the_saved_outputs(cells, saved, teaching)
        assert saved.cells[setup].outputs, "the setup cell showed nothing"
        print(f"lesson 1, Run All in the browser: {time.monotonic() - started:.1f} s")

        # Run All again, or the setup cell again: one cluster, never two.
        run_cell(page, cells.nth(setup), CELL_TIMEOUT_S)
        first = cluster_processes(lab)
        assert len(first[0]) == 1 and len(first[1]) == 2, first
        run_cell(page, cells.nth(setup), CELL_TIMEOUT_S)
        time.sleep(5)  # a cluster stopped by the second run is gone by now
        _note_clusters(lab, seen)
        controllers, engines = cluster_processes(lab)
        running = {pid for pid in controllers | engines if alive(pid)}
        assert len(controllers & running) == 1 and len(engines & running) == 2, (
            f"after running the setup cell twice: controllers {sorted(controllers)}, "
            f"engines {sorted(engines)} (first run: {first})"
        )
        run_cell(page, cells.nth(dview), CELL_TIMEOUT_S)

        # A quiz and an exercise answered, their checks run: one line each, passed.
        typed = {}
        for answer_id, test_id in ANSWERED.items():
            typed[by_id[answer_id]] = _answer(solutions, answer_id)
            replace_cell_source(page, cells.nth(by_id[answer_id]), typed[by_id[answer_id]])
            run_cell(page, cells.nth(by_id[answer_id]), CELL_TIMEOUT_S)
            answered = shown_outputs(cells.nth(by_id[answer_id]))
            assert not [o for o in answered if o[0].endswith("stderr")], answered
            run_cell(page, cells.nth(by_id[test_id]), CELL_TIMEOUT_S)
            stream, line = verdict(cells.nth(by_id[test_id]))
            assert stream == "stdout" and re.fullmatch(r"\u2714 .+: passed", line), line
        assert shown_outputs(cells.nth(by_id["quiz-parallel"]))[0][1].startswith("Correct!")
        # The checks left unanswered: one line each, saying what to do, no traceback.
        left = [
            i
            for i in code
            if _role(nb.cells[i]) == "test" and grade_id(nb.cells[i]) not in ANSWERED.values()
        ]
        assert len(left) >= 2, left
        for index in left:
            stream, line = verdict(cells.nth(index))
            assert stream == "stderr" and line.startswith("\u2718 "), (index, line)
            if grade_id(nb.cells[index]).startswith("test-quiz"):
                assert "replace ... with your answer" in line, line
        _screenshot(cells.nth(by_id[ANSWERED["quiz-parallel"]]), "lesson01_quiz_verdict.png")

        # A student's own cell, below the last one: the engines answer.
        last = cells.nth(code[-1])
        last.locator(".jp-InputPrompt").first.click()
        page.keyboard.press("Escape")
        page.keyboard.press("b")
        new_cell = cells.nth(code[-1] + 1)
        new_cell.locator(".cm-content").click()
        page.keyboard.type(STUDENT_CELL)
        page.keyboard.press("Control+Enter")
        new_cell.locator(".jp-OutputArea").get_by_text(STUDENT_OUTPUT).wait_for(
            timeout=CELL_TIMEOUT_S * 1000
        )
        new_cell.evaluate("el => el.scrollIntoView({block: 'end'})")
        _screenshot(page, "lesson01_engines_answer.png")

        # What was typed is what was saved, with the verdicts the page showed.
        save_notebook(page, LESSON_1)
        saved = _read_saved(lab, path)
        assert saved.cells[code[-1] + 1].source == STUDENT_CELL
        for index, source in typed.items():
            assert saved.cells[index].source == source, f"cell {index} saved otherwise"
        for test_id in ANSWERED.values():
            outputs = saved.cells[by_id[test_id]].outputs
            assert [o.output_type for o in outputs] == ["stream"], outputs
        cells.nth(setup).evaluate("el => el.scrollIntoView({block: 'start'})")
        _screenshot(page, "lesson01_in_jupyterlab.png")
        print(f"lesson 1 in the browser: {time.monotonic() - started:.1f} s")
    except BaseException:
        _screenshot(page, "lesson01_in_jupyterlab_FAILED.png")
        raise
    assert_clusters_gone_after_the_lab_stops(lab, seen)


def _print_last_run_cells(page, lab, path, lesson, count=2):
    """Save the notebook shown and print the outputs of its last ``count`` cells that
    ran, as saved (a diagnosis of a Run All that stopped)."""
    try:
        save_notebook(page, lesson)
        code = [c for c in _read_saved(lab, path).cells if c.cell_type == "code"]
    except Exception as error:  # the diagnosis must not hide the failure
        print(f"could not save {path}: {error}")
        return
    ran = [i for i, c in enumerate(code) if c.execution_count is not None]
    for index in ran[-count:]:
        print(f"code cell {index} ({code[index].get('id')}), as saved: {code[index].outputs}")


@pytest.mark.timeout(2 * RUN_ALL_TIMEOUT_S + 300)
def test_lessons_4_and_7_run_to_the_end_with_run_all(browser, lab, subtests):
    seen = (set(), set())
    for lesson in RUN_ALL_LESSONS:
        with subtests.test(lesson=lesson):
            path = _notebook(lesson)
            nb = nbformat.read(lab.root / path, as_version=4)
            page = browser.context.new_page()
            started = time.monotonic()
            try:
                open_notebook(page, lab, path, len(nb.cells))
                run_all_cells(page, RUN_ALL_TIMEOUT_S, on_poll=lambda: _note_clusters(lab, seen))
                save_notebook(page, lesson)
                assert_ran_to_the_end(_read_saved(lab, path), lesson)
                _screenshot(page, f"{lesson}_run_all.png")
                print(f"{lesson}, Run All in the browser: {time.monotonic() - started:.1f} s")
            except BaseException:
                _screenshot(page, f"{lesson}_run_all_FAILED.png")
                print("the lab's log, last lines:", *lab.log().splitlines()[-40:], sep="\n")
                _print_last_run_cells(page, lab, path, lesson)
                raise
            finally:
                page.close()
    assert_clusters_gone_after_the_lab_stops(lab, seen)


# ----------------------------------------------------------------------------------------
# The instructor.


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
