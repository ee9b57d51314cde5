"""course_lib.grading.execute: test cells in a checker kernel, the rest in the student's.

One small notebook with nbgrader metadata is executed once by
:class:`~course_lib.grading.execute.TwoKernelExecute` with two real kernels
(no sandbox here: test_grading_autograde.py and test_grading_sandbox.py grade
through it in the sandbox); the tests read its cells, its sent-log and the
types the checker held.
"""

import json

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_lib.grading.execute import (
    SENT_SUFFIX,
    TYPES_SUFFIX,
    CheckerKernelError,
    TwoKernelExecute,
)
from course_lib.grading.notebooks import nbgrader_meta
from course_lib.grading.runner import Workspace

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

#: A line of a test's source that must never reach the student's kernel.
MARKER = "HIDDEN-MARKER-4f1c9a"
HEADER = "from course_lib.checking import check, student\n\n"


def _student(source):
    return new_code_cell(source)


def _test(grade_id, body, points=1):
    cell = new_code_cell(HEADER + body)
    cell.metadata["nbgrader"] = {
        "grade": True,
        "solution": False,
        "locked": True,
        "grade_id": grade_id,
        "points": points,
        "schema_version": 3,
    }
    return cell


def _notebook():
    return new_notebook(
        cells=[
            new_markdown_cell("# Two kernels"),
            _student(
                "import os, time\n"
                "answer = 42\n\n"
                "class Secret:\n    pass\n\n"
                "secret = Secret()\n\n"
                "def double(x):\n    return 2 * x\n\n"
                "def big():\n    return 'x' * 5000\n\n"
                "def deep():\n    value = []\n    for _ in range(200):\n"
                "        value = [value]\n    return value\n\n"
                "def hang():\n    time.sleep(600)"
            ),
            _test("test-value", 'with check("value"):\n    assert student.value("answer") == 42'),
            _test(
                "test-hidden",
                'with check("hidden"):\n'
                '    assert student.call("double", -3) == -6\n'
                "    ### BEGIN HIDDEN TESTS\n"
                f'    assert "{MARKER}" != student.value("answer")\n'
                "    ### END HIDDEN TESTS",
            ),
            _test("test-notdata", 'with check("notdata"):\n    student.value("secret")'),
            _test("test-big", 'with check("big"):\n    student.call("big")'),
            _test("test-deep", 'with check("deep"):\n    student.call("deep")'),
            _test(
                "test-hang",
                'with check("hang"):\n    student.timeout = 3\n    student.call("hang")',
            ),
            _test("test-after-hang", 'with check("after"):\n    assert student.value("answer")'),
            _student("import signal\nos.kill(os.getpid(), signal.SIGKILL)"),
            _student("answer = 43"),
            _test("test-dead", 'with check("dead"):\n    assert student.value("answer") == 42'),
            _test("test-alone", 'with check("alone"):\n    assert sum([1, 1]) == 2'),
        ]
    )


@pytest.fixture(scope="module")
def kernels(tmp_path_factory):
    """Kernelspecs for both kernels (the grading Workspace's, without the sandbox)."""
    workspace = Workspace(sandbox=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(workspace.path / "jupyter"))
        yield workspace
    workspace.cleanup()


def _execute(nb, folder, **traits):
    executor = TwoKernelExecute(
        timeout=120,
        kernel_name="python3",
        extra_arguments=["--InteractiveShell.xmode=Minimal"],
        audit_dir=str(folder / "audit"),
        **traits,
    )
    return executor.preprocess(nb, {"metadata": {"path": str(folder)}, "unique_key": "nb"})


@pytest.fixture(scope="module")
def executed(kernels, tmp_path_factory):
    folder = tmp_path_factory.mktemp("execute")
    nb, _ = _execute(_notebook(), folder, max_reply_bytes=2000)
    cells = {nbgrader_meta(c).get("grade_id", i): c for i, c in enumerate(nb.cells)}
    return cells, folder / "audit"


