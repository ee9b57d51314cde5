"""Lesson 7 (scaling out): real SSH, MPI and Slurm launchers, and the autograder on other answers.

The lesson's own cluster is local (Binder has no second host). Here the
launchers it teaches run for real: a throw-away sshd on 127.0.0.1 lets
``course_cluster(engines="ssh")`` start two engines "on another host", which
run a search with ``course_lib.search`` and are stopped through the launcher;
and the lesson's MPI and Slurm cells run against ``mpiexec`` and a throw-away
Slurm (``tests/slurm.py``).

The second part grades other correct answers and typical wrong answers of
every exercise and quiz of the lesson with the course's grading pipeline.
"""

import json
import shutil
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from lesson_answers import LessonAnswerTests
from nbclient import NotebookClient
from slurm import slurm_daemons, throwaway_slurm  # noqa: F401 (fixtures)
from sshd import ThrowawaySSHD, find_sshd
from system_tools import unavailable
from traitlets.config import Config

from course_lib import _processes
from course_lib.cluster import course_cluster, engine_pids
from course_lib.search import evaluate, launch_search
from course_lib.splits import persist_cv_splits

LESSON = "07_scaling_out"
REPO = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------
# Engines on "another host", through ipyparallel's SSH launcher
# --------------------------------------------------------------------------


