"""The throw-away Slurm of :mod:`course_lib._throwaway_slurm`, and its pytest fixtures.

The class lives in ``course_lib`` so that ``bench/startup.py`` uses it without
importing ``tests/``; test modules import the fixtures from here.
"""

from __future__ import annotations

import pytest
import system_tools

from course_lib._throwaway_slurm import (  # noqa: F401 (re-exported for the tests)
    DAEMONS,
    NODE_CPUS,
    ThrowawaySlurm,
    find_slurm,
)

# Fixtures: import both into a test module that needs Slurm.


@pytest.fixture(scope="module")
def slurm_daemons(tmp_path_factory):
    """munged, slurmctld and slurmd on 127.0.0.1 for this module, stopped by PID."""
    ok, why = find_slurm()
    if not ok:
        system_tools.unavailable("slurm", why)
    slurm = ThrowawaySlurm(tmp_path_factory.mktemp("slurm") / "slurm")
    slurm.start()
    try:
        yield slurm
    finally:
        slurm.stop()  # raises if a process survives


@pytest.fixture
def throwaway_slurm(slurm_daemons, monkeypatch):
    """The module's Slurm, with SLURM_CONF set for this test only."""
    for name, value in slurm_daemons.environment().items():
        monkeypatch.setenv(name, value)
    yield slurm_daemons
    assert slurm_daemons.wait_no_jobs() == [], "a job outlived its test"
