"""tests/system_tools.py: a missing tool skips, or fails where it is required (CI).

The last tests run pytest itself, in a subprocess, on a small test module that uses the
suite's own Slurm fixture, with PATH lacking Slurm: a CI-like run fails and names it.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import system_tools
from system_tools import REQUIRE_ALL, TOOLS, unavailable

TESTS = Path(__file__).resolve().parent
SLURM_COMMANDS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")


@pytest.fixture
def no_requirements(monkeypatch):
    """No COURSE_REQUIRE_* variable set, whatever the run's own environment."""
    for variable in (REQUIRE_ALL, *(tool.variable for tool in TOOLS.values())):
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_a_missing_tool_skips_and_says_how_to_get_it(no_requirements, name):
    with pytest.raises(pytest.skip.Exception) as skipped:
        unavailable(name, "not here")
    message = str(skipped.value)
    assert message.startswith(f"{name} missing: not here. Needed by ")
    assert TOOLS[name].install in message and f"{TOOLS[name].variable}=1" in message


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_a_missing_required_tool_fails(no_requirements, name):
    for variables in ({REQUIRE_ALL: "1"}, {TOOLS[name].variable: "1"}):
        with no_requirements.context() as patch:
            for variable, value in variables.items():
                patch.setenv(variable, value)
            with pytest.raises(pytest.fail.Exception) as failed:
                unavailable(name, "not here")
        assert str(failed.value).startswith(f"{name} missing: not here. Needed by ")
        assert TOOLS[name].install in str(failed.value)


def test_one_tool_can_be_exempted_from_require_all(no_requirements):
    no_requirements.setenv(REQUIRE_ALL, "1")
    no_requirements.setenv("COURSE_REQUIRE_SLURM", "0")
    with pytest.raises(pytest.skip.Exception):
        unavailable("slurm", "not here")
    with pytest.raises(pytest.fail.Exception):
        unavailable("sshd", "not here")


def test_bad_values_and_names_are_refused(no_requirements):
    no_requirements.setenv("COURSE_REQUIRE_SSHD", "yes")
    with pytest.raises(ValueError, match="COURSE_REQUIRE_SSHD='yes'"):
        system_tools.check_variables()
    with pytest.raises(ValueError, match="COURSE_REQUIRE_SSHD='yes'"):
        unavailable("sshd", "not here")
    with pytest.raises(ValueError, match="'ssh'"):
        unavailable("ssh", "not here")


def test_every_debian_package_is_one_that_ci_run_installs():
    text = (TESTS.parent / ".ci" / "run").read_text()
    for tool in TOOLS.values():
        for package in tool.packages:
            assert f'="{package} {tool.name}"' in text, (package, tool.name)


# ----------------------------------------------------------------------------------------
# pytest in a subprocess, as CI runs it.

NEEDS_SLURM = """
from slurm import slurm_daemons  # noqa: F401 (the suite's own fixture)


def test_needs_slurm(slurm_daemons):
    pass
"""


def _pytest(folder, module, env):
    """``python -m pytest`` on ``module`` in ``folder``, with the suite's hooks only.

    No other plugin is loaded (they are not what is tested, and cost seconds a run).
    """
    (folder / "test_small.py").write_text(textwrap.dedent(module))
    env = {**env, "PYTHONPATH": str(TESTS), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "system_tools", "-p", "no:cacheprovider",
         "--doctest-modules", "-rs", "test_small.py"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _environment(**variables):
    """This environment without COURSE_REQUIRE_*, with ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURSE_REQUIRE_")}
    return {**env, **variables}


def _path_without_slurm():
    """PATH without the folders that hold a Slurm command."""
    folders = os.environ["PATH"].split(os.pathsep)
    return os.pathsep.join(
        folder for folder in folders if not any(Path(folder, c).exists() for c in SLURM_COMMANDS)
    )


#: Why Slurm is missing under that PATH (as root; as another user, "not root" comes first).
WHY = (
    ", ".join(SLURM_COMMANDS) + " not on PATH"
    if os.geteuid() == 0
    else "not root: slurmd and munged must run as root and as munge"
)


def test_a_ci_run_without_slurm_fails_and_names_it(tmp_path):
    env = _environment(PATH=_path_without_slurm(), **{REQUIRE_ALL: "1"})
    result = _pytest(tmp_path, NEEDS_SLURM, env)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "1 error" in out, out  # the fixture failed: an error of the test
    assert f"slurm missing: {WHY}. Needed by the Slurm launcher tests" in out, out
    assert "apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge" in out
    assert "no test skipped" in out


def test_the_same_run_outside_ci_skips_and_the_summary_says_why(tmp_path):
    env = _environment(PATH=_path_without_slurm())
    result = _pytest(tmp_path, NEEDS_SLURM, env)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "1 skipped" in out
    summary = out.split("skip summary")[1]
    assert f"   1 skipped: slurm missing: {WHY}. Needed by" in summary, summary
    assert "COURSE_REQUIRE_SLURM=1 to make this a failure" in summary


STRAY_SKIP = '''
import pytest


def shown_only():
    """A doctest that shows a cluster and runs nothing.

    >>> start_a_cluster()  # doctest: +SKIP
    """


def test_runs():
    pass


@pytest.mark.parametrize("n", [1, 2])
def test_skips(n):
    pytest.skip("some reason of its own")
'''


def test_a_ci_run_fails_on_any_skipped_test_but_not_on_a_shown_only_doctest(tmp_path):
    result = _pytest(tmp_path, STRAY_SKIP, _environment(**{REQUIRE_ALL: "1"}))
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "1 passed, 3 skipped" in out, out
    summary = out.split("skip summary")[1]
    assert "   2 skipped: some reason of its own" in summary
    assert "   1 doctests not run (all tests skipped by +SKIP option): not tests" in summary
    assert "COURSE_REQUIRE_ALL=1: every test must run, and 2 skipped: this run fails." in summary

    outside_ci = _pytest(tmp_path, STRAY_SKIP, _environment())
    assert outside_ci.returncode == 0, outside_ci.stdout
    assert "this run fails" not in outside_ci.stdout


def test_a_bad_variable_stops_the_run_before_any_test(tmp_path):
    result = _pytest(tmp_path, STRAY_SKIP, _environment(COURSE_REQUIRE_MPI="true"))
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert "COURSE_REQUIRE_MPI='true'" in result.stderr
    assert "passed" not in result.stdout
