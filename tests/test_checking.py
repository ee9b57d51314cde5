"""course_lib.checking: the test cells' handle, in the student's own notebook.

When graded, the same handle talks to the student's kernel through the channel
(tests/test_grading_channel.py); here it serves requests in this process, as in
a student's notebook, and must give the same verdicts.
"""

import numpy as np
import pytest
from jupyter_client.manager import start_new_kernel

import __main__
from course_lib.checking import CheckFailed, StudentError, check, check_quiz, serve, student


@pytest.fixture
def names():
    """Names put in ``__main__``, the namespace the handle reads outside IPython."""
    added = set()

    def put(**values):
        for name, value in values.items():
            setattr(__main__, name, value)
            added.add(name)

    yield put
    for name in added:
        delattr(__main__, name)


def test_value_call_and_references(names):
    def scale(values, k=1):
        return [v * k for v in values]

    names(balanced=(1, 2, 3), scale=scale, arr=np.arange(3))
    assert student.value("balanced") == (1, 2, 3)
    assert student.call("scale", student.ref("balanced"), k=2) == [2, 4, 6]
    assert student.value("arr.shape") == (3,)
    assert student.exists("balanced") and not student.exists("nowhere")
    assert student.type_of("arr") == "numpy.ndarray"
    kept = student.keep("scale", [1, 2])
    assert student.call(kept.attr("__len__")) == 2
    assert student.call(student.probe("affine_with_pid", a=3, b=1), 2)[0] == 7
    assert student.call(student.lib("math.hypot"), 3, 4) == 5.0


@pytest.mark.parametrize(
    "request_, kind, words",
    [
        (lambda: student.value("nowhere"), "missing", "nowhere is not defined"),
        (lambda: student.value("thing"), "notdata", "_Thing is not data"),
        (lambda: student.call("broken"), "raised", "broken(...) raised ZeroDivisionError"),
        (lambda: student.value("thing.missing"), "raised", "AttributeError"),
    ],
    ids=["missing", "notdata", "raised", "attribute"],
)
def test_what_the_student_side_cannot_answer_fails_with_one_line(names, request_, kind, words):
    class _Thing:
        pass

    def broken():
        return 1 / 0

    names(thing=_Thing(), broken=broken)
    with pytest.raises(StudentError) as caught:
        request_()
    assert caught.value.kind == kind and words in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_request_carries_names_and_data_never_code(names):
    names(value=5)
    reply = serve('{"op": "call", "target": {"$": "@ref", "path": "value.__add__"}, "args": [1]}')
    assert '"ok"' in reply and "6" in reply
    for malformed in ("not json", '{"op": "value"}', '{"op": "exec", "target": {}}'):
        assert "channel" in serve(malformed)


@pytest.mark.parametrize("bad", ["", "a b", "1x", "a..b", 3])
def test_paths_are_checked_at_the_door(bad):
    with pytest.raises(ValueError, match="path"):
        student.value(bad)


def test_check_prints_one_line_and_raises_one_line(capsys):
    with check("sums"):
        assert 1 + 1 == 2
    assert capsys.readouterr().out == "\u2714 sums: passed\n"
    with pytest.raises(CheckFailed) as caught:
        with check("sums"):
            raise AssertionError("1 + 1 is 2\n(one line)")
    assert caught.value._render_traceback_() == ["\u2718 sums: 1 + 1 is 2 (one line)"]
    with pytest.raises(CheckFailed) as caught:
        with check("sums"):
            len(None)
    assert caught.value._render_traceback_()[0].startswith("\u2718 sums: TypeError")


def test_check_quiz(names, capsys):
    names(answer_views=...)
    with pytest.raises(CheckFailed, match="replace ..."):
        check_quiz("answer_views", "l2-views")
    names(answer_views=["a", "b"])
    with pytest.raises(CheckFailed, match="not the right answer"):
        check_quiz("answer_views", "l2-views")
    names(answer_views=("D", "c", "a"))
    check_quiz("answer_views", "l2-views")
    assert capsys.readouterr().out.endswith("\u2714 quiz l2-views: passed\n")


@pytest.mark.slow
def test_in_a_real_kernel_a_verdict_is_one_line():
    """What a student sees in JupyterLab: the error output's traceback is one line."""
    manager, client = start_new_kernel(kernel_name="python3")
    try:
        code = (
            "from course_lib.checking import check, student\n"
            "busy = {0: 1.0}\n"
            "with check('busy_seconds'):\n"
            "    assert student.value('busy') == {0: 2.0}, 'engine 0 was busy 2.0 s'\n"
        )
        reply, outputs = _run(client, code)
        assert reply["content"]["status"] == "error"
        errors = [o for o in outputs if o["msg_type"] == "error"]
        assert errors[0]["content"]["traceback"] == ["\u2718 busy_seconds: engine 0 was busy 2.0 s"]
        reply, outputs = _run(client, "with check('busy_seconds'):\n    assert busy[0] == 1.0\n")
        assert reply["content"]["status"] == "ok"
        texts = [o["content"]["text"] for o in outputs if o["msg_type"] == "stream"]
        assert texts == ["\u2714 busy_seconds: passed\n"]
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def _run(client, code):
    msg_id = client.execute(code)
    outputs = []
    while True:
        message = client.get_iopub_msg(timeout=60)
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
            break
        if message["msg_type"] in ("stream", "error"):
            outputs.append(message)
    while True:
        reply = client.get_shell_msg(timeout=60)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply, outputs