@pytest.fixture
def sshd_server(tmp_path):
    """A throw-away sshd on 127.0.0.1, stopped by PID afterwards."""
    path, why = find_sshd()
    if path is None:
        unavailable("sshd", why)
    server = ThrowawaySSHD(tmp_path / "sshd", path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        assert not server.processes(), "sshd is still running"


def _kill(pids):
    _processes.stop(list(pids), grace=2.0)


def _ssh_cluster(server, remote_dir):
    """course_lib's cluster whose 2 engines start through ssh to ``server``.

    The launcher's settings are ipyparallel's own traits; course_lib adds the
    controller on 127.0.0.1, the environment's python as ``remote_python`` (a
    command run through ssh gets a bare PATH), and engines without a nanny (so
    the PID the launcher gets back is the engine's own).
    """
    config = Config()
    launcher = config.SSHEngineSetLauncher
    launcher.engines = {f"{server.user}@127.0.0.1": 2}
    launcher.ssh_args = ["-p", str(server.port), *server.options]
    launcher.scp_args = ["-P", str(server.port), *server.options]  # scp spells it -P
    launcher.remote_profile_dir = str(remote_dir / "profile")
    # Engines write nothing to ~/.ipython; BLAS does not oversubscribe.
    launcher.environment = {"IPYTHONDIR": str(remote_dir / "ipython"), "OMP_NUM_THREADS": "1"}
    return course_cluster(2, engines="ssh", config=config, timeout=120)


@pytest.mark.slow
def test_ssh_launcher_engines_run_a_search_and_stop(sshd_server, tmp_path, assert_all_gone):
    from sklearn.datasets import load_digits
    from sklearn.svm import SVC

    remote_dir = tmp_path / "remote-host"
    cluster = _ssh_cluster(sshd_server, remote_dir)
    client, pids, controller_pids = None, {}, set()
    ssh_clients_before = {p.pid for p in psutil.Process().children(recursive=True)}
    timings = {"sshd start to first ssh": sshd_server.startup_seconds}
    try:
        started = time.monotonic()
        client = cluster.start()
        timings["start to 2 engines registered"] = time.monotonic() - started
        controller = psutil.Process(client.cluster.controller.pid)
        controller_pids = {controller.pid, *(c.pid for c in controller.children(recursive=True))}

        # They came through ssh: detached from us, with sshd's variables.
        pids = engine_pids(client)
        (engine_set,) = client.cluster.engines.values()
        assert {launcher.pid for launcher in engine_set.launchers.values()} == set(pids.values())
        ours = {p.pid for p in psutil.Process().children(recursive=True)}
        for pid in pids.values():
            environ = psutil.Process(pid).environ()
            assert "SSH_CONNECTION" in environ, f"engine {pid} was not started through ssh"
            assert environ["SSH_CONNECTION"].split()[-1] == str(sshd_server.port)
            assert pid not in ours, f"engine {pid} is a child of the test, not of the ssh session"
        # The launcher copied the connection file (and its key) to the "remote" profile.
        copies = list((remote_dir / "profile" / "security").glob("*-engine.json"))
        assert copies, "no connection file in the remote profile: scp failed"
        local = next((Path(client.cluster.profile_dir) / "security").glob("*-engine.json"))
        assert json.loads(copies[0].read_text())["key"] == json.loads(local.read_text())["key"]

        # A search of course_lib runs on them.
        X, y = load_digits(return_X_y=True)
        paths = persist_cv_splits(X[:300], y[:300], 3, tmp_path / "splits", "digits")
        started = time.monotonic()
        run = launch_search(
            client.load_balanced_view(), SVC(), {"C": [1, 10], "gamma": [1e-3, 1e-2]}, paths
        )
        assert run.wait(timeout=120, progress_bar=False), run.report()
        timings["search of 12 tasks"] = time.monotonic() - started
        assert not run.errors, run.report()
        results = run.results()
        assert len(results) == 12
        assert {r["pid"] for r in results} <= set(pids.values())
        first = results[0]
        expected = evaluate(first["split_path"], SVC(), first["params"])["test_score"]
        assert first["test_score"] == pytest.approx(expected)

        # Stopped through the launcher: ssh kills them on the "remote" host.
        started = time.monotonic()
        stopped = cluster.stop()
        assert "stopped the ssh cluster of 2 engine(s)" in str(stopped)
        assert_all_gone(pids.values(), timeout=30)
        timings["stop engines through ssh"] = time.monotonic() - started
    finally:
        cluster.stop()
        _kill(pids.values())
        _kill(controller_pids)
        # The connection file on the remote host holds the controller's key.
        shutil.rmtree(remote_dir, ignore_errors=True)
    assert_all_gone([*pids.values(), *controller_pids], timeout=15)
    assert not remote_dir.exists()
    # No ssh or scp client of the launcher outlives the cluster.
    deadline = time.monotonic() + 15
    while True:
        extra = [
            p
            for p in psutil.Process().children(recursive=True)
            if p.pid not in ssh_clients_before and _processes.alive(p.pid)
        ]
        if not extra or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    _kill(p.pid for p in extra)
    assert not extra, f"processes left by the launcher: {[p.cmdline()[:3] for p in extra]}"
    print("\n".join(f"{name}: {seconds:.1f} s" for name, seconds in timings.items()))


# --------------------------------------------------------------------------
# The lesson's MPI and Slurm cells, run for real
# --------------------------------------------------------------------------

#: The imports, setup, the MPI cells (a function, then its run), the Slurm cell, and the
#: last cell (which stops the cluster).
REAL_LAUNCHER_CELLS = [
    "cell-002-imports",
    "cell-002",
    "cell-010b",
    "cell-010b-b",
    "cell-010d",
    "cell-045",
]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_lesson_starts_mpi_and_slurm_engines_for_real(
    throwaway_slurm,  # noqa: F811
    tmp_path,
    assert_all_gone,
):
    nb = nbformat.read(REPO / "solutions" / LESSON / f"{LESSON}.ipynb", as_version=4)
    nb.cells = [cell for cell in nb.cells if cell.get("id") in REAL_LAUNCHER_CELLS]
    assert [cell.id for cell in nb.cells] == REAL_LAUNCHER_CELLS
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    text = {
        cell.id: "".join(out.get("text", "") for out in cell.outputs if "text" in out)
        for cell in nb.cells
    }
    mpi, slurm_text = text["cell-010b-b"], text["cell-010d"]
    assert "shown, not run" not in mpi + slurm_text
    assert "MPI rank 0 of 2" in mpi and "MPI rank 1 of 2" in mpi, mpi
    assert "child of hydra_pmi_proxy" in mpi, mpi
    assert "stopped the mpi cluster of 2 engine(s)" in mpi and "nothing left running" in mpi
    assert "2 engines answering" in slurm_text, slurm_text
    assert " R " in slurm_text, slurm_text  # squeue lists the job as running
    assert "Slurm job(s)" in slurm_text and "cancelled, nothing left running" in slurm_text
    assert throwaway_slurm.wait_no_jobs() == []
    left = {p.pid for p in psutil.Process().children(recursive=True)} - before
    assert_all_gone(left, timeout=30)


# --------------------------------------------------------------------------
# The autograder on other correct answers and on typical wrong ones
# --------------------------------------------------------------------------


# Correct answers written differently from the reference.
ALTERNATIVE = {
    # a list, in another order, one letter upper case
    "quiz-expose": """
        answer_safe_ways = ["C", "b"]
        """,
    # a float
    "quiz-copies": """
        answer_copies = 4.0
        """,
    # the arithmetic written out
    "quiz-retries": """
        answer_submitted = 200 + 4 * 1
        answer_errors = len([])
        """,
    # the secret removed rather than replaced; pathlib instead of open
    "ex-connection": """
        def shareable_connection(path):
            import json as js
            from pathlib import Path

            info = js.loads(Path(path).read_text())
            info.pop("key")
            return info
        """,
    # a statement executed on the engines and a variable pulled back, not a function
    "ex-hosts": """
        def engines_by_host(client):
            view = client[:]
            view.execute("import socket; _my_host = socket.gethostname()", block=True)
            names = view.pull("_my_host", block=True)
            hosts = {}
            for engine_id, name in sorted(zip(view.targets, names)):
                hosts.setdefault(name, []).append(engine_id)
            return hosts
        """,
    # ipyparallel's Cluster itself, rows as lists, numpy integers
    "ex-mpi": """
        def mpi_report(n_engines=2):
            from traitlets.config import Config

            from course_lib.cluster import find_mpiexec

            def ask():
                import socket

                import numpy
                from mpi4py import MPI

                world = MPI.COMM_WORLD
                return [numpy.int64(world.rank), numpy.int64(world.size), socket.gethostname()]

            config = Config()
            config.MPIEngineSetLauncher.mpi_cmd = [find_mpiexec()]
            with ipp.Cluster(engines="mpi", n=n_engines, controller_ip="127.0.0.1",
                             log_level=40, config=config) as rc:
                rows = rc[:].apply_sync(ask)
            return sorted(rows, key=lambda row: row[0])
        """,
    # its own loop of apply_async, engine ids from the task metadata
    "ex-grow": """
        def grow_search(client, estimator, param_space, split_paths, n_new=1):
            from sklearn.model_selection import ParameterGrid

            from course_lib.search import evaluate

            view = client.load_balanced_view()
            tasks = [view.apply_async(evaluate, path, estimator, params)
                     for params in ParameterGrid(param_space) for path in split_paths]
            add_engines(client, n_new)
            counts = {}
            for task in tasks:
                task.get()
                engine = task.metadata["engine_id"]
                counts[engine] = counts.get(engine, 0) + 1
            return counts
        """,
}

# Typical mistakes, and the words of the message that should explain each.
WRONG = {
    # thinks the addresses are the secret, keeps the key
    "ex-connection": (
        """
        def shareable_connection(path):
            with open(path) as file:
                info = json.load(file)
            return {name: value for name, value in info.items()
                    if name not in ("interface", "location")}
        """,
        "is still in what you would share",
    ),
    # the notebook's host name, not the engines': right on one host only
    "ex-hosts": (
        """
        def engines_by_host(client):
            return {socket.gethostname(): sorted(client.ids)}
        """,
        "Ask each engine for socket.gethostname()",
    ),
    # started, asked, but never stopped
    "ex-mpi": (
        """
        def mpi_report(n_engines=2):
            def ask():
                import socket

                from mpi4py import MPI

                return MPI.COMM_WORLD.Get_rank(), MPI.COMM_WORLD.Get_size(), socket.gethostname()

            mpi_client = course_cluster(n_engines, engines="mpi").start()
            return sorted(mpi_client[:].apply_sync(ask))
        """,
        "stop the engines and the controller before returning",
    ),
    # the engine joins once the search is over
    "ex-grow": (
        """
        def grow_search(client, estimator, param_space, split_paths, n_new=1):
            run = launch_search(client.load_balanced_view(), estimator, param_space, split_paths)
            run.wait(progress_bar=False)
            add_engines(client, n_new)
            return dict(Counter(result["engine_id"] for result in run.results()))
        """,
        "add it while the search runs",
    ),
    # one copy per engine
    "quiz-copies": (
        """
        answer_copies = 32
        """,
        "not the right answer yet",
    ),
}

TEST_OF = {
    "quiz-expose": "test-quiz-expose",
    "quiz-copies": "test-quiz-copies",
    "quiz-retries": "test-quiz-retries",
    "ex-mpi": "test-mpi",
    "ex-connection": "test-connection",
    "ex-hosts": "test-hosts",
    "ex-grow": "test-grow",
}


# Wrong in exercise 2 (the secret removed from the lesson's own connection file, in place),
# right everywhere else: the exercises after it must not pay for that mistake.
REWRITES_THE_FILE = {
    "ex-connection": """
        def shareable_connection(path):
            with open(path) as file:
                info = json.load(file)
            info["key"] = "<redacted>"
            with open(path, "w") as file:
                json.dump(info, file)
            return info


        shareable_connection(client_file)  # the lesson's own file loses its key
        """,
}


@pytest.mark.timeout(1200)
class TestLesson07Answers(LessonAnswerTests):
    LESSON = LESSON
    ALTERNATIVE = ALTERNATIVE
    WRONG = WRONG
    TEST_OF = TEST_OF
    EXTRA_STUDENTS = {"rewrites-the-file": REWRITES_THE_FILE}

    @pytest.mark.slow
    def test_a_mistake_in_one_exercise_costs_only_that_exercise(self, graded):
        outcome = graded.outcome("rewrites-the-file")
        assert outcome.status == "graded", outcome.message
        assert outcome.cells["test-connection"][0] == 0
        assert "changed the file" in self.error_text(outcome, "test-connection")
        others = {gid: s for gid, s in outcome.cells.items() if gid != "test-connection"}
        assert all(score == maximum for score, maximum in others.values()), others
        assert others["test-grow"][1] > 0
        assert not outcome.leftovers
