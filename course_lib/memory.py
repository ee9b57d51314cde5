"""See how much memory a process, the engines and the hosts use.

Three figures describe the memory of one process (all in MiB, 2**20 bytes,
the keys say ``_mb``):

* **RSS** (resident set size) counts every page the process has in memory,
  including pages it shares with others (a memory-mapped file, libraries).
  Summing RSS over processes counts shared pages many times: it misleads.
* **USS** (unique set size) counts only the pages no other process maps:
  what the host would get back if the process exited.
* **PSS** (proportional set size) divides each shared page between the
  processes that map it: summed over processes, it is the fair total.

A host's ``used_mb`` is ``total - available``: memory that cannot be handed
to a new program without swapping. The page cache (files read or mapped,
such as persisted CV splits) is *available*: the kernel can drop it.
"""

from __future__ import annotations

import os
import socket
import threading
import time

import ipyparallel
import psutil

from course_lib import _processes
from course_lib._engines import one_engine_per_host
from course_lib._validation import check_int, check_seconds

__all__ = ["MemoryMonitor", "engine_memory", "host_memory", "process_memory", "tree_memory"]

#: Bytes in one MiB (2**20): every ``_mb`` figure of this module is in MiB.
MIB = 2**20

#: The per-process figures a :class:`MemoryMonitor` can sample.
MEASURES = ("uss", "pss")


def _full_info(proc):
    """USS/PSS need /proc/<pid>/smaps: a process of another user refuses it."""
    try:
        return proc.memory_full_info()
    except psutil.NoSuchProcess:
        raise ValueError(f"There is no process with pid {proc.pid}.") from None
    except psutil.AccessDenied:
        raise PermissionError(
            f"Not allowed to read the memory map of process {proc.pid}: "
            f"USS and PSS need the process to belong to the same user."
        ) from None


def process_memory(pid=None):
    """RSS, USS and PSS of one process, in MiB.

    Parameters
    ----------
    pid : int, optional
        Process id. Default: this process.

    Returns
    -------
    dict
        ``{"rss_mb": float, "uss_mb": float, "pss_mb": float or None}``;
        ``pss_mb`` is None where the OS does not report PSS (macOS, Windows).

    Raises
    ------
    TypeError
        If ``pid`` is not an int.
    ValueError
        If there is no process ``pid``.

    Examples
    --------
    >>> mem = process_memory()
    >>> mem["rss_mb"] >= mem["uss_mb"] > 0
    True
    """
    proc = psutil.Process() if pid is None else psutil.Process(_pid_or_error(pid))
    info = _full_info(proc)
    pss = getattr(info, "pss", None)
    return {
        "rss_mb": info.rss / MIB,
        "uss_mb": info.uss / MIB,
        "pss_mb": None if pss is None else pss / MIB,
    }


def tree_memory(processes, measure="pss"):
    """Summed USS or PSS of processes and all their descendants, each counted once, in MiB.

    PSS splits each shared page between the processes that map it: summed
    over a session (JupyterLab, a kernel, its controller and engines) it is
    the figure a cgroup limit such as mybinder.org's sees. A process that
    ends while it is read is left out.

    Parameters
    ----------
    processes : iterable of int or psutil.Process
        The roots: each counts with every descendant.
    measure : {"uss", "pss"}, default="pss"

    Returns
    -------
    float

    Examples
    --------
    >>> tree_memory([os.getpid()]) > 0
    True
    """
    measure = _check_measure(measure)
    seen, total = set(), 0
    for root in processes:
        for proc in _processes.process_tree(root):
            if proc.pid in seen:
                continue
            seen.add(proc.pid)
            try:
                total += getattr(proc.memory_full_info(), measure, 0) or 0
            except psutil.Error:
                continue
    return total / MIB


def _check_measure(measure):
    if measure not in MEASURES:
        raise ValueError(f"measure == {measure!r}, must be one of {', '.join(MEASURES)}.")
    return measure


def _pid_or_error(pid):
    pid = check_int(pid, "pid", minimum=1)
    if not psutil.pid_exists(pid):
        raise ValueError(f"There is no process with pid {pid}.")
    return pid


