"""Engines started by real launchers: MPI (``mpiexec``) and Slurm (``sbatch``).

MPI comes from the course's ``cluster`` extra (PyPI ``mpich`` and ``mpi4py``);
Slurm is a throw-away single-node Slurm on 127.0.0.1 (``tests/slurm.py``).
Both skip, saying why, where the machine lacks them. The Slurm test plays
the scheduler taking the nodes back in the middle of a search (``scancel``)
and checks that the search still ends with every result, none computed twice.
"""

import hashlib
import importlib.util
import json
import os
import time
from collections import Counter

import numpy as np
import psutil
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_digits
from slurm import slurm_daemons, throwaway_slurm  # noqa: F401 (fixtures)
from system_tools import unavailable

from course_lib import _launchers, _processes
from course_lib.cluster import (
    LAUNCHERS,
    LauncherUnavailable,
    add_engines,
    course_cluster,
    engine_pids,
    find_mpiexec,
    launcher_available,
)
from course_lib.search import launch_search
from course_lib.splits import persist_cv_splits

pytestmark = pytest.mark.slow


class LoggedCentroids(BaseEstimator, ClassifierMixin):
    """Nearest centroid, which notes every fit it finishes in ``log`` (one line each).

    ``delay`` seconds of sleep make each fit long enough to be caught mid-search.
    """

    def __init__(self, shrink=0.0, log=None, delay=0.0):
        self.shrink = shrink
        self.log = log
        self.delay = delay

    def fit(self, X, y):
        time.sleep(self.delay)
        self.classes_ = np.unique(y)
        centroids = np.array([X[y == c].mean(axis=0) for c in self.classes_])
        self.centroids_ = (1 - self.shrink) * centroids + self.shrink * X.mean(axis=0)
        if self.log:
            digest = hashlib.sha1(np.ascontiguousarray(X).tobytes()).hexdigest()[:12]
            with open(self.log, "a") as file:
                file.write(f"{self.shrink!r} {digest} {os.getpid()}\n")
        return self

    def predict(self, X):
        distances = ((X[:, None, :] - self.centroids_[None]) ** 2).sum(axis=-1)
        return self.classes_[distances.argmin(axis=1)]


def _mpi_rank_size():
    from mpi4py import MPI

    return MPI.COMM_WORLD.Get_rank(), MPI.COMM_WORLD.Get_size()


def _family(pid):
    return {proc.pid for proc in _processes.process_tree(pid)}


def _ancestors(pid):
    try:
        return [p.name() for p in psutil.Process(pid).parents()]
    except psutil.Error:
        return []


@pytest.fixture(scope="module")
def digits_splits(tmp_path_factory):
    X, y = load_digits(return_X_y=True)
    return persist_cv_splits(X[:600], y[:600], 3, tmp_path_factory.mktemp("splits"), "digits")


# --------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------


def test_every_launcher_is_named_as_ipyparallel_names_it():
    from importlib.metadata import entry_points

    names = {e.name for e in entry_points(group="ipyparallel.engine_launchers")}
    assert set(_launchers.REGISTRY) <= names
    assert LAUNCHERS == tuple(_launchers.REGISTRY)
    for name, launcher in _launchers.REGISTRY.items():
        assert launcher.name == name


class _NoQsub(_launchers.Launcher):
    """A PBS launcher whose preflight finds no qsub: enough to show the registry decides."""

    name = "pbs"

    def preflight(self, n_engines, config):
        raise LauncherUnavailable("engines='pbs' needs qsub on PATH.")


def test_course_cluster_accepts_any_registered_launcher(monkeypatch):
    with pytest.raises(ValueError, match="engines == 'pbs'"):
        course_cluster(2, engines="pbs")
    monkeypatch.setitem(_launchers.REGISTRY, "pbs", _NoQsub())
    # Registered: now its own preflight answers, before anything starts.
    with pytest.raises(LauncherUnavailable, match="needs qsub"):
        course_cluster(2, engines="pbs")
    assert launcher_available("pbs") == (False, "engines='pbs' needs qsub on PATH.")


# --------------------------------------------------------------------------
# MPI
# --------------------------------------------------------------------------


def test_mpi_engines_have_ranks_run_a_search_and_stop(digits_splits, assert_all_gone):
    if find_mpiexec() is None:
        unavailable("mpi", "no mpiexec on PATH")
    if importlib.util.find_spec("mpi4py") is None:
        unavailable("mpi", "mpi4py is not installed")
    cluster = course_cluster(2, engines="mpi", timeout=120)
    with cluster as client:
        (engine_set,) = client.cluster.engines.values()
        mpiexec_pid = engine_set.pid
        assert psutil.Process(mpiexec_pid).name().startswith("mpiexec")
        ranks = client[:].apply_sync(_mpi_rank_size)
        assert sorted(ranks) == [(0, 2), (1, 2)]
        pids = engine_pids(client)
        # Every engine runs inside mpiexec's process tree (mpiexec -> hydra proxy -> engine).
        assert set(pids.values()) <= _family(mpiexec_pid)
        for pid in pids.values():
            assert "hydra_pmi_proxy" in _ancestors(pid) or "mpiexec" in " ".join(_ancestors(pid))
        every_pid = _family(mpiexec_pid) | _family(client.cluster.controller.pid)
        run = launch_search(
            client.load_balanced_view(), LoggedCentroids(), {"shrink": [0.0, 0.5]}, digits_splits
        )
        assert run.wait(timeout=120, progress_bar=False), run.report()
        assert not run.errors, run.report()
        assert len(run.results()) == 6
        assert {r["pid"] for r in run.results()} <= set(pids.values())
    stopped = cluster.stop()  # already stopped by the with block: says so
    assert str(stopped) == "nothing was running"
    assert_all_gone(every_pid, timeout=30)


