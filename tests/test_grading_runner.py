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
    assert ClearHiddenTests in config.GenerateFeedback.preprocessors
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
