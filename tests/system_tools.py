"""What the suite needs from the machine, and what a test does when it is missing.

Some tests need a tool that ``make test`` cannot install: a Debian package (sshd,
Slurm, bubblewrap, Chromium), a package of the ``cluster`` extra that may have failed
to install (MPI), or another Python. :data:`TOOLS` lists them, one entry each. A test
that finds its tool missing calls :func:`unavailable`, which skips it, saying what is
missing and how to get it, or fails it when the tool is required:

- ``COURSE_REQUIRE_ALL=1`` requires every tool (``.ci/run`` sets it, so CI never
  turns a failed install into a green skip);
- ``COURSE_REQUIRE_<TOOL>=1`` requires one (``COURSE_REQUIRE_SSHD=1``), and
  ``COURSE_REQUIRE_<TOOL>=0`` exempts one from ``COURSE_REQUIRE_ALL``.

Under ``COURSE_REQUIRE_ALL=1`` a run with any skipped test fails
(:func:`pytest_sessionfinish`), whatever made it skip: CI runs every test. The one
exception is a doctest whose examples are all marked ``+SKIP`` (examples that show a
cluster or a figure, not tests). Every run ends with a summary of its skips, by reason
(:func:`pytest_terminal_summary`). ``tests/conftest.py`` imports both hooks.

Examples
--------
>>> sorted(TOOLS)[:3]
['binder-python', 'browser', 'bwrap']
>>> TOOLS["sshd"].variable
'COURSE_REQUIRE_SSHD'
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass

import pytest

#: Requires every tool of :data:`TOOLS` ("1"), or none unless named ("0" or unset).
REQUIRE_ALL = "COURSE_REQUIRE_ALL"
#: The reason pytest gives for a doctest whose every example is ``+SKIP``.
DOCTEST_ALL_SKIPPED = "all tests skipped by +SKIP option"


@dataclass(frozen=True)
class Tool:
    """One thing the suite needs from the machine.

    Parameters
    ----------
    name : str
        Its key in :data:`TOOLS`; the variable is ``COURSE_REQUIRE_`` + its upper case.
    needed_by : str
        The tests that need it.
    packages : tuple of str
        The Debian packages that bring it, which ``.ci/run`` installs (a test checks).
    other : str
        How else to get it, or how to get it when no Debian package does.
    """

    name: str
    needed_by: str
    packages: tuple = ()
    other: str = ""

    @property
    def variable(self):
        return "COURSE_REQUIRE_" + self.name.upper().replace("-", "_")

    @property
    def install(self):
        """How to get it, in one sentence."""
        apt = ""
        if self.packages:
            apt = (
                "as root, `apt-get update && apt-get install -y --no-install-recommends "
                f"{' '.join(self.packages)}` (.ci/run does it)"
            )
        return "; or ".join(filter(None, (apt, self.other)))


#: Every tool the suite needs that ``make test`` does not install, by name.
TOOLS = {
    tool.name: tool
    for tool in (
        Tool("sshd", "the SSH launcher test (lesson 7)", ("openssh-server",)),
        Tool(
            "slurm",
            "the Slurm launcher tests (tests/test_cluster_launchers.py, lesson 7)",
            ("slurmctld", "slurmd", "slurm-client", "munge"),
        ),
        Tool(
            "mpi",
            "the MPI launcher tests (tests/test_cluster_launchers.py, lesson 7)",
            other="mpiexec and mpi4py come with the course's `cluster` extra (PyPI's mpich "
            "and mpi4py), which `make test` installs: check that its install did not fail",
        ),
        Tool(
            "bwrap",
            "the grading sandbox (every graded notebook; grading refuses without it)",
            ("bubblewrap",),
        ),
        Tool(
            "browser",
            "the browser tests (tests/browser/), with Playwright for Python (the `test` "
            "extra, which `make test` installs)",
            ("chromium",),
            "COURSE_CHROMIUM naming a Chromium binary",
        ),
        Tool(
            "hub",
            "the real JupyterHub tests (tests/test_hub.py, tests/browser/test_hub_term.py)",
            other="root (it makes Unix users), npm (configurable-http-proxy), useradd, and a "
            "Python 3.11 or newer that every user can run (/usr/bin/python3)",
        ),
        Tool(
            "binder-python",
            "the Binder environment test (tests/test_binder.py)",
            other="the Python that binder/runtime.txt names, as python3.N on PATH "
            "(suite.yml sets it up with actions/setup-python)",
        ),
        Tool(
            "old-python",
            "the Makefile's too-old-Python test (tests/test_makefile.py)",
            other="a Python older than requires-python, as python3.N on PATH or in "
            "~/.pyenv (suite.yml sets it up with actions/setup-python)",
        ),
    )
}


def _flag(variable):
    value = os.environ.get(variable, "")
    if value not in ("", "0", "1"):
        raise ValueError(f"{variable}={value!r}: must be 1 (required), 0 (not) or unset.")
    return value


def check_variables():
    """Raise ``ValueError`` naming a ``COURSE_REQUIRE_*`` variable set to anything but 0 or 1.

    >>> check_variables()
    """
    for variable in (REQUIRE_ALL, *(tool.variable for tool in TOOLS.values())):
        _flag(variable)


def required(name):
    """True when the tool ``name`` must be there: its variable, else ``COURSE_REQUIRE_ALL``.

    >>> required("sshd") in (True, False)
    True
    """
    if name not in TOOLS:
        raise ValueError(f"unknown tool {name!r}: one of {sorted(TOOLS)}")
    own = _flag(TOOLS[name].variable)
    return (own or _flag(REQUIRE_ALL)) == "1"


def every_test_must_run():
    """True under ``COURSE_REQUIRE_ALL=1`` (CI): a skipped test fails the run."""
    return _flag(REQUIRE_ALL) == "1"


def unavailable(name, why):
    """Skip the calling test because tool ``name`` is missing, or fail it if it is required.

    Parameters
    ----------
    name : str
        A key of :data:`TOOLS`.
    why : str
        What is missing here, in a few words.

    Examples
    --------
    >>> outcomes = (pytest.skip.Exception, pytest.fail.Exception)
    >>> with pytest.raises(outcomes, match="sshd missing: not installed here"):
    ...     unavailable("sshd", "not installed here")
    """
    required_here = required(name)  # also checks the name
    tool = TOOLS[name]
    message = f"{name} missing: {why}. Needed by {tool.needed_by}. Install: {tool.install}."
    if required_here:
        pytest.fail(f"{message} ({tool.variable} or {REQUIRE_ALL} is 1: required)", pytrace=False)
    pytest.skip(f"{message} Set {tool.variable}=1 to make this a failure.")


def _reason(report):
    """The message of a skip report, without pytest's "Skipped: " prefix."""
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return text.removeprefix("Skipped: ")


