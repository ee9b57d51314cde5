"""The grading kernels' entry point (course_lib.grading._kernel): ipykernel that exits
by itself when asked to; the checker's never imports from the folder it starts in."""

import json
import subprocess
import sys

import pytest
from jupyter_client.manager import KernelManager, _ShutdownStatus

from course_lib.grading.sandbox import KERNEL_MODULE

pytestmark = pytest.mark.slow


def test_a_grading_kernel_answers_and_exits_by_itself_when_asked(tmp_path, monkeypatch):
    """The entry point is ipykernel: it runs code, and a shutdown request ends it
    without a signal (the race it removes is occasional: see the module)."""
    spec = tmp_path / "kernels" / "grading"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", KERNEL_MODULE, "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    km = KernelManager(kernel_name="grading", shutdown_wait_time=30.0)
    km.start_kernel()
    try:
        client = km.client()
        client.start_channels()
        client.wait_for_ready(timeout=60)
        reply = client.execute_interactive("x = 6 * 7", user_expressions={"x": "x"}, timeout=60)
        assert reply["content"]["user_expressions"]["x"]["data"]["text/plain"] == "42"
        client.stop_channels()
        km.shutdown_kernel()
        assert km._shutdown_status == _ShutdownStatus.ShutdownRequest
    finally:
        if km.has_kernel:
            km.shutdown_kernel(now=True)


def test_the_checker_kernel_cannot_import_from_the_folder_it_starts_in(tmp_path):
    """The checker starts in the student's folder (python -P): a module written there,
    by the student's code or in the submission, is not importable by the checker."""
    from course_lib.grading.runner import CHECKER_KERNEL, Workspace

    workspace = Workspace(sandbox=False)
    try:
        argv = (workspace.path / "jupyter" / "kernels" / CHECKER_KERNEL / "kernel.json").read_text()
    finally:
        workspace.cleanup()
    assert '"-P"' in argv and KERNEL_MODULE in argv
    (tmp_path / "course_shadow_probe.py").write_text("X = 1\n")
    code = "import importlib.util; print(importlib.util.find_spec('course_shadow_probe'))"
    safe = subprocess.run(
        [sys.executable, "-P", "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert safe.stdout.strip() == "None"
    # Control: without -P, the folder a process starts in comes first.
    plain = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert "course_shadow_probe" in plain.stdout
