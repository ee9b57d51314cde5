"""What a graded notebook hands back: stderr notes, failures, feedback without hidden tests."""

import subprocess
import sys

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from course_lib.grading.handback import STDERR_NOTE, failure_messages, scrub_handback, stderr_notes


def _graded(source, outputs=()):
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": "test-x", "locked": True, "points": 1}
    cell.outputs = list(outputs)
    return cell


def test_stderr_notes_name_the_cell(tmp_path):
    cell = _graded("f()", [new_output("stream", name="stdout", text=f"{STDERR_NOTE}\nwarn\n")])
    nbformat.write(new_notebook(cells=[cell]), tmp_path / "a.ipynb")
    assert stderr_notes(tmp_path) == ["test-x printed warnings on stderr (they cost no points)"]


def test_failure_messages_say_why_each_cell_lost_points(tmp_path):
    failed = _graded(
        "f()", [new_output("error", ename="CheckFailed", evalue="too few", traceback=[])]
    )
    passed = _graded("g()")
    passed.metadata["nbgrader"]["grade_id"] = "test-y"
    nbformat.write(new_notebook(cells=[failed, passed]), tmp_path / "a.ipynb")
    cells = {"test-x": (0.0, 1.0), "test-y": (1.0, 1.0)}
    assert failure_messages(tmp_path, cells) == ["test-x: CheckFailed: too few"]


def test_the_side_that_runs_grading_tasks_never_imports_nbgrader():
    """A Slurm element and the instructor's process run workers; nbgrader runs in
    those. Importing it there too costs about 3 s of CPU per element."""
    code = (
        "import sys\n"
        "from course_lib.grading.autograde import grade_one\n"
        "from course_lib.grading.runner import Workspace\n"
        "import course_lib.grading._slurm_element, course_lib.grading.slurm\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('nbgrader', 'nbclient')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_scrub_handback_removes_hidden_lines_and_keeps_the_page(tmp_path):
    hidden = {
        "assert len(set(pids.values())) == len(client.ids)",
        "import random",  # what anyone writes: never a leak
        "_n = 7",
    }
    page = (
        '<div class="highlight"><pre><span></span><span class="kn">import</span> random\n'
        "<span>assert</span> len(set(pids.values())) == len(client.ids)\n"
        "print(&quot;assert len(set(pids.values())) == len(client.ids)&quot;)\n"
        "_n = 7\n</pre></div>\n"
    )
    (tmp_path / "lesson.html").write_text(page)
    found = scrub_handback(tmp_path, hidden)
    assert found == ["assert len(set(pids.values())) == len(client.ids)"]
    text = (tmp_path / "lesson.html").read_text()
    assert "pids.values" not in text
    assert text.count("a line of a hidden test was removed here") == 2
    assert "</pre></div>" in text and "random" in text and "_n = 7" in text
    assert scrub_handback(tmp_path, hidden) == []
