"""Process life in one place: alive, stop, wait until gone, find by marker.

Every part of the course that starts processes (clusters, grading, the lab,
the tests) stops them with these functions, so they all agree on what
"gone" means:

* a **zombie is gone**: it has exited and holds no memory; only its parent
  (or PID 1 of a container, which may never do it) can reap it;
* a process whose PID was **reused** by another is gone (psutil compares
  creation times);
* a process we may not inspect (``AccessDenied``) is **alive**: we cannot
  prove otherwise.

Stopping is SIGTERM, a grace period, then SIGKILL, always by PID (never by
name), and waiting until every process is gone.

Examples
--------
>>> import subprocess, sys
>>> proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
>>> stop([proc.pid])
[]
>>> alive(proc.pid)
False
>>> _ = proc.wait()
"""

from __future__ import annotations

import contextlib
import os
import time

import psutil

__all__ = [
    "alive",
    "alive_or_marked",
    "describe",
    "find_marked",
    "process_tree",
    "settle_then_stop",
    "stop",
    "stop_or_raise",
    "wait_gone",
]

#: Seconds between two looks at processes that should exit.
POLL_SECONDS = 0.05


def _as_process(proc):
    """A :class:`psutil.Process` for a PID, a process or a Popen; None when gone."""
    if isinstance(proc, psutil.Process):
        return proc
    try:
        return psutil.Process(int(getattr(proc, "pid", proc)))
    except psutil.NoSuchProcess:
        return None


def _processes(processes):
    found = (_as_process(p) for p in processes)
    return [p for p in found if p is not None]


def alive(proc):
    """True while ``proc`` runs: zombies and reused PIDs count as gone.

    Parameters
    ----------
    proc : int, psutil.Process or subprocess.Popen

    Returns
    -------
    bool

    Examples
    --------
    >>> import os
    >>> alive(os.getpid())
    True
    """
    proc = _as_process(proc)
    if proc is None:
        return False
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True


def wait_gone(processes, timeout):
    """Wait up to ``timeout`` seconds for ``processes`` to be gone.

    Parameters
    ----------
    processes : iterable of int, psutil.Process or subprocess.Popen
    timeout : float
        Seconds; 0 looks once.

    Returns
    -------
    list of psutil.Process
        Those still alive when the time is up (empty when all are gone).

    Examples
    --------
    >>> wait_gone([], timeout=1)
    []
    """
    deadline = time.monotonic() + timeout
    left = [p for p in _processes(processes) if alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        left = [p for p in left if alive(p)]
    return left


def stop(processes, grace=2.0):
    """SIGTERM ``processes``, SIGKILL by PID those alive after ``grace`` seconds.

    Parameters
    ----------
    processes : iterable of int, psutil.Process or subprocess.Popen
    grace : float
        Seconds each step waits: after SIGTERM, and after SIGKILL.

    Returns
    -------
    list of psutil.Process
        Processes that survived SIGKILL (normally none).

    Examples
    --------
    >>> stop([])
    []
    """
    left = [p for p in _processes(processes) if alive(p)]
    for proc in left:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    left = wait_gone(left, grace)
    for proc in left:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    return wait_gone(left, grace)


def stop_or_raise(processes, what, grace=2.0):
    """:func:`stop` ``processes``; raise if any survives, naming ``what`` they were.

    Returns
    -------
    list of int
        The PIDs that were asked to stop.

    Examples
    --------
    >>> stop_or_raise([], "test")
    []
    """
    processes = list(_processes(processes))
    still = [p.pid for p in stop(processes, grace)]
    if still:
        raise RuntimeError(f"{what} processes survived SIGKILL: {still}")
    return [p.pid for p in processes]


def process_tree(proc):
    """``proc`` and all its live descendants; empty when ``proc`` is gone.

    Examples
    --------
    >>> import os
    >>> process_tree(os.getpid())[0].pid == os.getpid()
    True
    """
    proc = _as_process(proc)
    if proc is None or not alive(proc):
        return []
    try:
        family = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        family = [proc]
    return [p for p in family if alive(p)]


def find_marked(variable, value, since=0.0):
    """Live processes whose environment holds ``variable=value``.

    Children inherit their parent's environment, so a marker set where a
    process tree starts follows every process of it, even re-parented ones.

    Parameters
    ----------
    variable, value : str
    since : float
        Only processes created after this :func:`time.time` (minus a second)
        are read, which keeps the scan short.

    Returns
    -------
    list of psutil.Process

    Examples
    --------
    >>> find_marked("COURSE_NO_SUCH_MARKER", "x")
    []
    """
    found = []
    me = os.getpid()
    for proc in psutil.process_iter(["create_time"]):
        if proc.pid == me or (proc.info["create_time"] or 0) < since - 1:
            continue
        try:
            if proc.environ().get(variable) == value and alive(proc):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def describe(proc):
    """``"PID (name args)"`` of a process, or its PID when it is gone.

    Examples
    --------
    >>> import os
    >>> describe(os.getpid()).startswith(str(os.getpid()))
    True
    """
    found = _as_process(proc)
    if found is None:
        return str(proc)
    proc = found
    try:
        cmdline = " ".join(proc.cmdline()[1:4])
        return f"{proc.pid} ({proc.name()} {cmdline})".strip()
    except psutil.Error:
        return str(proc.pid)


def settle_then_stop(candidates, settle):
    """Give what ``candidates()`` lists ``settle`` seconds to exit, then stop the rest by PID.

    ``candidates`` is called again after the wait (a process may have started
    another meanwhile). Returns ``(lingering, killed, survivors, waited)``: the
    descriptions of the processes alive at first, of those stopped, of those
    that survived SIGKILL, and the seconds waited.

    Examples
    --------
    >>> settle_then_stop(lambda: [], 1.0)[:3]
    ([], [], [])
    """
    left = candidates()
    lingering = [describe(p) for p in left]
    started = time.monotonic()
    left = wait_gone(left, settle)
    left = candidates() if left else left
    killed = [describe(p) for p in left]
    survivors = [describe(p) for p in stop(left)]
    return lingering, killed, survivors, time.monotonic() - started


def alive_or_marked(processes, variable, value, since=0.0):
    """The processes of ``processes`` still alive, and every one carrying the marker.

    Examples
    --------
    >>> alive_or_marked([], "COURSE_NO_SUCH_MARKER", "x")
    []
    """
    found = {p.pid: p for p in processes if alive(p)}
    for p in find_marked(variable, value, since=since):
        found.setdefault(p.pid, p)
    return list(found.values())