def _text(cell):
    return "\n".join(
        o.get("text", "") + "\n".join(o.get("traceback", [])) for o in cell.get("outputs", [])
    )


def _errors(cell):
    return [o for o in cell.get("outputs", []) if o["output_type"] == "error"]


def test_a_test_cell_passes_through_the_channel(executed):
    cells, _ = executed
    assert _errors(cells["test-value"]) == []
    assert "\u2714 value: passed" in _text(cells["test-value"])
    assert "\u2714 hidden: passed" in _text(cells["test-hidden"])


def test_what_is_not_data_fails_that_test_naming_its_type(executed):
    cells, _ = executed
    (error,) = _errors(cells["test-notdata"])
    assert error["ename"] == "CheckFailed"
    assert error["traceback"] == [
        f"\u2718 notdata: {error['evalue'].split(': ', 1)[1]}"
    ]  # one line, no traceback
    assert "__main__.Secret is not data" in error["evalue"]


def test_a_reply_too_big_or_too_deep_fails_that_test_only(executed):
    cells, _ = executed
    assert "more than the 2000 a reply may have" in _errors(cells["test-big"])[0]["evalue"]
    assert "nested deeper than 64" in _errors(cells["test-deep"])[0]["evalue"]


def test_a_hang_fails_that_test_only(executed):
    cells, _ = executed
    assert "did not answer within 3 s" in _errors(cells["test-hang"])[0]["evalue"]
    assert _errors(cells["test-after-hang"]) == []


def test_a_dead_student_kernel_fails_the_tests_after_it_and_the_rest_is_graded(executed):
    cells, _ = executed
    killed, skipped = cells[9], cells[10]
    assert [e["ename"] for e in _errors(killed)] == ["DeadKernelError"]
    assert "not run" in _errors(skipped)[0]["evalue"]
    assert "the notebook's kernel died in cell 10" in _errors(cells["test-dead"])[0]["evalue"]
    assert _errors(cells["test-alone"]) == []


def test_no_test_source_reaches_the_student_kernel(executed):
    cells, audit = executed
    sent = [json.loads(line) for line in (audit / f"nb{SENT_SUFFIX}").read_text().splitlines()]
    assert {line["from"] for line in sent} == {"executor", "checker"}
    executor = [line["code"] for line in sent if line["from"] == "executor"]
    assert executor == [cells[1].source, cells[9].source]  # the student's cells, no more
    text = "\n".join(line["code"] for line in sent)
    assert MARKER not in text and "check(" not in text and "assert" not in text
    # Control: the marker is in a test that ran, and asked the student's kernel for data.
    assert MARKER in cells["test-hidden"].source
    assert any('"path":"double"' in line["code"] for line in sent if line["from"] == "checker")


def test_the_checker_holds_only_data_types(executed):
    _, audit = executed
    types = json.loads((audit / f"nb{TYPES_SUFFIX}").read_text())
    assert "builtins.dict" in types and "course_lib.checking.Student" in types
    assert [name for name in types if name.startswith("__main__.")] == []