def _as_direct_view(client_or_view, name="client_or_view"):
    """A DirectView on the engines of a Client, a DirectView or a LoadBalancedView."""
    if isinstance(client_or_view, ipyparallel.Client):
        return client_or_view[:]
    if isinstance(client_or_view, ipyparallel.DirectView):
        return client_or_view
    if isinstance(client_or_view, ipyparallel.LoadBalancedView):
        targets = client_or_view.targets
        client = client_or_view.client
        return client[:] if targets is None else client[targets]
    raise TypeError(
        f"{name} must be an ipyparallel Client or view, but got {client_or_view!r} "
        f"(of type {type(client_or_view).__name__})."
    )


def _engine_report():
    """Run on an engine: its host, pid and memory."""
    return {"host": socket.gethostname(), "pid": os.getpid(), **process_memory()}


def engine_memory(client_or_view):
    """Memory of every engine, as each engine reports it.

    Every engine answers once it is idle: an engine busy with a task answers
    after the task. To watch engines *while* they work, use
    :class:`MemoryMonitor`.

    Parameters
    ----------
    client_or_view : ipyparallel.Client or view
        All the client's engines, or the engines of the view.

    Returns
    -------
    dict
        ``{engine_id: {"host", "pid", "rss_mb", "uss_mb", "pss_mb"}}``.

    Examples
    --------
    >>> engine_memory(client)  # doctest: +SKIP
    {0: {'host': 'laptop', 'pid': 4242, 'rss_mb': 131.2, 'uss_mb': 118.9, 'pss_mb': 121.4},
     1: {'host': 'laptop', 'pid': 4243, 'rss_mb': 130.8, 'uss_mb': 118.5, 'pss_mb': 121.0}}
    """
    view = _as_direct_view(client_or_view)
    return dict(sorted(view.apply_async(_engine_report).get_dict().items()))


def _host_report():
    """Run on an engine: the memory of its host."""
    vm = psutil.virtual_memory()
    return socket.gethostname(), {
        "total_mb": vm.total / MIB,
        "available_mb": vm.available / MIB,
        "used_mb": (vm.total - vm.available) / MIB,
    }


def _local_host_memory_mb():
    vm = psutil.virtual_memory()
    return (vm.total - vm.available) / MIB


def host_memory(client):
    """Total, available and used memory of every host that runs engines.

    One engine per host answers (see
    :func:`course_lib.cluster.one_engine_per_host`): the host's memory is
    the same whichever of its engines is asked.

    Parameters
    ----------
    client : ipyparallel.Client
        Or a view: its client's engines are used.

    Returns
    -------
    dict
        ``{hostname: {"total_mb", "available_mb", "used_mb"}}`` where
        ``used_mb = total_mb - available_mb``.

    Examples
    --------
    >>> host_memory(client)  # doctest: +SKIP
    {'laptop': {'total_mb': 15872.0, 'available_mb': 11230.5, 'used_mb': 4641.5}}
    """
    if isinstance(client, (ipyparallel.DirectView, ipyparallel.LoadBalancedView)):
        client = client.client
    if not isinstance(client, ipyparallel.Client):
        raise TypeError(
            f"client must be an ipyparallel Client, but got {client!r} "
            f"(of type {type(client).__name__})."
        )
    view = one_engine_per_host(client)
    return dict(sorted(view.apply_async(_host_report).get()))


def _check_processes(processes):
    if processes is None or callable(processes):
        return
    if isinstance(processes, (str, bytes)) or not hasattr(processes, "__iter__"):
        raise TypeError(
            f"processes must be PIDs or psutil.Process objects (or a callable that "
            f"returns them), but got {processes!r}."
        )


def _check_sample_by_pid(sample_by_pid):
    if sample_by_pid not in (None, True, False):
        raise TypeError(f"sample_by_pid must be None, True or False, not {sample_by_pid!r}.")


