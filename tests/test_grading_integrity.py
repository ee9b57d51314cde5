"""Fair grading steps, each on its own (the whole pipeline: test_grading_autograde.py)."""

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from course_lib.grading.integrity import (
    STDERR_NOTE,
    StderrAsNote,
    configure_nbgrader,
    scrub_handback,
    stderr_notes,
)


def _graded(source, outputs=()):
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": "test-x", "locked": True, "points": 1}
    cell.outputs = list(outputs)
    return cell


def test_stderr_of_a_graded_cell_becomes_a_note_and_an_error_still_fails():
    warned = _graded("f()", [new_output("stream", name="stderr", text="RuntimeWarning: empty\n")])
    failed = _graded(
        "assert False, 'no'",
        [new_output("error", ename="AssertionError", evalue="no", traceback=[])],
    )
    plain = new_code_cell("g()")
    plain.outputs = [new_output("stream", name="stderr", text="ordinary cell\n")]
    nb = new_notebook(cells=[warned, failed, plain])
    StderrAsNote()(nb, {})  # as nbgrader calls it (enabled by default)
    assert warned.outputs[0]["name"] == "stdout"
    assert warned.outputs[0]["text"] == f"{STDERR_NOTE}\nRuntimeWarning: empty\n"
    assert failed.outputs[0]["output_type"] == "error"
    assert plain.outputs[0]["name"] == "stderr"  # not graded: left to nbgrader


def test_stderr_notes_name_the_cell(tmp_path):
    cell = _graded("f()", [new_output("stream", name="stdout", text=f"{STDERR_NOTE}\nwarn\n")])
    nbformat.write(new_notebook(cells=[cell]), tmp_path / "a.ipynb")
    assert stderr_notes(tmp_path) == ["test-x printed warnings on stderr (they cost no points)"]


def test_configure_nbgrader_puts_two_kernels_in_executes_place_and_keeps_the_arguments():
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute
    from traitlets.config import Config

    from course_lib.grading.execute import TwoKernelExecute

    c = Config()
    c.Execute.extra_arguments = ["--InteractiveShell.xmode=Minimal"]
    configure_nbgrader(c)
    assert c.Execute.extra_arguments == ["--InteractiveShell.xmode=Minimal"]
    steps = c.Autograde.autograde_preprocessors
    assert Execute not in steps
    assert steps[steps.index(TwoKernelExecute) + 1] is StderrAsNote
    assert len(steps) == len(Autograde.class_traits()["autograde_preprocessors"].default()) + 1
    # Both kernels get the course's settings of Execute (timeout, arguments).
    assert TwoKernelExecute(config=c).extra_arguments == ["--InteractiveShell.xmode=Minimal"]


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
