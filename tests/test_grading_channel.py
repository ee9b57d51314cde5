"""course_lib.grading.channel: a checker's requests to a real student kernel, data back.

One real ipykernel plays the student's kernel; this test process plays the
checker, with :class:`course_lib.checking.Student` on a
:class:`~course_lib.grading.channel.KernelBackend`, exactly as a checker
kernel uses it.
"""

import ast
import json
import os
import signal
import textwrap

import numpy as np
import pytest
from jupyter_client.manager import KernelManager

from course_lib import _processes
from course_lib.checking import Student, StudentError
from course_lib.grading.channel import (
    MIME,
    TEMPLATE,
    KernelBackend,
    kernel_process,
    write_spec,
)

pytestmark = pytest.mark.timeout(300)

#: What the student's kernel has run before the checker asks.
STUDENT_CODE = textwrap.dedent(
    f"""
    import subprocess, time
    import numpy as np
    answer = 42
    scores = {{"train": np.array([0.5, 0.75]), "best": (3, "rbf")}}

    class Secret:
        pass

    secret = Secret()

    def double(x):
        return 2 * x

    def boom():
        raise ValueError("no luck")

    def big():
        return "x" * 5000

    def deep():
        value = []
        for _ in range(200):
            value = [value]
        return value

    def hang():
        time.sleep(600)

    def forge():
        from IPython.display import publish_display_data
        publish_display_data({{"{MIME}": {{"ok": True}}}})

    def counter():
        return {{"n": 0}}

    helper = subprocess.Popen(["sleep", "300"], start_new_session=True)
    """
)


def _execute(km, code):
    client = km.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        reply = client.execute_interactive(code, timeout=60)
        assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        client.stop_channels()


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """A student's kernel that ran STUDENT_CODE, and the channel's spec to reach it."""
    folder = tmp_path_factory.mktemp("channel")
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(folder), extra_arguments=["--InteractiveShell.xmode=Minimal"])
    try:
        _execute(km, STUDENT_CODE)
        proc = kernel_process(km.provisioner.process.pid)
        spec = write_spec(
            folder / "channel.json",
            connection=km.get_connection_info(),
            kernel_pid=proc.pid,
            create_time=proc.create_time(),
            folder=folder,
            sent_log=folder / "sent.jsonl",
            max_bytes=2000,
        )
        yield km, spec, folder
    finally:
        pids = [p.pid for p in _processes.process_tree(km.provisioner.process.pid)]
        km.shutdown_kernel(now=True)
        _processes.stop(pids)


@pytest.fixture
def student(kernel):
    handle = Student()
    handle._backend = KernelBackend(kernel[1])
    handle.timeout = 30
    yield handle
    handle._backend.close()


def test_values_calls_and_kept_results_cross_as_data(student):
    assert student.value("answer") == 42
    scores = student.value("scores")
    assert scores["best"] == (3, "rbf")
    np.testing.assert_array_equal(scores["train"], [0.5, 0.75])
    assert student.call("double", 21) == 42
    assert student.exists("double") and not student.exists("nothing_here")
    assert student.type_of("secret") == "__main__.Secret"
    kept = student.keep("counter")
    assert student.call("double", student.ref("answer")) == 84  # a reference as an argument
    assert student.value(kept) == {"n": 0}


def test_what_is_not_data_fails_naming_its_type(student):
    with pytest.raises(StudentError, match=r"__main__\.Secret is not data") as caught:
        student.value("secret")
    assert caught.value.kind == "notdata"
    with pytest.raises(StudentError, match="raised ValueError: no luck") as caught:
        student.call("boom")
    assert caught.value.kind == "raised"
    with pytest.raises(StudentError, match="nothing_here is not defined") as caught:
        student.value("nothing_here")
    assert caught.value.kind == "missing"


def test_a_reply_too_big_or_too_deep_fails_that_request_only(student):
    with pytest.raises(StudentError, match="more than the 2000 a reply may have") as caught:
        student.call("big")
    assert caught.value.kind == "channel"
    with pytest.raises(StudentError, match="nested deeper than 64"):
        student.call("deep")
    assert student.value("answer") == 42  # the channel still works


def test_a_forged_reply_is_not_a_reply(student):
    with pytest.raises(StudentError, match="not the text of a value") as caught:
        student.call("forge")
    assert caught.value.kind == "channel"
    assert student.value("answer") == 42


def test_a_hang_is_interrupted_and_fails_that_request_only(student):
    student.timeout = 3
    with pytest.raises(StudentError, match="did not answer within 3 s") as caught:
        student.call("hang")
    assert caught.value.kind == "channel"
    assert student.value("answer") == 42  # interrupted: the kernel answers again


def test_processes_and_folder_are_seen_from_outside(kernel, student):
    km, spec, folder = kernel
    helper = student.value("helper.pid")
    found = {p["pid"]: p for p in student.processes()}
    assert helper in found and found[helper]["cmdline"] == ["sleep", "300"]
    assert student.folder == folder


def test_every_message_sent_is_logged_and_holds_only_the_request(kernel, student):
    _, spec, folder = kernel
    log = folder / "sent.jsonl"
    before = len(log.read_text().splitlines()) if log.exists() else 0
    student.call("double", 7)
    lines = [json.loads(line) for line in log.read_text().splitlines()[before:]]
    assert len(lines) == 1 and lines[0]["from"] == "checker"
    code = lines[0]["code"]
    prefix, suffix = TEMPLATE.format(literal="\0").split("\0")
    assert code.startswith(prefix) and code.endswith(suffix)
    request = json.loads(ast.literal_eval(code[len(prefix) : -len(suffix)]))
    assert request["op"] == "call" and request["target"]["path"] == "double"


def test_bad_input_is_refused_at_the_door(kernel, tmp_path):
    backend = KernelBackend(kernel[1])
    with pytest.raises(ValueError, match="timeout == -1"):
        backend.request("{}", timeout=-1)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(StudentError, match="spec .* is unusable"):
        KernelBackend(tmp_path / "bad.json")


def test_a_dead_kernel_fails_at_once(tmp_path):
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(tmp_path))
    try:
        _execute(km, "x = 1")
        proc = kernel_process(km.provisioner.process.pid)
        spec = write_spec(
            tmp_path / "channel.json",
            connection=km.get_connection_info(),
            kernel_pid=proc.pid,
            create_time=proc.create_time(),
            folder=tmp_path,
            sent_log=tmp_path / "sent.jsonl",
        )
        handle = Student()
        handle._backend = KernelBackend(spec)
        assert handle.value("x") == 1
        os.kill(proc.pid, signal.SIGKILL)
        _processes.wait_gone([proc], 10)
        with pytest.raises(StudentError, match="not running any more") as caught:
            handle.value("x")
        assert caught.value.kind == "channel"
        with pytest.raises(StudentError, match="not running any more"):
            handle.processes()
        handle._backend.close()
    finally:
        km.shutdown_kernel(now=True)
