"""The formgrader's page of a flagged submission says why, in a real browser.

``meddler`` of the practice class (``tests/fixtures/submissions``) edits and deletes
test cells; graded for real, its notebook is flagged and the reason written as the
answer cells' nbgrader comment. The instructor's formgrader (``make instructor``'s
JupyterLab, the page opened on its own as nbgrader advises under a hub) shows that
comment beside the cell: the grading text box's placeholder.
"""

import os
import re
import shutil

import pytest
from grading_helpers import FIXTURES, LESSON, copy_course

from course_lib import grading
from course_lib.grading.autograde import quiet_gradebook

from .lab_browser import REPO, Lab, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

CONFIG = """from pathlib import Path

from course_lib.grading.config import configure_course

c = get_config()  # noqa: F821
configure_course(c, Path(__file__).resolve().parent)
"""


def test_the_formgrader_page_of_a_flagged_submission_says_why(browser, tmp_path):
    from nbgrader.api import Gradebook

    root, home = tmp_path / "course", tmp_path / "home"
    home.mkdir()
    copy_course(root)
    (root / "nbgrader_config.py").write_text(CONFIG)
    submissions = tmp_path / "submissions"
    shutil.copytree(FIXTURES / "submissions" / "meddler", submissions / "meddler")
    report = grading.grade(submissions, root, jobs=1, timeout=60, verbose=False)
    assert report.ok, report.problems
    with quiet_gradebook(), Gradebook(f"sqlite:///{root / '.nbgrader' / 'gradebook.db'}") as gb:
        notebook = gb.find_submission_notebook(LESSON, LESSON, "meddler")
        assert notebook.flagged
        submission_id = notebook.id

    # `make instructor` serves the course its course_lib is in (course_lib.lab).
    pyc = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "course_lib", root / "course_lib", ignore=pyc)
    lab = Lab(root, home, token=os.urandom(12).hex(), instructor=True)
    lab.start()
    page = browser.context.new_page()
    try:
        # The token logs in at the formgrader's start page (a cookie for the whole
        # server: given on a deeper page, it is a cookie for that page alone, and the
        # page's own API calls are sent to the login page).
        page.goto(lab.url("/formgrader"))
        page.goto(f"{lab.base}/formgrader/submissions/{submission_id}/")
        boxes = page.locator("textarea.comment")
        boxes.first.wait_for(timeout=120_000)
        # The page's script fetches the comments, then sets each box's placeholder.
        page.wait_for_function(
            "() => [...document.querySelectorAll('textarea.comment')]"
            ".some(box => box.getAttribute('placeholder'))",
            timeout=60_000,
        )
        placeholders = [boxes.nth(i).get_attribute("placeholder") for i in range(boxes.count())]
        said = [text for text in placeholders if text and text.startswith("Flagged")]
        assert said, placeholders
        assert re.search(r"edited locked cell\(s\) test-squares", said[0]), said[0]
        screenshot(page, "formgrader_flagged.png")
    except BaseException:
        screenshot(page, "formgrader_flagged_FAILED.png")
        raise
    finally:
        page.close()
        survivors = lab.stop()
        assert not survivors, f"could not stop JupyterLab's processes: {survivors}"