# --------------------------------------------------------------------------
# Slurm
# --------------------------------------------------------------------------


def test_more_engines_than_the_partition_has_is_refused(throwaway_slurm):  # noqa: F811
    with pytest.raises(ValueError, match=r"n_engines == 5, but Slurm partition 'debug' has 4"):
        course_cluster(5, engines="slurm")
    with pytest.raises(ValueError, match="partition 'gpu' does not exist"):
        course_cluster(2, engines="slurm", config={"SlurmEngineSetLauncher": {"queue": "gpu"}})
    assert throwaway_slurm.wait_no_jobs() == []


def test_search_survives_scancel_of_its_engines(
    throwaway_slurm,  # noqa: F811
    digits_splits,
    tmp_path,
    assert_all_gone,
):
    fits = tmp_path / "fits.log"
    journal = tmp_path / "journal.jsonl"
    grid = {"shrink": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]}
    n_tasks = len(grid["shrink"]) * len(digits_splits)
    estimator = LoggedCentroids(log=str(fits), delay=0.4)
    cluster = course_cluster(
        2, engines="slurm", config={"SlurmEngineSetLauncher": {"timelimit": "10"}}, timeout=180
    )
    client = cluster.start()
    try:
        # Engines of a Slurm job, registered with a controller on 127.0.0.1.
        (first_set,) = client.cluster.engines.values()
        first_job = first_set.job_id
        assert throwaway_slurm.jobs() == [first_job]
        with open(client.cluster.controller.connection_files["client"]) as file:
            assert json.load(file)["interface"] == "tcp://127.0.0.1"
        first_pids = set(engine_pids(client).values())
        controller_family = _family(client.cluster.controller.pid)
        for pid in first_pids:
            assert psutil.Process(pid).environ()["SLURM_JOB_ID"] == first_job
            assert "slurmstepd" in _ancestors(pid)
            peers = {c.raddr.ip for c in psutil.Process(pid).net_connections("inet") if c.raddr}
            assert peers == {"127.0.0.1"}

        run = launch_search(
            client.load_balanced_view(), estimator, grid, digits_splits, journal=journal
        )
        while len(run.results()) < 4:
            assert not run.done, run.report()
            time.sleep(0.05)
        # The scheduler takes the nodes back: the engines' job is cancelled mid-search.
        throwaway_slurm.run("scancel", first_job)
        before_cancel = {(r["candidate"], r["split"]) for r in run.results()}
        assert_all_gone(first_pids, timeout=60)
        assert not run.done
        # New engines: a new job.
        new_ids = add_engines(client, 2, timeout=180)
        second_job = client.cluster.engines[list(client.cluster.engines)[-1]].job_id
        assert second_job != first_job and len(new_ids) == 2
        assert run.wait(timeout=240, progress_bar=False), run.report()

        # Every result, each task once; the lost ones were sent again.
        results = run.results()
        assert not run.errors, run.report()
        keys = [(r["candidate"], r["split"]) for r in results]
        assert len(keys) == n_tasks and len(set(keys)) == n_tasks
        n_lost = run.n_submitted - n_tasks
        assert n_lost >= 1, "no task was running when the job was cancelled?"
        second_pids = set(engine_pids(client).values())
        for record in results:
            if (record["candidate"], record["split"]) not in before_cancel:
                continue
            assert record["pid"] in first_pids
        # Nothing computed twice: one finished fit per task, except a task whose
        # engine was killed after its fit and before its result left (none, normally).
        finished = Counter(tuple(line.split()[:2]) for line in fits.read_text().splitlines())
        assert sum(finished.values()) <= n_tasks + n_lost
        assert max(finished.values()) <= 2
        assert len(finished) == n_tasks
        pids_that_fitted = {int(line.split()[2]) for line in fits.read_text().splitlines()}
        assert pids_that_fitted <= first_pids | second_pids

        # The journal: the same search launched again computes nothing.
        fits_before = fits.read_text()
        again = launch_search(
            client.load_balanced_view(), estimator, grid, digits_splits, journal=journal
        )
        assert again.wait(timeout=60, progress_bar=False)
        assert again.n_submitted == 0
        assert sorted((r["candidate"], r["split"]) for r in again.results()) == sorted(keys)
        assert fits.read_text() == fits_before
        print(
            f"\nscancel run: {n_tasks} results expected, {len(results)} received, "
            f"{n_lost} lost with the cancelled job and sent again, "
            f"{sum(finished.values()) - n_tasks} recomputed; relaunch from the journal: "
            f"{again.n_submitted} submitted"
        )
    finally:
        stopped = cluster.stop()
    assert second_job in stopped.jobs
    assert throwaway_slurm.wait_no_jobs() == []
    assert_all_gone(second_pids | controller_family, timeout=30)
