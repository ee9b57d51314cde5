"""The isolated runner's settings: nbgrader's configuration, jobs at once."""

import subprocess

import joblib
import pytest

from course_lib import grading


def test_nbgrader_config_sets_what_grading_relies_on():
    from nbgrader.preprocessors import ClearHiddenTests, Execute
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(grading.REPO_ROOT)).load_config()
    execute = Execute(config=config)
    assert execute.timeout >= 120
    assert "--InteractiveShell.xmode=Minimal" in execute.extra_arguments
    assert execute.kernel_name == "python3"
    assert any(issubclass(step, ClearHiddenTests) for step in config.GenerateFeedback.preprocessors)
    assert config.CourseDirectory.source_directory == "solutions"
    assert config.CourseDirectory.release_directory == "lessons"
    db = config.CourseDirectory.db_url.removeprefix("sqlite:///")
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", db], cwd=grading.REPO_ROOT, check=False
    ).returncode
    assert ignored == 0, f"{db} is not ignored by git"


def test_default_jobs_counts_cpus_and_memory():
    cpus = joblib.cpu_count()
    assert 1 <= grading.default_jobs() <= cpus
    assert grading.default_jobs(memory_per_task=1) == cpus  # memory is no limit
    assert grading.default_jobs(memory_per_task=2**60) == 1  # never less than one


def test_jobs_are_checked_at_the_door(tmp_path):
    with pytest.raises(ValueError, match="jobs == 0"):
        grading.grade(tmp_path, tmp_path, jobs=0, verbose=False)
    with pytest.raises(ValueError, match="timeout == -1"):
        grading.verify_exercises(tmp_path, jobs=1, timeout=-1, verbose=False)


def test_the_workspace_makes_a_sandboxed_kernelspec_for_each_kernel():
    import json

    from course_lib.grading import sandbox
    from course_lib.grading.execute import CHECKER_KERNEL
    from course_lib.grading.runner import Workspace

    workspace = Workspace(sandbox=True)
    try:
        kernels = workspace.path / "jupyter" / "kernels"
        student = json.loads((kernels / "python3" / "kernel.json").read_text())
        checker = json.loads((kernels / CHECKER_KERNEL / "kernel.json").read_text())
        assert student["argv"][1] == checker["argv"][1] == sandbox.__file__
        assert checker["argv"][2] == sandbox.CHECKER and sandbox.CHECKER not in student["argv"]
        assert student["interrupt_mode"] == checker["interrupt_mode"] == "message"
    finally:
        workspace.cleanup()


@pytest.mark.slow
def test_preparing_lessons_is_retried_and_every_cause_is_named(tmp_path):
    """generate_assignment failing is retried in a fresh root; when it always fails,
    the error names each attempt."""
    from course_lib.grading.runner import Workspace, generate

    lesson = tmp_path / "solutions" / "00_bad"
    lesson.mkdir(parents=True)
    (lesson / "00_bad.ipynb").write_text('{"cells": [')  # no notebook: fails every time
    workspace = Workspace(sandbox=False)
    try:
        with pytest.raises(RuntimeError, match="failed 2 time") as caught:
            generate(workspace, tmp_path, ["00_bad"], tmp_path / "db.sqlite", attempts=2, pause=0)
        assert "attempt 1: nbgrader generate_assignment failed" in str(caught.value)
        assert "attempt 2: nbgrader generate_assignment failed" in str(caught.value)
        assert len(list(workspace.path.glob("release-*"))) == 2  # a fresh root each time
    finally:
        workspace.kill_all()
        workspace.cleanup()
