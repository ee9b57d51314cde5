"""Fair grading steps, each on its own (the whole pipeline: test_grading_autograde.py)."""

from nbformat.v4 import new_code_cell, new_notebook, new_output

from course_lib.grading.handback import STDERR_NOTE
from course_lib.grading.integrity import StderrAsNote, configure_nbgrader


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
