"""Fair and tamper-evident grading steps, each on its own (the whole pipeline: test_tamper.py)."""

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from course_lib.grading.checks import SubmittedNotebook
from course_lib.grading.integrity import (
    STDERR_NOTE,
    StderrAsNote,
    arm_guard,
    check_tampering,
    configure_nbgrader,
    scrub_handback,
    stderr_notes,
)
from course_lib.guard import guard_files


def _graded(source, outputs=()):
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": "test-x", "locked": True, "points": 1}
    cell.outputs = list(outputs)
    return cell


def test_check_tampering_flags_and_withholds_with_the_reasons():
    answer = new_code_cell("from course_lib import quiz\nquiz.check = print")
    answer.metadata["nbgrader"] = {"grade_id": "ex-a", "solution": True}
    sub = SubmittedNotebook(new_notebook(cells=[answer]), new_notebook(), new_notebook())
    check_tampering(sub)
    assert sub.flagged
    assert sub.notes == sub.withheld == ["cell ex-a replaces course_lib.quiz.check"]


def test_check_tampering_leaves_a_fair_submission_alone():
    sub = SubmittedNotebook(
        new_notebook(cells=[new_code_cell("x = 1")]), new_notebook(), new_notebook()
    )
    check_tampering(sub)
    assert not sub.flagged and sub.notes == [] and sub.withheld == []


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


def test_configure_nbgrader_loads_the_guard_and_keeps_the_course_arguments():
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute
    from traitlets.config import Config

    c = Config()
    c.Execute.extra_arguments = ["--InteractiveShell.xmode=Minimal"]
    configure_nbgrader(c)
    assert c.Execute.extra_arguments == [
        "--InteractiveShell.xmode=Minimal",
        "--InteractiveShellApp.extensions=course_lib.guard",
    ]
    steps = c.Autograde.autograde_preprocessors
    assert steps[steps.index(Execute) + 1] is StderrAsNote
    assert len(steps) == len(Autograde.class_traits()["autograde_preprocessors"].default()) + 1


def test_arm_guard_leaves_a_fresh_private_secret(tmp_path):
    record, secret_file = guard_files(tmp_path / "rt")
    first = arm_guard(tmp_path / "rt")
    with open(record, "w") as file:
        file.write("old\n")
    second = arm_guard(tmp_path / "rt")
    assert first != second and open(secret_file).read() == second
    assert (tmp_path / "rt" / "course-guard.secret").stat().st_mode & 0o077 == 0
    assert not (tmp_path / "rt" / "course-guard.jsonl").exists()  # each attempt starts clean


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
