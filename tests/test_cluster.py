import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ipyparallel
import psutil
import pytest

from course_lib import _processes
from course_lib.cluster import (
    LauncherUnavailable,
    add_engines,
    cluster_processes,
    course_cluster,
    default_n_engines,
    engine_hosts,
    engine_pids,
    launcher_available,
    local_cluster,
    one_engine_per_host,
)


def test_shared_cluster_has_two_engines(client):
    assert len(client.ids) == 2
    assert client[:].apply_sync(lambda: 6 * 7) == [42, 42]


def test_engines_are_other_processes(client):
    pids = engine_pids(client)
    assert len(set(pids.values())) == 2
    assert os.getpid() not in pids.values()
    for pid in pids.values():
        assert psutil.pid_exists(pid)


def test_engine_hosts_names_this_host(client):
    hosts = engine_hosts(client)
    assert sorted(hosts) == sorted(client.ids)
    assert set(hosts.values()) == {socket.gethostname()}


def test_one_engine_per_host_on_one_host(client):
    view = one_engine_per_host(client)
    assert isinstance(view, ipyparallel.DirectView)
    assert len(view.targets) == 1
    assert view.apply(socket.gethostname) == [socket.gethostname()]


def test_controller_listens_on_loopback_only(client):
    listening = []
    for proc in cluster_processes(client.cluster):
        for conn in proc.net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN:
                listening.append(conn.laddr.ip)
    assert listening, "the cluster listens on no socket at all?"
    assert set(listening) == {"127.0.0.1"}


def test_default_engine_count_honours_affinity():
    n = default_n_engines()
    assert n >= 1
    if hasattr(os, "sched_getaffinity"):
        assert n <= len(os.sched_getaffinity(0))


@pytest.mark.parametrize("bad", [0, -2])
def test_bad_engine_count_value(bad):
    with pytest.raises(ValueError, match=str(bad)):
        with local_cluster(bad):
            pass


@pytest.mark.parametrize("bad", [1.5, "2", True])
def test_bad_engine_count_type(bad):
    with pytest.raises(TypeError, match=repr(bad)):
        with local_cluster(bad):
            pass


def test_everything_stops_after_the_block_and_engines_can_be_added(assert_all_gone):
    with local_cluster(1) as rc:
        assert len(rc.ids) == 1
        new_ids = add_engines(rc, 1)
        assert len(new_ids) == 1
        assert len(rc.ids) == 2
        assert len(set(rc[:].apply_sync(os.getpid))) == 2
        pids = [p.pid for p in cluster_processes(rc.cluster)]
        # controller, its scheduler process, 2 engines
        assert len(pids) == 4
        assert set(engine_pids(rc).values()) <= set(pids)
    assert_all_gone(pids)


def test_everything_stops_when_the_block_raises(assert_all_gone):
    with pytest.raises(RuntimeError, match="student bug"):
        with local_cluster(1) as rc:
            pids = [p.pid for p in cluster_processes(rc.cluster)]
            raise RuntimeError("student bug")
    assert_all_gone(pids)


def _spin_forever():
    # A tight loop in C code: SIGINT/SIGTERM handlers in Python never run.
    import time

    while True:
        time.sleep(0)


def test_engine_stuck_in_a_task_is_killed(assert_all_gone):
    with local_cluster(1) as rc:
        pids = [p.pid for p in cluster_processes(rc.cluster)]
        stuck = rc[:].apply_async(_spin_forever)
        time.sleep(1.0)
        assert not stuck.ready()
    assert_all_gone(pids, timeout=15)


def _live_children():
    return {p.pid for p in _processes.process_tree(os.getpid())[1:]}


def test_timeout_stops_what_was_started(assert_all_gone):
    before = _live_children()
    with pytest.raises(TimeoutError, match="did not finish within 0.2 s"):
        with local_cluster(2, timeout=0.2):
            pass
    assert_all_gone(_live_children() - before)


def test_add_engines_needs_a_cluster(client):
    with pytest.raises(ValueError, match="no cluster"):
        add_engines(object(), 1)


def test_start_and_stop_across_notebook_cells(assert_all_gone):
    cluster = local_cluster(1)
    assert "stopped" in repr(cluster)
    rc = cluster.start()
    try:
        assert "running, 1 engines" in repr(cluster)
        assert cluster.start() is rc  # a cell run twice gets the running cluster back
        pids = [p.pid for p in cluster_processes(rc.cluster)]
    finally:
        stopped = cluster.stop()
    assert sorted(pids) == list(stopped.pids)
    assert "stopped the local cluster of 1 engine(s)" in str(stopped)
    assert "nothing left running" in str(stopped)
    assert str(cluster.stop()) == "nothing was running"  # idempotent
    assert_all_gone(pids)


