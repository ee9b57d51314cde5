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

__all__ = [
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
#: start-up about 2.5 times faster (measured in ``bench/startup.py``).
HEARTBEAT_MS = 500

# The clusters started by local_cluster and not yet stopped. This registry is
# the module's only global state: it lets atexit and SIGTERM stop them all.
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


def _check_n_engines(n_engines, name="n_engines"):
    if isinstance(n_engines, bool) or not isinstance(n_engines, numbers.Integral):
        raise TypeError(
            f"{name} must be a positive int, but got {n_engines!r} "
            f"(of type {type(n_engines).__name__})."
        )
    if n_engines < 1:
        raise ValueError(f"{name} == {n_engines}, must be >= 1.")
    return int(n_engines)


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


def _is_gone(proc):
    """True when a process has exited (a zombie holds no resources)."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def _wait_gone(processes, timeout):
    deadline = time.monotonic() + timeout
    alive = [p for p in processes if not _is_gone(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if not _is_gone(p)]
    return alive


def _kill_survivors(processes, grace=STOP_GRACE_SECONDS):
    """SIGTERM, wait ``grace`` seconds, then SIGKILL what is left, by PID.

    Returns the processes still alive after that (normally none).
    """
    alive = [p for p in processes if not _is_gone(p)]
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    alive = _wait_gone(alive, grace)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    return _wait_gone(alive, grace)


def stop_cluster(cluster, client=None, *, grace=STOP_GRACE_SECONDS):
    """Close the client, stop engines and controller, kill what stays alive.

    Safe to call twice. Used by :func:`local_cluster` on exit; call it
    yourself only for a cluster you started by hand.

    Parameters
    ----------
    cluster : ipyparallel.Cluster
    client : ipyparallel.Client, optional
    grace : float
        Seconds each process gets after SIGTERM before SIGKILL.
    """
    processes = cluster_processes(cluster)
    controller_family = _controller_family(cluster)
    if client is not None:
        with contextlib.suppress(Exception):
            client.close()
    # Engines first: their tasks may be stuck, and they must not outlive the
    # controller. A process stuck in C code ignores SIGTERM; kill it by PID.
    with contextlib.suppress(Exception):
        _kill_survivors([p for p in processes if p.pid not in controller_family], grace)
    with contextlib.suppress(Exception):
        cluster.stop_cluster_sync()
    _kill_survivors(processes, grace)
    with _registry_lock:
        for entry in list(_running_clusters):
            if entry[0] is cluster:
                _running_clusters.remove(entry)
    profile_dir = getattr(cluster, "_course_profile_dir", None)
    if profile_dir:
        shutil.rmtree(profile_dir, ignore_errors=True)


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
        entries = list(_running_clusters)
    for cluster, client in entries:
        with contextlib.suppress(Exception):
            stop_cluster(cluster, client, grace=1.0)


def _on_sigterm(signum, frame):
    _stop_all_clusters()
    previous = _previous_sigterm_handler
    if callable(previous):
        previous(signum, frame)
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
            _previous_sigterm_handler = current if current not in (signal.SIG_IGN,) else None
            if current is signal.SIG_DFL:
                _previous_sigterm_handler = None
            signal.signal(signal.SIGTERM, _on_sigterm)
    _install_exit_hooks.done = True


def _engines_up(client):
    return len(client.ids)


@contextlib.contextmanager
def local_cluster(n_engines=None, *, timeout=60, log_level=logging.ERROR):
    """Start a controller and engines on 127.0.0.1; stop them on exit.

    Parameters
    ----------
    n_engines : int, optional
        Number of engines. Default: :func:`default_n_engines`, the CPUs this
        process may use. Lessons start 2: each engine costs about 160 MiB.
    timeout : float, default=60
        Seconds to wait for every engine to register.
    log_level : int, default=logging.ERROR
        Log level of the cluster, so that engine log lines stay out of cells.

    Yields
    ------
    client : ipyparallel.Client
        Connected, with every engine registered. ``client.cluster`` is the
        :class:`ipyparallel.Cluster`.

    Raises
    ------
    TypeError, ValueError
        If ``n_engines`` is not a positive int or ``timeout`` not positive.
    TimeoutError
        If not every engine registered within ``timeout``; everything that
        was started is stopped before this is raised.

    Examples
    --------
    >>> from course_lib.cluster import local_cluster
    >>> with local_cluster(2) as client:  # doctest: +SKIP
    ...     print(client[:].apply_sync(lambda: 6 * 7))
    [42, 42]
    """
    n_engines = default_n_engines() if n_engines is None else _check_n_engines(n_engines)
    timeout = _check_timeout(timeout)
    _install_exit_hooks()

    profile_dir = tempfile.mkdtemp(prefix="course-ipp-")
    cluster = ipyparallel.Cluster(
        n=n_engines,
        profile_dir=profile_dir,
        controller_ip="127.0.0.1",
        controller_args=[f"--HeartMonitor.period={HEARTBEAT_MS}", "--usethreads"],
        log_level=log_level,
        engine_timeout=int(max(1, timeout)),
    )
    cluster._course_profile_dir = profile_dir
    client = None
    with _registry_lock:
        _running_clusters.append((cluster, None))
    try:
        cluster.start_cluster_sync()
        client = cluster.connect_client_sync()
        with _registry_lock:
            _running_clusters[:] = [
                (c, client if c is cluster else cl) for c, cl in _running_clusters
            ]
        _wait_for_engines(client, n_engines, timeout)
        yield client
    finally:
        stop_cluster(cluster, client)


def _wait_for_engines(client, n_engines, timeout):
    deadline = time.monotonic() + timeout
    while _engines_up(client) < n_engines:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"Only {_engines_up(client)} of {n_engines} engines registered within "
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
    n_engines = _check_n_engines(n_engines)
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
