"""Start, use and always stop a local ipyparallel cluster.

The lessons start their engines with :func:`local_cluster`, a context manager
over :class:`ipyparallel.Cluster` that

* binds every socket to the loopback interface (127.0.0.1),
* starts fast (a 500 ms heartbeat instead of 3 s: engines register sooner),
* waits, with a finite timeout, until every engine answers,
* and stops every process it started when the block ends, whatever the
  reason: normal exit, an exception, ``KeyboardInterrupt``, the kernel
  shutting down (``atexit``) or being sent ``SIGTERM``. Engines stuck in C
  code ignore ``SIGTERM``: they are killed by PID after a short grace period.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import numbers
import os
import shutil
import signal
import socket
import tempfile
import threading
import time

import ipyparallel
import joblib
import psutil
from traitlets.config import Config

from course_lib import _processes
from course_lib._validation import check_int

__all__ = [
    "LocalCluster",
    "add_engines",
    "cluster_processes",
    "default_n_engines",
    "engine_pids",
    "engine_hosts",
    "local_cluster",
    "one_engine_per_host",
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
    """Every live process a cluster started: controller, engines, nannies.

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
        launchers.extend(getattr(engine_set, "launchers", {}).values())
    processes = {}
    for launcher in launchers:
        pid = getattr(launcher, "pid", -1)
        if pid is None or pid <= 0:
            continue
        try:
            root = psutil.Process(pid)
            family = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for proc in family:
            processes[proc.pid] = proc
    return list(processes.values())


def stop_cluster(cluster, client=None, *, grace=STOP_GRACE_SECONDS):
    """Close the client, stop engines and controller, kill what stays alive.

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
    with contextlib.suppress(Exception):
        cluster.stop_cluster_sync()
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


class LocalCluster:
    """A controller and engines on 127.0.0.1 that are always stopped.

    Make one with :func:`local_cluster`. Use it as a context manager in
    scripts, or call :meth:`start` and :meth:`stop` in a notebook, where a
    ``with`` block cannot span cells. Every started cluster is also stopped
    when the Python process exits or receives SIGTERM (a notebook kernel
    being shut down).

    Attributes
    ----------
    n_engines : int
        Engines started by :meth:`start`.
    client : ipyparallel.Client or None
        The connected client while the cluster runs.
    cluster : ipyparallel.Cluster or None
        The ipyparallel cluster object while it runs.
    """

    def __init__(self, n_engines, timeout, log_level):
        self.n_engines = n_engines
        self.timeout = timeout
        self.log_level = log_level
        self.client = None
        self.cluster = None
        self._profile_dir = None

    def __repr__(self):
        state = "running" if self.cluster is not None else "stopped"
        engines = len(self.client.ids) if self.client is not None else 0
        return f"<LocalCluster {state}, {engines} engines on 127.0.0.1>"

    def start(self):
        """Start the controller and the engines; wait until all answer.

        Returns
        -------
        ipyparallel.Client
            Connected, with every engine registered.

        Raises
        ------
        RuntimeError
            If this cluster is already running.
        TimeoutError
            If not every engine registered in time; everything that was
            started is stopped first.
        """
        if self.cluster is not None:
            raise RuntimeError(f"{self!r} is already running: call stop() first.")
        _install_exit_hooks()
        self._profile_dir = tempfile.mkdtemp(prefix="course-ipp-")
        config = Config()
        # No nanny process per engine: 33 MiB less each, and a faster start.
        # A dead engine is then noticed by the heartbeat (a few seconds).
        config.EngineLauncher.engine_args = ["--IPEngine.enable_nanny=False"]
        self.cluster = ipyparallel.Cluster(
            n=self.n_engines,
            profile_dir=self._profile_dir,
            controller_ip="127.0.0.1",
            # Schedulers as threads: 2 processes instead of 9, about 30 MiB less.
            # No task database: by default the controller keeps a copy of every
            # argument sent to an engine (up to 1 GB), far too much on Binder.
            controller_args=[f"--HeartMonitor.period={HEARTBEAT_MS}", "--usethreads", "--nodb"],
            # Engines start at once and read the connection file when the
            # controller has written it, instead of waiting for the controller.
            send_engines_connection_env=False,
            log_level=self.log_level,
            engine_timeout=int(max(1, self.timeout)),
            config=config,
        )
        with _registry_lock:
            _running_clusters.append(self)
        try:
            self.cluster.start_cluster_sync()
            self.client = self.cluster.connect_client_sync()
            _wait_for_engines(self.client, self.n_engines, self.timeout)
        except BaseException:
            self.stop()
            raise
        return self.client

    def stop(self, grace=STOP_GRACE_SECONDS):
        """Stop every process of the cluster (by PID if need be). Idempotent."""
        if self.cluster is not None:
            stop_cluster(self.cluster, self.client, grace=grace)
        with _registry_lock:
            if self in _running_clusters:
                _running_clusters.remove(self)
        if self._profile_dir:
            shutil.rmtree(self._profile_dir, ignore_errors=True)
        self.client = self.cluster = self._profile_dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


def local_cluster(n_engines=None, *, timeout=60, log_level=logging.ERROR):
    """A local cluster: a controller and engines on 127.0.0.1, always stopped.

    Parameters
    ----------
    n_engines : int, optional
        Number of engines. Default: :func:`default_n_engines`, the CPUs this
        process may use. Lessons start 2: each engine costs about 160 MiB.
    timeout : float, default=60
        Seconds to wait for every engine to register.
    log_level : int, default=logging.ERROR
        Log level of the cluster, so that engine log lines stay out of cells.

    Returns
    -------
    LocalCluster
        A context manager whose ``with`` block gets the connected
        :class:`ipyparallel.Client` (``client.cluster`` is the
        :class:`ipyparallel.Cluster`); in a notebook call ``.start()`` and
        ``.stop()`` instead.

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
    <LocalCluster stopped, 0 engines on 127.0.0.1>
    >>> client = cluster.start()  # doctest: +SKIP
    >>> cluster.stop()
    """
    n_engines = default_n_engines() if n_engines is None else check_int(n_engines, "n_engines")
    return LocalCluster(n_engines, _check_timeout(timeout), log_level)


def _wait_for_engines(client, n_engines, timeout):
    deadline = time.monotonic() + timeout
    while len(client.ids) < n_engines:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"Only {len(client.ids)} of {n_engines} engines registered within "
                f"{timeout:g} s. Everything started has been stopped; try a larger "
                f"timeout or fewer engines."
            )
        time.sleep(0.05)


def add_engines(client, n_engines=1, *, timeout=60):
    """Start more engines in the cluster behind ``client`` and wait for them.

    Engines can join while tasks run: a load-balanced view sends queued tasks
    to new engines as soon as they register.

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
    cluster.start_engines_sync(n_engines)
    _wait_for_engines(client, len(before) + n_engines, timeout)
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