class MemoryMonitor:
    """Sample memory in a background thread while a block runs.

    On entry it takes a baseline; every ``interval`` seconds it records the
    used memory of this host, when given a client the USS (or PSS) of every
    engine, and when given ``processes`` the summed USS (or PSS) of their
    whole process trees; on exit (also when the block raises) it stops its
    thread.

    Engines on this host are sampled from here, by PID, with psutil: an
    engine busy computing cannot answer a query, but its memory can still be
    read. Engines on other hosts are asked, and answer between tasks only.

    Parameters
    ----------
    client : ipyparallel.Client or DirectView, optional
        Engines to watch (all the client's, or the view's). They must be idle
        on entry, to tell their PIDs. Default: the host only.
    interval : float, default=0.1
        Seconds between samples.
    sample_by_pid : bool, optional
        Default: engines on this host by PID, the others by asking them.
        False asks every engine, True requires every engine on this host.
    measure : {"uss", "pss"}, default="uss"
        The figure per process. USS: what the process alone holds (a
        mapped file shared by every engine counts in none). PSS: shared
        pages split between their sharers, so that a sum over processes is
        the fair total (the mapped file counts once, over all of them).
    processes : iterable of int or psutil.Process, or a callable, optional
        Also sample the summed ``measure`` of these processes and all their
        descendants (:func:`tree_memory`), e.g. ``[psutil.Process()]`` for
        this kernel with its controller and engines. A callable is asked
        for the roots at every sample (a kernel that starts later).

    Attributes
    ----------
    samples : list of dict
        One per sample: ``{"time_s": seconds since entry, "host_mb": used
        memory of this host, "engines_mb": {engine_id: USS or PSS}}``, and
        ``"processes_mb"`` with ``processes`` (all in MiB). An engine asked
        but not yet answering is missing from ``engines_mb``.
    baseline_mb : dict
        ``{"host": MiB, "engines": {engine_id: MiB}}`` (and ``"processes"``),
        taken on entry.
    peak_growth_mb : dict
        ``{"host": MiB, "engines": {engine_id: MiB}}`` (and
        ``"processes"``): the largest growth over the baseline seen in any
        sample (0 when memory never grew).
    peak_mb : dict
        The same keys: the largest figure seen, not its growth.
    host : str
        The host whose memory is sampled: this one.

    Examples
    --------
    >>> import numpy as np
    >>> with MemoryMonitor(interval=0.01) as monitor:
    ...     block = np.ones(50 * 2**20 // 8)
    ...     time.sleep(0.05)
    >>> len(monitor.samples) >= 2
    True
    >>> sorted(monitor.peak_growth_mb)
    ['engines', 'host']
    >>> ax = monitor.plot()  # doctest: +SKIP
    """

    def __init__(
        self, client=None, interval=0.1, *, sample_by_pid=None, measure="uss", processes=None
    ):
        # Checked here, at the door, and again on entry (attributes can change).
        if client is not None:
            _as_direct_view(client, name="client")
        check_seconds(interval, "interval")
        _check_sample_by_pid(sample_by_pid)
        _check_measure(measure)
        _check_processes(processes)
        self.client = client
        self.interval = interval
        self.sample_by_pid = sample_by_pid
        self.measure = measure
        self.processes = processes
        self.host = socket.gethostname()
        self.samples = []
        self.baseline_mb = {"host": None, "engines": {}}
        self._thread = None
        self._stop = threading.Event()
        self._error = None

    def __enter__(self):
        self.interval = check_seconds(self.interval, "interval")
        _check_sample_by_pid(self.sample_by_pid)
        if self._thread is not None:
            raise RuntimeError("This MemoryMonitor has already been used: create a new one.")
        self._local, self._remote, self._entry_uss = {}, [], {}
        if self.client is not None:
            view = _as_direct_view(self.client, name="client")
            self._split_engines(view)
        self._pending = {}
        self._start = time.monotonic()
        self._sample()
        first = self.samples[0]
        first["engines_mb"].update(self._entry_uss)
        self.baseline_mb = {"host": first["host_mb"], "engines": dict(first["engines_mb"])}
        if "processes_mb" in first:
            self.baseline_mb["processes"] = first["processes_mb"]
        self._thread = threading.Thread(
            target=self._run, name=f"MemoryMonitor-{id(self):x}", daemon=True
        )
        self._thread.start()
        return self

    def _split_engines(self, view):
        reports = view.apply_async(_engine_report).get_dict()
        self._entry_uss = {}
        for engine_id, report in sorted(reports.items()):
            on_this_host = report["host"] == self.host and psutil.pid_exists(report["pid"])
            if self.sample_by_pid and not on_this_host:
                raise ValueError(
                    f"sample_by_pid=True, but engine {engine_id} runs on host "
                    f"{report['host']!r}, not on this host {self.host!r}."
                )
            if on_this_host and self.sample_by_pid is not False:
                self._local[engine_id] = psutil.Process(report["pid"])
            else:
                self._remote.append(engine_id)
                self._entry_uss[engine_id] = report[f"{self.measure}_mb"]
        self._view_client = view.client

    def __exit__(self, exc_type, exc, tb):
        self._stop.set()
        self._thread.join()
        # The last word: memory as the block left it. Engines that were asked
        # get a moment to answer; a request still unanswered is left queued.
        self._sample(wait=min(2.0, 10 * self.interval), ask=False)
        if self._error is not None and exc_type is None:
            raise RuntimeError("MemoryMonitor's sampling thread failed.") from self._error
        return False

    def _run(self):
        try:
            while not self._stop.wait(self.interval):
                self._sample()
        except Exception as error:  # reported on exit, never lost
            self._error = error

    def _sample(self, wait=0.0, ask=True):
        now = time.monotonic() - self._start
        engines = {}
        for engine_id, proc in self._local.items():
            try:
                engines[engine_id] = getattr(proc.memory_full_info(), self.measure) / MIB
            except psutil.NoSuchProcess:
                continue  # the engine died: its line stops
        engines.update(self._collect_remote(wait))
        if ask:
            self._ask_remote()
        sample = {"time_s": now, "host_mb": _local_host_memory_mb(), "engines_mb": engines}
        if self.processes is not None:
            roots = self.processes() if callable(self.processes) else self.processes
            sample["processes_mb"] = tree_memory(roots, self.measure)
        self.samples.append(sample)

    def _ask_remote(self):
        for engine_id in self._remote:
            if engine_id not in self._pending:
                view = self._view_client[engine_id]
                self._pending[engine_id] = view.apply_async(_engine_report)

    def _collect_remote(self, wait):
        answers = {}
        deadline = time.monotonic() + wait
        for engine_id, result in list(self._pending.items()):
            result.wait(max(0.0, deadline - time.monotonic()))
            if result.ready():
                del self._pending[engine_id]
                if result.successful():
                    answers[engine_id] = result.get()[f"{self.measure}_mb"]
        return answers

    @property
    def peak_mb(self):
        """Largest figure of any sample: ``{"host": MiB, "engines": {id: MiB}}`` (and processes)."""
        engines = {}
        for sample in self.samples:
            for engine_id, value in sample["engines_mb"].items():
                engines[engine_id] = max(engines.get(engine_id, value), value)
        peaks = {
            "host": max((s["host_mb"] for s in self.samples), default=None),
            "engines": dict(sorted(engines.items())),
        }
        if self.processes is not None:
            peaks["processes"] = max((s["processes_mb"] for s in self.samples), default=None)
        return peaks

    @property
    def peak_growth_mb(self):
        """Largest growth over the baseline: ``{"host": MiB, "engines": {id: MiB}}``, processes."""
        peaks, base = self.peak_mb, self.baseline_mb
        growth = {
            name: 0.0 if peaks[name] is None else max(0.0, peaks[name] - base[name])
            for name in peaks
            if name != "engines"
        }
        growth["engines"] = {
            engine_id: max(0.0, peak - base["engines"].get(engine_id, peak))
            for engine_id, peak in peaks["engines"].items()
        }
        return {"host": growth.pop("host"), "engines": growth.pop("engines"), **growth}

    def plot(self, ax=None):
        """Memory growth over the baseline against time, one line per engine and the host.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Where to draw. Default: a new figure.

        Returns
        -------
        matplotlib.axes.Axes
        """
        if not self.samples:
            raise RuntimeError("No samples yet: use the monitor in a `with` block first.")
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(7, 4))
        base = self.baseline_mb
        times = [s["time_s"] for s in self.samples]
        totals = [("host", f"host {self.host} (used)", "black")]
        if self.processes is not None:
            totals.append(("processes", f"processes (summed {self.measure.upper()})", "grey"))
        for name, label, color in totals:
            growth = [s[f"{name}_mb"] - base[name] for s in self.samples]
            ax.plot(times, growth, label=label, linewidth=2, color=color)
        engine_ids = sorted({e for s in self.samples for e in s["engines_mb"]})
        for engine_id in engine_ids:
            kept = [s for s in self.samples if engine_id in s["engines_mb"]]
            growth = [s["engines_mb"][engine_id] - base["engines"][engine_id] for s in kept]
            ax.plot(
                [s["time_s"] for s in kept],
                growth,
                label=f"engine {engine_id} ({self.measure.upper()})",
                marker=".",
            )
        ax.set_xlabel("time since entry (s)")
        ax.set_ylabel("growth over baseline (MiB)")
        ax.set_title("Memory while the block ran")
        ax.legend(loc="best")
        ax.grid(True, alpha=0.3)
        return ax