def _skips(terminalreporter):
    """``(counted, allowed)``: Counters of skip reasons; allowed are all-``+SKIP`` doctests."""
    reasons = Counter(_reason(r) for r in terminalreporter.stats.get("skipped", []))
    allowed = Counter({r: n for r, n in reasons.items() if r == DOCTEST_ALL_SKIPPED})
    return reasons - allowed, allowed


def pytest_configure(config):
    """Bad ``COURSE_REQUIRE_*`` values stop the run before any test."""
    try:
        check_variables()
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None


def pytest_sessionfinish(session, exitstatus):
    """Under ``COURSE_REQUIRE_ALL=1``, a run that skipped a test fails."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or not every_test_must_run():
        return
    counted, _ = _skips(reporter)
    if counted and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, config):
    """The skips of this run, by reason and count, and whether they fail it."""
    if config.option.collectonly:
        return
    counted, allowed = _skips(terminalreporter)
    terminalreporter.section("skip summary")
    if not counted and not allowed:
        terminalreporter.write_line("no test skipped")
    for reason, count in counted.most_common():
        terminalreporter.write_line(f"{count:4d} skipped: {reason}")
    for reason, count in allowed.items():
        terminalreporter.write_line(f"{count:4d} doctests not run ({reason}): not tests")
    if counted and every_test_must_run():
        terminalreporter.write_line(
            f"{REQUIRE_ALL}=1: every test must run, and {counted.total()} skipped: this run fails.",
            red=True,
            bold=True,
        )
