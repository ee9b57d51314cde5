"""Start, use and always stop an ipyparallel cluster: local, SSH, MPI or Slurm.

The lessons start their engines with :func:`local_cluster`, and
:func:`course_cluster` starts them with a launcher (``engines="ssh"``,
``"mpi"`` or ``"slurm"``) configured in ipyparallel's own terms. Both give a
context manager over :class:`ipyparallel.Cluster` that

* binds every socket to the loopback interface (127.0.0.1) when every engine
  runs on this host,
* starts fast (a 500 ms heartbeat instead of 3 s: engines register sooner),
* waits, with a finite timeout, until every engine answers,
* and stops every process it started when the block ends, whatever the
  reason: normal exit, an exception, ``KeyboardInterrupt``, the kernel
  shutting down (``atexit``) or being sent ``SIGTERM``. Engines stuck in C
  code ignore ``SIGTERM``: they are killed by PID after a short grace period.

Each cluster keeps its files in a ``course-ipp-<pid>-*`` temporary folder;
folders whose owner process died are removed when the next cluster starts.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import importlib.util
import logging
import numbers
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import ipyparallel
import joblib
import psutil
from ipyparallel.cluster.launcher import SSHLauncher
from traitlets.config import Config

from course_lib import _processes
from course_lib._validation import check_int

__all__ = [
    "LAUNCHERS",
    "CourseCluster",
    "LauncherUnavailable",
    "LocalCluster",
    "Stopped",
    "add_engines",
    "cluster_processes",
    "course_cluster",
    "default_n_engines",
    "engine_pids",
    "engine_hosts",
    "find_mpiexec",
    "launcher_available",
    "local_cluster",
    "one_engine_per_host",
    "remove_stale_folders",
    "slurm_partition",
    "stop_cluster",
]

#: Seconds a process gets to exit after SIGTERM before it is killed.
STOP_GRACE_SECONDS = 3.0

#: Heartbeat period of the controller, in milliseconds. ipyparallel's default
#: is 3000; engines register only after a heartbeat, so a short period makes
#: start-up much faster (measured in ``bench/startup.py``).
HEARTBEAT_MS = 500

# The LocalCluster objects started and not yet stopped. This registry is the
# module's only global state: it lets atexit and SIGTERM stop them all.
_running_clusters = []
_registry_lock = threading.Lock()
_previous_sigterm_handler = None


def default_n_engines():
    """Number of CPUs this process may really use, at least 1.

    ``os.cpu_count()`` counts the host's cores, which in a Binder or
    JupyterHub container can be dozens more than the container may use.
    :func:`joblib.cpu_count` honours CPU affinity and the cgroup CPU quota.

    Examples
    --------
    >>> default_n_engines() >= 1
    True
    """
    return max(1, int(joblib.cpu_count()))


def _check_timeout(timeout):
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real):
        raise TypeError(f"timeout must be a number of seconds, but got {timeout!r}.")
    if not timeout > 0:
        raise ValueError(f"timeout == {timeout!r}, must be > 0 seconds.")
    return float(timeout)


def cluster_processes(cluster):
    """Every live process a cluster started on this host: controller, engines, mpiexec.

    Parameters
    ----------
    cluster : ipyparallel.Cluster
        A cluster started on this host.

    Returns
    -------
    list of psutil.Process
        The launched processes and all their descendants.
    """
    launchers = []
    if cluster.controller is not None:
        launchers.append(cluster.controller)
    for engine_set in cluster.engines.values():
        # A local set holds one launcher per engine; an MPI set is one process
        # (mpiexec) itself; SSH and batch (Slurm) sets have no local process.
        launchers.extend(getattr(engine_set, "launchers", {}).values())
        launchers.append(engine_set)
    processes = {}
    for launcher in launchers:
        if isinstance(launcher, SSHLauncher):
            continue  # its pid is the engine's on the remote host, not one of ours
        pid = getattr(launcher, "pid", -1)
        if pid is None or pid <= 0:
            continue
        for proc in _processes.process_tree(pid):
            processes[proc.pid] = proc
    return list(processes.values())


def stop_cluster(cluster, client=None, *, grace=STOP_GRACE_SECONDS):
    """Close the client, stop engines (jobs) and controller, kill what stays alive.

    Engines go first: their tasks may be stuck in C code, where SIGTERM is
    ignored, so every process left after ``grace`` seconds is killed by PID.
    Safe to call twice.

    Parameters
    ----------
    cluster : ipyparallel.Cluster
    client : ipyparallel.Client, optional
    grace : float
        Seconds each process gets after SIGTERM before SIGKILL.

    Returns
    -------
    list of psutil.Process
        Processes that could not be stopped (normally empty).
    """
    processes = cluster_processes(cluster)
    controller_family = _controller_family(cluster)
    if client is not None:
        with contextlib.suppress(Exception):
            client.close()
    with contextlib.suppress(Exception):
        _processes.stop([p for p in processes if p.pid not in controller_family], grace)
    # One engine set at a time: a set already gone (a cancelled Slurm job makes
    # scancel fail) must not keep the others, or the controller, running.
    for engine_set_id in list(cluster.engines):
        with contextlib.suppress(Exception):
            cluster.stop_engines_sync(engine_set_id)
    with contextlib.suppress(Exception):
        cluster.stop_controller_sync()
    return _processes.stop(processes, grace)


def _controller_family(cluster):
    """PIDs of the controller and its children (its schedulers)."""
    pid = getattr(cluster.controller, "pid", None)
    if not pid or pid <= 0:
        return set()
    try:
        root = psutil.Process(pid)
        return {pid, *(child.pid for child in root.children(recursive=True))}
    except psutil.Error:
        return {pid}


def _stop_all_clusters():
    with _registry_lock:
        running = list(_running_clusters)
    for cluster in running:
        with contextlib.suppress(Exception):
            cluster.stop(grace=1.0)


def _on_sigterm(signum, frame):
    _stop_all_clusters()
    if callable(_previous_sigterm_handler):
        _previous_sigterm_handler(signum, frame)
    else:
        raise SystemExit(128 + signum)


def _install_exit_hooks():
    """Stop clusters at interpreter exit and on SIGTERM (kernel shutdown)."""
    global _previous_sigterm_handler
    if getattr(_install_exit_hooks, "done", False):
        return
    atexit.register(_stop_all_clusters)
    if threading.current_thread() is threading.main_thread():
        current = signal.getsignal(signal.SIGTERM)
        if current is not _on_sigterm:
            _previous_sigterm_handler = current if callable(current) else None
            signal.signal(signal.SIGTERM, _on_sigterm)
    _install_exit_hooks.done = True


# --------------------------------------------------------------------------
# Launchers: local, ssh, mpi, slurm
# --------------------------------------------------------------------------

#: The ways :func:`course_cluster` can start engines (``engines=``).
LAUNCHERS = ("local", "ssh", "mpi", "slurm")

#: Slurm time limit of the engines' job unless the config sets one: a
#: forgotten job (and its bill) ends then.
SLURM_TIMELIMIT = "01:00:00"

_LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}
_FOLDER_PREFIX = "course-ipp-"
_OWNER_FILE = "owner"


class LauncherUnavailable(RuntimeError):
    """This machine lacks what a launcher needs (``mpiexec``, ``mpi4py``, Slurm).

    Not a mistake in the code that asked for it: a lesson's test raises it
    when the machine cannot run the exercise, and grading reports it as such.
    """


def _check_config(config):
    """ipyparallel config traits: a Config or ``{"Section": {"trait": value}}``."""
    if config is None:
        return Config()
    if not isinstance(config, Mapping) or not all(
        isinstance(name, str) and isinstance(section, Mapping) for name, section in config.items()
    ):
        raise TypeError(
            "config must be a traitlets Config or a dict of sections, e.g. "
            '{"SlurmEngineSetLauncher": {"timelimit": "30"}}, but got '
            f"{config!r} (of type {type(config).__name__})."
        )
    return Config(copy.deepcopy(dict(config)))


def _run_tool(command, timeout=30):
    """stdout of a short command line tool, or RuntimeError naming it and what it said."""
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise LauncherUnavailable(f"`{' '.join(command)}` failed: {error}") from error
    if done.returncode != 0:
        raise LauncherUnavailable(
            f"`{' '.join(command)}` exited with {done.returncode}: {done.stderr.strip()[-500:]}"
        )
    return done.stdout


def find_mpiexec():
    """The ``mpiexec`` to use: the course environment's own (PyPI ``mpich``), else PATH's.

    Returns
    -------
    str or None

    Examples
    --------
    >>> path = find_mpiexec()
    >>> path is None or path.endswith("mpiexec")
    True
    """
    own = os.path.join(sys.prefix, "bin", "mpiexec")
    if os.access(own, os.X_OK):
        return own
    return shutil.which("mpiexec")


def _is_open_mpi(mpiexec):
    with contextlib.suppress(RuntimeError):
        text = _run_tool([mpiexec, "--version"], timeout=20)
        return "Open MPI" in text or "OpenRTE" in text
    return False


def slurm_partition(partition=None):
    """Name, total CPUs and node addresses of a Slurm partition (default: Slurm's default).

    Parameters
    ----------
    partition : str, optional

    Returns
    -------
    dict
        ``{"name": str, "cpus": int, "addresses": list of str}``.

    Raises
    ------
    RuntimeError
        If ``sinfo`` is missing or cannot reach the controller.
    ValueError
        If the partition does not exist.
    """
    if shutil.which("sinfo") is None:
        raise LauncherUnavailable("sinfo is not on PATH: is Slurm installed (slurm-client)?")
    try:
        names = _run_tool(["sinfo", "-h", "-o", "%P"]).split()
    except LauncherUnavailable as error:
        raise LauncherUnavailable(
            f"Slurm is not reachable ({error}). On a cluster, run this on a login node; "
            "with a Slurm of your own, set SLURM_CONF to its slurm.conf."
        ) from error
    default = next((name[:-1] for name in names if name.endswith("*")), None)
    known = [name.rstrip("*") for name in names]
    name = partition or default
    if name not in known:
        raise ValueError(
            f"Slurm partition {name!r} does not exist: choose one of {known} with "
            'config={"SlurmEngineSetLauncher": {"queue": ...}}.'
        )
    cpus, addresses = 0, []
    for line in _run_tool(["sinfo", "-h", "-N", "-p", name, "-o", "%o %C"]).splitlines():
        address, counts = line.split()
        addresses.append(address)
        cpus += int(counts.split("/")[-1])
    return {"name": name, "cpus": cpus, "addresses": addresses}


def _this_host():
    return {socket.gethostname(), socket.getfqdn(), *_LOOPBACK_NAMES}


def _host_of(target):
    """Host part of an SSH target such as ``alice@node3:2222``."""
    return target.rsplit("@", 1)[-1].split(":")[0]


def _address_for_engines_on(hosts):
    """127.0.0.1 when every engine host is this one, else this host's address towards them.

    That is the address of the interface that routes to the first other host
    (a UDP ``connect`` sends nothing), not ``gethostbyname(gethostname())``,
    which is 127.0.1.1 on many Linux systems.
    """
    others = [host for host in hosts if host not in _this_host()]
    if not others:
        return "127.0.0.1"
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((others[0], 9))
        return probe.getsockname()[0]
    return socket.gethostbyname(socket.gethostname())


def _mpi_hosts(mpi_args):
    """Hosts named by mpiexec's ``-hosts a,b`` or host file; empty when there is none."""
    hosts = []
    for flag, value in zip(mpi_args, mpi_args[1:], strict=False):
        if flag in ("-host", "-hosts", "--host"):
            hosts.extend(name.split(":")[0] for name in value.split(","))
        elif flag in ("-f", "-hostfile", "--hostfile", "-machinefile", "--machinefile"):
            with contextlib.suppress(OSError):
                for line in Path(value).read_text().splitlines():
                    words = line.split("#")[0].split()
                    if words:
                        hosts.append(words[0].split(":")[0])
    return hosts


def _launcher_settings(engines, n_engines, config):
    """Check that ``engines`` can start ``n_engines`` here; its defaults as config.

    Runs before anything starts. Returns ``(defaults, controller_ip)``.
    """
    defaults = Config()
    if engines == "local":
        return defaults, "127.0.0.1"
    if engines == "ssh":
        if shutil.which("ssh") is None:
            raise LauncherUnavailable(
                "engines='ssh' needs the `ssh` command: install OpenSSH's client."
            )
        hosts = config.get("SSHEngineSetLauncher", {}).get("engines")
        if not hosts:
            raise ValueError(
                "engines='ssh' needs the hosts to start engines on: pass "
                'config={"SSHEngineSetLauncher": {"engines": {"node1": 2, "node2": 2}}}.'
            )
        defaults.SSHEngineSetLauncher.remote_python = sys.executable
        return defaults, _address_for_engines_on(_host_of(host) for host in hosts)
    if engines == "mpi":
        launcher = config.get("MPIEngineSetLauncher", {})
        mpi_cmd = launcher.get("mpi_cmd") or [find_mpiexec() or "mpiexec"]
        if shutil.which(mpi_cmd[0]) is None:
            raise LauncherUnavailable(
                f"engines='mpi' needs mpiexec, and {mpi_cmd[0]!r} is not on PATH: install the "
                "course's `cluster` extra (pip install -e '.[cluster]': MPICH from PyPI), load "
                "your cluster's MPI (`module load openmpi`), or set "
                'config={"MPIEngineSetLauncher": {"mpi_cmd": ["/path/to/mpiexec"]}}.'
            )
        if importlib.util.find_spec("mpi4py") is None:
            raise LauncherUnavailable(
                "engines='mpi' needs mpi4py on the engines (ipyparallel's --mpi imports it): "
                "pip install -e '.[cluster]' or pip install mpi4py."
            )
        defaults.MPIEngineSetLauncher.mpi_cmd = list(mpi_cmd)
        mpi_args = list(launcher.get("mpi_args", []))
        if _is_open_mpi(mpi_cmd[0]):
            # Open MPI refuses root, and more ranks than cores, unless told.
            if os.geteuid() == 0 and "--allow-run-as-root" not in mpi_args:
                mpi_args.append("--allow-run-as-root")
            if n_engines > default_n_engines() and "--oversubscribe" not in mpi_args:
                mpi_args.append("--oversubscribe")
        defaults.MPIEngineSetLauncher.mpi_args = mpi_args
        hosts = _mpi_hosts(mpi_args)
        return defaults, _address_for_engines_on(hosts)
    # slurm
    missing = [tool for tool in ("sbatch", "scancel", "squeue") if shutil.which(tool) is None]
    if missing:
        raise LauncherUnavailable(
            f"engines='slurm' needs {', '.join(missing)} on PATH: run this on your cluster's "
            "login node, or install Slurm's client (apt-get install slurm-client)."
        )
    launcher = config.get("SlurmEngineSetLauncher", {})
    partition = slurm_partition(launcher.get("queue") or None)
    if n_engines > partition["cpus"]:
        raise ValueError(
            f"n_engines == {n_engines}, but Slurm partition {partition['name']!r} has "
            f"{partition['cpus']} CPUs in all, so the job would never start: ask for at most "
            f"{partition['cpus']} engines, or choose a larger partition with "
            'config={"SlurmEngineSetLauncher": {"queue": ...}}.'
        )
    defaults.SlurmEngineSetLauncher.timelimit = SLURM_TIMELIMIT
    return defaults, _address_for_engines_on(partition["addresses"])


def launcher_available(engines, n_engines=2, config=None):
    """Whether this machine can start ``n_engines`` engines with ``engines``, and why not.

    Lessons use it to run a launcher for real where the machine has it, and to
    say plainly that they only show its configuration elsewhere.

    Parameters
    ----------
    engines : {"local", "ssh", "mpi", "slurm"}
    n_engines : int, default=2
    config : Config or dict, optional
        ipyparallel settings, as for :func:`course_cluster`.

    Returns
    -------
    (bool, str)
        True and ``""``, or False and the reason with its fix.

    Examples
    --------
    >>> launcher_available("local")
    (True, '')
    """
    if engines not in LAUNCHERS:
        raise ValueError(f"engines == {engines!r}, must be one of {LAUNCHERS}.")
    try:
        _launcher_settings(engines, check_int(n_engines, "n_engines"), _check_config(config))
    except (LauncherUnavailable, ValueError) as error:
        return False, str(error)
    return True, ""


def _owner_alive(folder):
    """False when the process that made a cluster folder is gone (or its PID was reused)."""
    try:
        pid, created = (folder / _OWNER_FILE).read_text().split()
        return abs(psutil.Process(int(pid)).create_time() - float(created)) < 1.0
    except (OSError, ValueError):
        return True  # not ours, or being written: leave it
    except psutil.Error:
        return False


def remove_stale_folders(folder=None):
    """Remove the cluster folders whose owner process is gone (as joblib does).

    A kernel that dies without its exit hooks (killed, out of memory) leaves
    its ``course-ipp-<pid>-*`` folder behind, connection files and key
    included. Folders of live owners, and any folder without an owner mark,
    are left alone.

    Parameters
    ----------
    folder : path, optional
        Where cluster folders are made. Default: the temporary folder.

    Returns
    -------
    list of str
        The folders removed.

    Examples
    --------
    >>> isinstance(remove_stale_folders(), list)
    True
    """
    root = Path(folder or tempfile.gettempdir())
    removed = []
    for path in root.glob(f"{_FOLDER_PREFIX}*"):
        if path.is_dir() and not path.is_symlink() and not _owner_alive(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(str(path))
    return removed


def _make_folder():
    """A fresh ``course-ipp-<pid>-*`` folder, marked with its owner."""
    remove_stale_folders()
    folder = Path(tempfile.mkdtemp(prefix=f"{_FOLDER_PREFIX}{os.getpid()}-"))
    me = psutil.Process()
    (folder / _OWNER_FILE).write_text(f"{me.pid} {me.create_time()!r}\n")
    return str(folder)


@dataclass(frozen=True)
class Stopped:
    """What :meth:`CourseCluster.stop` stopped. Its text says so in one line."""

    engines: str
    n_engines: int
    pids: tuple
    left: tuple
    jobs: tuple = ()

    def __str__(self):
        if not self.pids and not self.jobs and not self.n_engines:
            return "nothing was running"
        jobs = f", Slurm job(s) {', '.join(self.jobs)} cancelled" if self.jobs else ""
        left = f"; still alive: {list(self.left)}" if self.left else ", nothing left running"
        return (
            f"stopped the {self.engines} cluster of {self.n_engines} engine(s): "
            f"{len(self.pids)} process(es) {list(self.pids)}{jobs}{left}"
        )

    __repr__ = __str__


class CourseCluster:
    """A controller on this host and engines started by a launcher, always stopped.

    Make one with :func:`local_cluster` or :func:`course_cluster`. Use it as a
    context manager in scripts, or call :meth:`start` and :meth:`stop` in a
    notebook, where a ``with`` block cannot span cells. Every started cluster
    is also stopped when the Python process exits or receives SIGTERM (a
    notebook kernel being shut down).

    A notebook re-runs its setup cell: :meth:`start` of a new cluster first
    stops the cluster of the same kind that this process started earlier with
    :meth:`start` (and prints what it stopped), so clusters never pile up.
    Calling :meth:`start` again on a running cluster gives back its client.

    Attributes
    ----------
    n_engines : int
        Engines started by :meth:`start`.
    engines : str
        The launcher: one of :data:`LAUNCHERS`.
    client : ipyparallel.Client or None
        The connected client while the cluster runs.
    cluster : ipyparallel.Cluster or None
        The ipyparallel cluster object while it runs.
    """

    def __init__(self, n_engines, timeout, log_level, engines="local", config=None):
        self.n_engines = n_engines
        self.timeout = timeout
        self.log_level = log_level
        self.engines = engines
        self.config = config if config is not None else Config()
        self.client = None
        self.cluster = None
        self._profile_dir = None
        self._from_start = False

    def __repr__(self):
        state = "running" if self.cluster is not None else "stopped"
        engines = len(self.client.ids) if self.client is not None else 0
        where = "on 127.0.0.1" if self.engines == "local" else f"started by {self.engines}"
        return f"<CourseCluster {state}, {engines} engines {where}>"

    def _ipp_config(self):
        defaults, controller_ip = _launcher_settings(self.engines, self.n_engines, self.config)
        config = Config()
        config.Cluster.controller_ip = controller_ip
        if self.engines != "local":
            config.Cluster.engine_launcher_class = self.engines
        # Schedulers as threads: 2 processes instead of 9, about 30 MiB less.
        # No task database: by default the controller keeps a copy of every
        # argument sent to an engine (up to 1 GB), far too much on Binder.
        config.Cluster.controller_args = [
            f"--HeartMonitor.period={HEARTBEAT_MS}",
            "--usethreads",
            "--nodb",
        ]
        # Local engines start at once and read the connection file when the
        # controller has written it. Other hosts may not share this folder:
        # they get the connection in their environment.
        config.Cluster.send_engines_connection_env = self.engines != "local"
        config.Cluster.delay = 0.0
        config.Cluster.engine_timeout = int(max(1, self.timeout))
        config.ControllerLauncher.connection_info_timeout = float(self.timeout)
        # No nanny process per engine: 33 MiB less each, and a faster start.
        # A dead engine is then noticed by the heartbeat (a few seconds).
        config.EngineLauncher.engine_args = ["--IPEngine.enable_nanny=False"]
        # The Slurm launcher writes its script in the current folder unless told.
        config.SlurmEngineSetLauncher.batch_file_name = os.path.join(
            self._profile_dir, "slurm_engine.sbatch"
        )
        config.merge(defaults)
        config.merge(self.config)  # the caller's settings win
        return config

    def start(self):
        """Start the controller and the engines; wait until all answer.

        Returns
        -------
        ipyparallel.Client
            Connected, with every engine registered.

        Raises
        ------
        TimeoutError
            If a step (controller, engines, hub connection, engine
            registration) did not finish within ``timeout``; it is named, and
            everything that was started is stopped first.
        RuntimeError
            If the engines exit before registering (their output is quoted).
        """
        if self.cluster is not None:
            return self.client
        _install_exit_hooks()
        self._stop_earlier()
        deadline = time.monotonic() + self.timeout
        self._profile_dir = _make_folder()
        try:
            config = self._ipp_config()
        except BaseException:
            self.stop()
            raise
        self.cluster = ipyparallel.Cluster(
            n=self.n_engines,
            profile_dir=self._profile_dir,
            log_level=self.log_level,
            config=config,
        )
        self._from_start = True
        with _registry_lock:
            _running_clusters.append(self)
        step = "starting the controller"
        try:
            self.cluster.start_controller_sync()
            step = "the controller writing its connection files"
            _wait_for(self._connection_files_written, deadline, self.timeout, step)
            step = f"starting {self.n_engines} engines with the {self.engines} launcher"
            self.cluster.start_engines_sync(self.n_engines)
            step = "the client's connection to the hub (controller)"
            remaining = max(1.0, deadline - time.monotonic())
            self.client = self.cluster.connect_client_sync(timeout=remaining)
            step = "engine registration"
            _wait_for_engines(
                self.client,
                self.n_engines,
                max(0.0, deadline - time.monotonic()),
                engine_sets=self.cluster.engines.values(),
            )
        except BaseException as error:
            self.stop()
            if isinstance(error, TimeoutError):
                raise TimeoutError(
                    f"{self.engines} cluster: {step} did not finish within {self.timeout:g} s "
                    f"({error}). Everything started has been stopped; try a larger timeout "
                    "or fewer engines."
                ) from error
            raise
        return self.client

    def _connection_files_written(self):
        controller = self.cluster.controller
        if controller.state == "after":
            output = controller.get_output(remove=False)[-1500:]
            raise RuntimeError(f"The controller exited at start; its output:\n{output}")
        return all(os.path.exists(path) for path in controller.connection_files.values())

    def _stop_earlier(self):
        """Stop what this process started before with start(), of the same kind."""
        with _registry_lock:
            earlier = [
                c
                for c in _running_clusters
                if c is not self and c._from_start and c.engines == self.engines
            ]
        for cluster in earlier:
            print(f"A cluster started earlier in this process was still running: {cluster.stop()}")

    def stop(self, grace=STOP_GRACE_SECONDS):
        """Stop every process and job of the cluster (by PID if need be). Idempotent.

        Returns
        -------
        Stopped
            What was stopped; ``str()`` of it is one sentence.
        """
        stopped = Stopped(self.engines, 0, (), ())
        if self.cluster is not None:
            processes = cluster_processes(self.cluster)
            jobs = tuple(
                str(engine_set.job_id)
                for engine_set in self.cluster.engines.values()
                if getattr(engine_set, "job_id", "")
            )
            n_engines = len(self.client.ids) if self.client is not None else 0
            left = stop_cluster(self.cluster, self.client, grace=grace)
            if jobs:
                _wait_for_jobs_gone(jobs, timeout=max(grace, 30.0))
            stopped = Stopped(
                self.engines,
                n_engines,
                tuple(sorted(p.pid for p in processes)),
                tuple(sorted(p.pid for p in left)),
                jobs,
            )
        with _registry_lock:
            if self in _running_clusters:
                _running_clusters.remove(self)
        if self._profile_dir:
            shutil.rmtree(self._profile_dir, ignore_errors=True)
        self.client = self.cluster = self._profile_dir = None
        self._from_start = False
        return stopped

    def __enter__(self):
        client = self.start()
        self._from_start = False  # a with block owns it: never stopped by another start()
        return client

    def __exit__(self, *exc_info):
        self.stop()


#: Kept for code written before launchers existed.
LocalCluster = CourseCluster


def _wait_for_jobs_gone(jobs, timeout):
    """Wait until ``squeue`` lists none of ``jobs`` (cancelled jobs stay 'completing')."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            listed = _run_tool(["squeue", "-h", "-o", "%i", "-j", ",".join(jobs)]).split()
        except RuntimeError:
            return  # squeue refuses ids it no longer knows: they are gone
        if not set(listed) & set(jobs):
            return
        time.sleep(0.2)


def _wait_for(ready, deadline, timeout, step):
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{step} took more than {timeout:g} s")
        time.sleep(0.05)


def course_cluster(
    n_engines=None, *, engines="local", config=None, timeout=60, log_level=logging.ERROR
):
    """A controller on this host and engines started locally, over SSH, by MPI or by Slurm.

    The launcher's settings are ipyparallel's own config traits, passed
    through as they are (``config``). The course's defaults fill the rest:
    the controller on 127.0.0.1 when every engine runs on this host (else on
    this host's address), a 500 ms heartbeat, ``mpiexec`` of the course's
    environment (PyPI ``mpich``) with Open MPI's root/oversubscribe flags only
    where needed, and a Slurm time limit of :data:`SLURM_TIMELIMIT`.

    Parameters
    ----------
    n_engines : int, optional
        Number of engines. Default: :func:`default_n_engines`.
    engines : {"local", "ssh", "mpi", "slurm"}, default="local"
        The launcher (ipyparallel's ``engines=``).
    config : traitlets.config.Config or dict, optional
        ipyparallel settings, e.g. ``{"SlurmEngineSetLauncher": {"queue":
        "debug", "timelimit": "30"}}`` or ``{"MPIEngineSetLauncher":
        {"mpi_args": ["--hostfile", "hosts.txt"]}}``. They win over the
        course's defaults.
    timeout : float, default=60
        Seconds for the whole start: controller, engines (a Slurm job waits
        in the queue), hub connection and registration.
    log_level : int, default=logging.ERROR

    Returns
    -------
    CourseCluster
        ``with`` gives the connected client; in a notebook call ``.start()``
        and ``.stop()``.

    Raises
    ------
    TypeError, ValueError
        Bad ``n_engines``, ``engines``, ``config`` or ``timeout``; ``n_engines``
        larger than the Slurm partition can ever give.
    LauncherUnavailable
        The launcher's tools are missing (``mpiexec``, ``mpi4py``, ``sbatch``)
        or Slurm cannot be reached. All of these are raised before anything
        starts.

    Examples
    --------
    >>> from course_lib.cluster import course_cluster
    >>> with course_cluster(2, engines="mpi") as client:  # doctest: +SKIP
    ...     print(client[:].apply_sync(lambda: __import__("mpi4py.MPI").MPI.COMM_WORLD.rank))
    [0, 1]
    >>> course_cluster(2, engines="pbs")
    Traceback (most recent call last):
    ...
    ValueError: engines == 'pbs', must be one of ('local', 'ssh', 'mpi', 'slurm').
    """
    if engines not in LAUNCHERS:
        raise ValueError(f"engines == {engines!r}, must be one of {LAUNCHERS}.")
    n_engines = default_n_engines() if n_engines is None else check_int(n_engines, "n_engines")
    timeout = _check_timeout(timeout)
    config = _check_config(config)
    _launcher_settings(engines, n_engines, config)  # refuse now, before anything starts
    return CourseCluster(n_engines, timeout, log_level, engines=engines, config=config)


def local_cluster(n_engines=None, *, timeout=60, log_level=logging.ERROR):
    """A local cluster: a controller and engines on 127.0.0.1, always stopped.

    Parameters
    ----------
    n_engines : int, optional
        Number of engines. Default: :func:`default_n_engines`, the CPUs this
        process may use. Lessons start 2: each engine costs about 160 MiB.
    timeout : float, default=60
        Seconds for the whole start (controller, hub connection, every engine
        registered).
    log_level : int, default=logging.ERROR
        Log level of the cluster, so that engine log lines stay out of cells.

    Returns
    -------
    CourseCluster
        A context manager whose ``with`` block gets the connected
        :class:`ipyparallel.Client` (``client.cluster`` is the
        :class:`ipyparallel.Cluster`); in a notebook call ``.start()`` and
        ``.stop()`` instead. Running the setup cell again stops the cluster
        it started before.

    Raises
    ------
    TypeError, ValueError
        If ``n_engines`` is not a positive int or ``timeout`` not positive.

    Examples
    --------
    In a script:

    >>> from course_lib.cluster import local_cluster
    >>> with local_cluster(2) as client:  # doctest: +SKIP
    ...     print(client[:].apply_sync(lambda: 6 * 7))
    [42, 42]

    In a notebook, across cells:

    >>> cluster = local_cluster(2)
    >>> cluster
    <CourseCluster stopped, 0 engines on 127.0.0.1>
    >>> client = cluster.start()  # doctest: +SKIP
    >>> cluster.stop()
    nothing was running
    """
    return course_cluster(n_engines, engines="local", timeout=timeout, log_level=log_level)


def _wait_for_engines(client, n_engines, timeout, known=(), engine_sets=()):
    """Wait until ``n_engines`` engines not in ``known`` are registered."""
    deadline = time.monotonic() + timeout
    known = set(known)
    while len(set(client.ids) - known) < n_engines:
        stopped = [s for s in engine_sets if getattr(s, "state", "") == "after"]
        if stopped:
            output = stopped[0].get_output(remove=False)[-1500:]
            raise RuntimeError(
                f"The engines exited before registering "
                f"({stopped[0].stop_data}); their output:\n{output}"
            )
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"Only {len(set(client.ids) - known)} of {n_engines} engines registered within "
                f"{timeout:g} s. Everything started has been stopped; try a larger "
                f"timeout or fewer engines."
            )
        time.sleep(0.05)


def add_engines(client, n_engines=1, *, timeout=60):
    """Start more engines in the cluster behind ``client`` and wait for them.

    Engines can join while tasks run: a load-balanced view sends queued tasks
    to new engines as soon as they register. They are started by the
    cluster's own launcher: local processes, ``mpiexec``, another Slurm job.

    Parameters
    ----------
    client : ipyparallel.Client
        A client from :func:`local_cluster` (it knows its ``cluster``).
    n_engines : int, default=1
    timeout : float, default=60

    Returns
    -------
    list of int
        The ids of the new engines.
    """
    n_engines = check_int(n_engines, "n_engines")
    timeout = _check_timeout(timeout)
    cluster = getattr(client, "cluster", None)
    if not isinstance(cluster, ipyparallel.Cluster):
        raise ValueError(
            "client has no cluster to add engines to: use a client from "
            "local_cluster(), or ipyparallel.Cluster.connect_client()."
        )
    before = set(client.ids)
    engine_set = cluster.start_engines_sync(n_engines)
    _wait_for_engines(
        client, n_engines, timeout, known=before, engine_sets=[cluster.engines[engine_set]]
    )
    return sorted(set(client.ids) - before)


def _hostname_and_pid():
    return socket.gethostname(), os.getpid()


def engine_hosts(client):
    """Host name of every engine.

    Parameters
    ----------
    client : ipyparallel.Client

    Returns
    -------
    dict
        ``{engine_id: hostname}``.
    """
    view = client[:]
    replies = view.apply_async(_hostname_and_pid).get_dict()
    return {engine_id: host for engine_id, (host, _) in replies.items()}


def one_engine_per_host(client):
    """A DirectView with exactly one engine on every host.

    Use it for work that must happen once per machine: copying data to a
    local disk, warming the page cache, measuring free memory.

    Parameters
    ----------
    client : ipyparallel.Client

    Returns
    -------
    ipyparallel.DirectView
        Blocking view on the lowest engine id of each host.
    """
    chosen = {}
    for engine_id, host in sorted(engine_hosts(client).items()):
        chosen.setdefault(host, engine_id)
    view = client[sorted(chosen.values())]
    view.block = True
    return view


def engine_pids(client):
    """Process id of every engine: ``{engine_id: pid}``."""
    replies = client[:].apply_async(_hostname_and_pid).get_dict()
    return {engine_id: pid for engine_id, (_, pid) in replies.items()}
