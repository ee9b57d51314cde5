"""Start, use and always stop an ipyparallel cluster: the cluster's life.

The lessons start their engines with :func:`local_cluster`, and
:func:`course_cluster` starts them with any launcher of the registry in
:mod:`course_lib._launchers` (``engines="ssh"``, ``"mpi"`` or ``"slurm"``:
ipyparallel's own names), configured in ipyparallel's own terms. Both give a
context manager over :class:`ipyparallel.Cluster` that

* binds every socket to the loopback interface (127.0.0.1) when every engine
  runs on this host,
* starts fast (a 50 ms heartbeat instead of 3 s: engines register sooner;
  local engines start while the controller does),
* says how it goes while it waits: engines answering, n of N, and the seconds,
* waits, with a finite timeout, until every engine answers,
* and stops every process it started when the block ends, whatever the
  reason: normal exit, an exception, ``KeyboardInterrupt``, the kernel
  shutting down (``atexit``) or being sent ``SIGTERM``. Engines stuck in C
  code ignore ``SIGTERM``: they are killed by PID after a short grace period.

Each cluster keeps its files in a ``course-ipp-<pid>-*`` temporary folder
(:mod:`course_lib._cluster_folders`); folders whose owner process died are
removed when the next cluster starts. What the engines are (hosts, PIDs, one
per host) is in :mod:`course_lib._engines`, exported here.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import logging
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

import ipyparallel
import joblib
from ipyparallel.cluster.launcher import SSHLauncher
from traitlets.config import Config

from course_lib import _processes
from course_lib._cluster_folders import make_folder, remove_stale_folders
from course_lib._engines import engine_hosts, engine_pids, one_engine_per_host
from course_lib._launchers import (
    REGISTRY,
    SLURM_TIMELIMIT,
    LauncherUnavailable,
    find_mpiexec,
    get_launcher,
    slurm_partition,
)
from course_lib._validation import check_int, check_seconds

__all__ = [
    "LAUNCHERS",
    "SLURM_TIMELIMIT",
    "CourseCluster",
    "LauncherUnavailable",
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

#: The ways :func:`course_cluster` can start engines (``engines=``): every
#: launcher registered in :mod:`course_lib._launchers`, by ipyparallel's name.
LAUNCHERS = tuple(REGISTRY)

#: Seconds a process gets to exit after SIGTERM before it is killed.
STOP_GRACE_SECONDS = 3.0

#: Heartbeat period of the controller, in milliseconds. ipyparallel's default
#: is 3000; engines register only after a heartbeat, so a short period makes
#: start-up much faster (measured in ``bench/startup.py``).
HEARTBEAT_MS = 50

#: Heartbeats an engine may miss before the controller counts it as dead:
#: 5 s at :data:`HEARTBEAT_MS`, as ipyparallel's 10 misses of 500 ms were.
HEARTBEAT_MISSES = 100

# The clusters started and not yet stopped. This registry is the module's
# only global state: it lets atexit and SIGTERM stop them all.
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
    return {pid, *(proc.pid for proc in _processes.process_tree(pid))}


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


def launcher_available(engines, n_engines=2, config=None):
    """Whether this machine can start ``n_engines`` engines with ``engines``, and why not.

    Lessons use it to run a launcher for real where the machine has it, and to
    say plainly that they only show its configuration elsewhere.

    Parameters
    ----------
    engines : str
        A name of :data:`LAUNCHERS`.
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
    launcher = get_launcher(engines)
    try:
        launcher.preflight(check_int(n_engines, "n_engines"), _check_config(config))
    except (LauncherUnavailable, ValueError) as error:
        return False, str(error)
    return True, ""


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
    progress : bool
        Whether :meth:`start` says how it goes (one line, updated in place).
    """

    def __init__(self, n_engines, timeout, log_level, engines="local", config=None, progress=True):
        self.n_engines = n_engines
        self.timeout = timeout
        self.log_level = log_level
        self.engines = engines
        self.config = config if config is not None else Config()
        self.progress = progress
        self._launcher = get_launcher(engines)
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
        defaults, controller_ip = self._launcher.preflight(self.n_engines, self.config)
        config = Config()
        config.Cluster.controller_ip = controller_ip
        config.Cluster.engine_launcher_class = self._launcher.name
        # Schedulers as threads: 2 processes instead of 9, about 30 MiB less.
        # No task database: by default the controller keeps a copy of every
        # argument sent to an engine (up to 1 GB), far too much on Binder.
        config.Cluster.controller_args = [
            f"--HeartMonitor.period={HEARTBEAT_MS}",
            f"--HeartMonitor.max_heartmonitor_misses={HEARTBEAT_MISSES}",
            "--usethreads",
            "--nodb",
        ]
        # Engines on this host start with the controller and read the
        # connection file once it is written. Other hosts may not share this
        # folder: they get the connection in their environment.
        config.Cluster.send_engines_connection_env = not self._launcher.engines_on_this_host
        config.Cluster.delay = 0.0
        config.LocalEngineSetLauncher.delay = 0.0  # not 0.1 s between two engines
        config.Cluster.engine_timeout = int(max(1, self.timeout))
        config.ControllerLauncher.connection_info_timeout = float(self.timeout)
        # No nanny process per engine: 33 MiB less each, and a faster start.
        # A dead engine is then noticed by the heartbeat (a few seconds).
        config.EngineLauncher.engine_args = [
            "--IPEngine.enable_nanny=False",
            f"--IPEngine.wait_for_url_file={float(self.timeout)}",
        ]
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
        self._profile_dir = make_folder()
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
        report = _StartReport(self, enabled=self.progress)
        step = "starting the controller"
        try:
            self.cluster.start_controller_sync()
            starting = f"starting {self.n_engines} engines with the {self.engines} launcher"
            if self._launcher.engines_on_this_host:
                # They wait for the connection file: start them with the controller.
                step = starting
                self._start_engines(report)
            step = "the controller writing its connection files"
            _wait_for(self._connection_files_written, deadline, self.timeout, step, report)
            if not self._launcher.engines_on_this_host:
                step = starting
                self._start_engines(report)
            step = "the client's connection to the hub (controller)"
            remaining = max(1.0, deadline - time.monotonic())
            self.client = self.cluster.connect_client_sync(timeout=remaining)
            step = "engine registration"
            _wait_for_engines(
                self.client,
                self.n_engines,
                max(0.0, deadline - time.monotonic()),
                engine_sets=self.cluster.engines.values(),
                report=report,
            )
        except BaseException as error:
            report.close()
            self.stop()
            if isinstance(error, TimeoutError):
                raise TimeoutError(
                    f"{self.engines} cluster: {step} did not finish within {self.timeout:g} s "
                    f"({error}). Everything started has been stopped; try a larger timeout "
                    "or fewer engines."
                ) from error
            raise
        report.done(len(self.client.ids))
        return self.client

    def _start_engines(self, report):
        report.update(0)
        self.cluster.start_engines_sync(self.n_engines)

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
                job
                for engine_set in self.cluster.engines.values()
                for job in self._launcher.jobs(engine_set)
            )
            n_engines = len(self.client.ids) if self.client is not None else 0
            left = stop_cluster(self.cluster, self.client, grace=grace)
            if jobs:
                self._launcher.wait_jobs_gone(jobs, timeout=max(grace, 30.0))
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


def _wait_for(ready, deadline, timeout, step, report=None):
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{step} took more than {timeout:g} s")
        if report is not None:
            report.update(0)
        time.sleep(0.05)


class _StartReport:
    """One line on standard output, updated in place while a cluster starts.

    ``Starting 2 local engines: 1 of 2 answering, 1.4 s``, rewritten (``\\r``)
    at most every half second and whenever the count changes, then
    ``2 of 2 engines answering after 2.1 s (local cluster on 127.0.0.1)``.
    A notebook shows it as one line that changes; ``enabled=False`` says nothing.
    """

    def __init__(self, cluster, enabled=True):
        self.cluster, self.enabled = cluster, enabled
        self.start = time.monotonic()
        self.last = (None, -1.0)  # count and time last printed
        self.open = False

    def _write(self, text, end=""):
        stream = sys.stdout
        stream.write(f"\r{text}{end}")
        stream.flush()
        self.open = not end

    def update(self, n_answering):
        if not self.enabled:
            return
        now = time.monotonic()
        count, printed = self.last
        if n_answering == count and now - printed < 0.5:
            return
        self.last = (n_answering, now)
        cluster = self.cluster
        self._write(
            f"Starting {cluster.n_engines} {cluster.engines} engines: {n_answering} of "
            f"{cluster.n_engines} answering, {now - self.start:.1f} s"
        )

    def done(self, n_answering):
        if not self.enabled:
            return
        cluster = self.cluster
        where = "on 127.0.0.1" if cluster.engines == "local" else f"by {cluster.engines}"
        self._write(
            f"{n_answering} of {cluster.n_engines} engines answering after "
            f"{time.monotonic() - self.start:.1f} s ({cluster.engines} cluster {where})",
            end="\n",
        )

    def close(self):
        """End a line left open (the start failed), so that the error starts on its own."""
        if self.enabled and self.open:
            sys.stdout.write("\n")
            sys.stdout.flush()
            self.open = False


def course_cluster(
    n_engines=None,
    *,
    engines="local",
    config=None,
    timeout=60,
    log_level=logging.ERROR,
    progress=True,
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
    engines : str, default="local"
        The launcher: a name of :data:`LAUNCHERS` (``"local"``, ``"ssh"``,
        ``"mpi"``, ``"slurm"``), ipyparallel's own ``engines=`` names.
    config : traitlets.config.Config or dict, optional
        ipyparallel settings, e.g. ``{"SlurmEngineSetLauncher": {"queue":
        "debug", "timelimit": "30"}}`` or ``{"MPIEngineSetLauncher":
        {"mpi_args": ["--hostfile", "hosts.txt"]}}``. They win over the
        course's defaults.
    timeout : float, default=60
        Seconds for the whole start: controller, engines (a Slurm job waits
        in the queue), hub connection and registration.
    log_level : int, default=logging.ERROR
    progress : bool, default=True
        While it starts, say how it goes on one line: engines answering,
        n of N, and the seconds. False says nothing (tests, scripts).

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
    launcher = get_launcher(engines)
    n_engines = default_n_engines() if n_engines is None else check_int(n_engines, "n_engines")
    timeout = check_seconds(timeout, "timeout")
    config = _check_config(config)
    if progress not in (True, False):
        raise TypeError(f"progress must be True or False, but got {progress!r}.")
    launcher.preflight(n_engines, config)  # refuse now, before anything starts
    return CourseCluster(
        n_engines, timeout, log_level, engines=engines, config=config, progress=progress
    )


def local_cluster(n_engines=None, *, timeout=60, log_level=logging.ERROR, progress=True):
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
    progress : bool, default=True
        While :meth:`~CourseCluster.start` waits, print one line updated in
        place: engines answering, n of N, and the seconds taken. False
        prints nothing.

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
    return course_cluster(
        n_engines, engines="local", timeout=timeout, log_level=log_level, progress=progress
    )


def _wait_for_engines(client, n_engines, timeout, known=(), engine_sets=(), report=None):
    """Wait until ``n_engines`` engines not in ``known`` are registered."""
    deadline = time.monotonic() + timeout
    known = set(known)
    while len(set(client.ids) - known) < n_engines:
        if report is not None:
            report.update(len(set(client.ids) - known))
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
    timeout = check_seconds(timeout, "timeout")
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