def test_a_dead_checker_kernel_is_not_the_students_doing(kernels, tmp_path):
    nb = new_notebook(
        cells=[
            _student("answer = 42"),
            _test("test-die", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"),
            _test("test-after", 'with check("after"):\n    assert student.value("answer")'),
        ]
    )
    with pytest.raises(CheckerKernelError, match="the checker kernel died while test-die ran"):
        _execute(nb, tmp_path)
    assert (tmp_path / "audit" / f"nb{SENT_SUFFIX}").is_file()


def test_a_checker_that_cannot_start_is_not_the_students_doing(kernels, tmp_path):
    """A checker kernel (or its sandbox) that dies at start: CheckerKernelError, which
    grading retries and never turns into a score."""
    import sys

    spec_dir = kernels.path / "jupyter" / "kernels" / "broken-checker"
    spec_dir.mkdir(exist_ok=True)
    argv = [sys.executable, "-c", "raise SystemExit(70)", "{connection_file}"]
    (spec_dir / "kernel.json").write_text(json.dumps({"argv": argv, "language": "python"}))
    nb = new_notebook(cells=[_student("answer = 42"), _test("test-x", "assert True")])
    with pytest.raises(CheckerKernelError, match="the checker kernel did not start"):
        _execute(nb, tmp_path, checker_kernel_name="broken-checker")
    assert nb.cells[0].get("outputs", []) == []  # nothing ran


def test_in_the_sandbox_the_checker_sees_processes_and_files_from_outside(tmp_path):
    """Both kernels sandboxed, as make grade runs them: the checker sees every process of
    the student's sandbox (a double-forked one too), with the PIDs the student's code
    sees, and the student's folder read-only; a module the student's code wrote there
    is not importable by the checker (python -P)."""
    from traitlets.config import Config

    from course_lib.grading import sandbox
    from course_lib.grading.runner import CHECKER_DIR, RUNTIME_DIR

    problem = sandbox.sandbox_problem()
    if problem is not None:
        pytest.fail(f"the grading tests need the sandbox: {problem}")
    workspace = Workspace(sandbox=True)
    try:
        root = workspace.new_dir("task")
        work = root / "autograded" / "ada" / "00_x"
        work.mkdir(parents=True)
        (root / RUNTIME_DIR).mkdir()
        config = Config()
        config.KernelManager.transport = "ipc"
        config.KernelManager.connection_file = str(root / RUNTIME_DIR / "kernel.json")
        config.KernelManager.ip = str(root / RUNTIME_DIR / "kernel-ipc")
        nb = new_notebook(
            cells=[
                _student(
                    "import os, subprocess, time\n"
                    'child = subprocess.Popen(["sleep", "300"])\n'
                    "if os.fork() == 0:  # the grandchild leaves the kernel's tree\n"
                    "    if os.fork() == 0:\n"
                    '        os.execvp("sleep", ["sleep", "301"])\n'
                    "    os._exit(0)\n"
                    "time.sleep(1)\n"
                    'with open("written.txt", "w") as handle:\n'
                    '    handle.write("hi")\n'
                    "# a module the checker would import, if its folder were on its path\n"
                    'with open("course_shadow_probe.py", "w") as handle:\n'
                    '    handle.write("X = 1")'
                ),
                _test(
                    "test-outside",
                    'with check("outside"):\n'
                    "    found = {p['cmdline'][-1]: p['pid'] for p in student.processes()\n"
                    "             if p['name'] == 'sleep'}\n"
                    '    assert found.get("300") == student.value("child.pid"), found\n'
                    '    assert "301" in found, found\n'
                    '    assert (student.folder / "written.txt").read_text() == "hi"\n'
                    "    try:\n"
                    '        (student.folder / "planted.txt").write_text("no")\n'
                    '        raise AssertionError("the checker wrote there")\n'
                    "    except OSError:\n"
                    "        pass\n"
                    '    assert (student.folder / "course_shadow_probe.py").is_file()\n'
                    "    import importlib.util\n"
                    '    assert importlib.util.find_spec("course_shadow_probe") is None',
                ),
            ]
        )
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("JUPYTER_PATH", str(workspace.path / "jupyter"))
            patch.setenv(sandbox.SANDBOX_DIR_VAR, str(root / ".sandbox"))
            TwoKernelExecute(
                config=config,
                timeout=120,
                kernel_name="python3",
                checker_runtime_dir=str(root / CHECKER_DIR),
            ).preprocess(nb, {"metadata": {"path": str(work)}, "unique_key": "nb"})
        assert _errors(nb.cells[1]) == [], _text(nb.cells[1])
        assert "\u2714 outside: passed" in _text(nb.cells[1])
        assert not (work / "written.txt").exists()  # written in the student's scratch copy
    finally:
        workspace.kill_all()
        workspace.cleanup()