def test_start_says_how_it_goes_and_progress_false_says_nothing(assert_all_gone, capsys):
    cluster = local_cluster(1)
    try:
        cluster.start()
        out = capsys.readouterr().out
    finally:
        pids = [p.pid for p in cluster_processes(cluster.cluster)]
        cluster.stop()
    # One line, rewritten in place (carriage returns), ending with the count and the time.
    assert out.count("\n") == 1 and out.startswith("\r")
    assert re.search(
        r"\r1 of 1 engines answering after \d+\.\d s \(local cluster on 127.0.0.1\)\n$", out
    )
    assert all(
        re.fullmatch(r"Starting 1 local engines: [01] of 1 answering, \d+\.\d s", part)
        for part in out.rstrip("\n").split("\r")[1:-1]
    )
    assert_all_gone(pids)
    quiet = local_cluster(1, progress=False)
    try:
        quiet.start()
    finally:
        quiet.stop()
    assert capsys.readouterr().out == ""


def test_setup_cell_run_twice_stops_the_first_cluster(assert_all_gone, capsys):
    # A notebook's setup cell, run twice: a new object each time.
    first = local_cluster(1)
    first_client = first.start()
    first_pids = [p.pid for p in cluster_processes(first_client.cluster)]
    second = local_cluster(1)
    try:
        second_client = second.start()
        assert "stopped the local cluster of 1 engine(s)" in capsys.readouterr().out
        assert "stopped" in repr(first) and "running" in repr(second)
        assert_all_gone(first_pids)
        assert not set(second_client[:].apply_sync(os.getpid)) & set(first_pids)
    finally:
        second.stop()


def test_a_with_block_is_never_stopped_by_another_start(client):
    # The session's cluster runs in a with block; a notebook-style start leaves it alone.
    other = local_cluster(1)
    try:
        other.start()
        assert client[:].apply_sync(lambda: 1) == [1, 1]
    finally:
        other.stop()


def test_folders_of_dead_owners_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = Path(tempfile.gettempdir()) / f"course-ipp-{dead.pid}-test{os.getpid()}"
    stale.mkdir()
    (stale / "owner").write_text(f"{dead.pid} 12345.0\n")
    (stale / "ipcontroller-client.json").write_text("{}")
    me = psutil.Process()
    mine = Path(tempfile.gettempdir()) / f"course-ipp-{me.pid}-test{os.getpid()}"
    mine.mkdir()
    (mine / "owner").write_text(f"{me.pid} {me.create_time()!r}\n")
    unmarked = Path(tempfile.gettempdir()) / f"course-ipp-unmarked-test{os.getpid()}"
    unmarked.mkdir()
    try:
        with local_cluster(1) as rc:
            folder = Path(rc.cluster.profile_dir)
            assert folder.name.startswith(f"course-ipp-{os.getpid()}-")
            assert (folder / "owner").read_text().split()[0] == str(os.getpid())
            assert not stale.exists()
            assert mine.exists() and unmarked.exists()
        assert not folder.exists()
    finally:
        for path in (stale, mine, unmarked):
            shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"engines": "pbs"}, ValueError, "engines == 'pbs'"),
        ({"engines": "ssh"}, ValueError, "SSHEngineSetLauncher"),
        ({"config": ["mpi_cmd"]}, TypeError, "['mpi_cmd']"),
        ({"config": {"Cluster": 3}}, TypeError, "{'Cluster': 3}"),
        ({"timeout": 0}, ValueError, "timeout == 0"),
        (
            {"engines": "mpi", "config": {"MPIEngineSetLauncher": {"mpi_cmd": ["no-mpiexec"]}}},
            LauncherUnavailable,
            "'no-mpiexec' is not on PATH",
        ),
    ],
)
def test_bad_launcher_input_is_refused_before_anything_starts(kwargs, error, words):
    before = _live_children()
    with pytest.raises(error, match=re.escape(words)):
        course_cluster(2, **kwargs)
    assert _live_children() == before


def test_no_sbatch_on_path_is_refused(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(LauncherUnavailable, match="sbatch, scancel, squeue on PATH"):
        course_cluster(2, engines="slurm")
    assert launcher_available("slurm")[0] is False
    assert "sbatch" in launcher_available("slurm")[1]


_ORPHAN_SCRIPT = """
import os, signal, sys, time
from course_lib.cluster import cluster_processes, local_cluster
cluster = local_cluster(1, progress=False)
client = cluster.start()
print(" ".join(str(p.pid) for p in cluster_processes(client.cluster)), flush=True)
if sys.argv[1] == "wait":
    time.sleep(120)
# "exit": leave without stopping, as a kernel that is shut down would
"""


@pytest.mark.parametrize("how", ["exit", "sigterm"])
def test_process_exit_stops_the_cluster(how, assert_all_gone):
    proc = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN_SCRIPT, "exit" if how == "exit" else "wait"],
        stdout=subprocess.PIPE,
        text=True,
    )
    pids = [int(pid) for pid in proc.stdout.readline().split()]
    assert len(pids) >= 3
    if how == "sigterm":
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    assert_all_gone(pids)


def test_controller_keeps_no_copy_of_data_sent_to_engines(client):
    # ipyparallel's default task database keeps every request with its buffers
    # (measured: +300 MB in the controller after pushing 3 x 2 x 50 MB).
    # The course's controller has none: asking it for a task's record fails.
    sent = client[:].apply_async(len, b"x" * 2**20)
    assert sent.get() == [2**20, 2**20]
    with pytest.raises(ipyparallel.error.RemoteError, match="NoData"):
        client.db_query({"msg_id": {"$in": sent.msg_ids}}, keys=["buffers"])
