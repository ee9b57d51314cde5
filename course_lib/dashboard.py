"""A live view of a cluster in the notebook: each engine's memory and a task timeline.

ipyparallel has no dashboard; dask's shows each worker's memory and a task
stream, and that is how people learn load balancing and memory sharing: by
watching them. :func:`watch` shows one widget under the cell that calls it and
keeps it up to date from a background thread, while the notebook's next cells
send work to the engines:

- **memory**: each engine's PSS (its fair share of the pages it uses) and RSS
  (every page it maps, shared ones too) over time, and the host's available
  memory (free memory plus the page cache it can drop),
  read with :func:`course_lib.memory.process_memory` by PID (an engine busy
  computing cannot answer, but its memory can be read; engines on other hosts
  are listed in the timeline only);
- **tasks**: one row per engine and one bar per task, from the task metadata
  that ipyparallel keeps for every request (which engine, when it started and
  ended); a bar that is still growing is a task still running.

The view never sends work to busy engines and never blocks the notebook. It
costs the watched work little: the kernel reads a few ``/proc`` files and draws
two SVG charts per update (``bench/dashboard.py`` measures it).

Examples
--------
>>> from course_lib.dashboard import watch
>>> view = watch(client)  # doctest: +SKIP
>>> lview.map_sync(fit, settings)  # doctest: +SKIP
>>> view.stop()  # doctest: +SKIP

or, for one block of work:

>>> with watch(client):  # doctest: +SKIP
...     lview.map_sync(fit, settings)
"""

from __future__ import annotations

import datetime
import numbers
import os
import socket
import threading
import time
import weakref

import ipyparallel
import psutil

from course_lib import _dashboard_svg
from course_lib.memory import MIB, process_memory

__all__ = ["ClusterDashboard", "watch"]

#: How often the view looks for newly submitted tasks (seconds): only a glance at the
#: client's history. ipyparallel forgets a task's metadata once its result is in: a task
#: is seen if it lives this long.
POLL_SECONDS = 0.05
#: How often it looks at which tasks started or ended (seconds).
SCAN_SECONDS = 0.2
#: How often it reads the engines' memory (seconds). PSS means reading each engine's
#: /proc/PID/smaps_rollup, which walks its memory map: a few milliseconds per engine.
MEMORY_SECONDS = 1.0
#: At most this many tasks are drawn (the latest); the counts include them all.
MAX_DRAWN_TASKS = 2000
#: The running views, so that running a cell again replaces its view (weak: a view
#: nobody holds any more is not kept alive by this set).
_RUNNING = weakref.WeakSet()


def _where():
    """Run on an engine: its host and process id."""
    return socket.gethostname(), os.getpid()


def _check_interval(interval):
    if isinstance(interval, bool) or not isinstance(interval, numbers.Real):
        raise TypeError(f"interval must be a number of seconds, but got {interval!r}.")
    if not 0 < interval <= 1:
        raise ValueError(
            f"interval == {interval!r}: must be > 0 and at most 1 second (the view "
            "updates at least once a second)."
        )
    return float(interval)


def _check_client(client):
    if isinstance(client, (ipyparallel.DirectView, ipyparallel.LoadBalancedView)):
        return client.client
    if not isinstance(client, ipyparallel.Client):
        raise TypeError(
            f"client must be an ipyparallel Client or view, but got {client!r} "
            f"(of type {type(client).__name__})."
        )
    return client


def _timestamp(value):
    """Seconds since the epoch of a metadata date (a datetime, or its ISO text until
    an AsyncResult parses it)."""
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    if value.tzinfo is None:  # ipyparallel's dates are in UTC
        value = value.replace(tzinfo=datetime.UTC)
    return value.timestamp()


def _host_free_mb():
    vm = psutil.virtual_memory()
    return vm.available / MIB, vm.total / MIB


class ClusterDashboard:
    """A widget that shows a cluster's engines working, updated in the background.

    Use :func:`watch`, which creates one, shows it and starts it.

    Parameters
    ----------
    client : ipyparallel.Client or view
        The cluster to watch (a view's client).
    interval : float, default=0.5
        Seconds between updates (at most 1).

    Attributes
    ----------
    widget : ipywidgets.VBox
        What the notebook shows: a status line, the memory chart, the timeline.
    memory : list of dict
        One sample per update: ``{"time_s", "host_free_mb", "host_total_mb",
        "engines": {engine_id: {"rss_mb", "uss_mb", "pss_mb"}}}``; the host's
        free memory is what it could give a new program without swapping
        (``psutil``'s *available*: free memory and the page cache it can drop).
    frames : int
        Updates drawn so far.
    error : Exception or None
        What stopped the updates, if anything did (also shown in the widget).

    Examples
    --------
    >>> dashboard = ClusterDashboard(client).start()  # doctest: +SKIP
    >>> dashboard.stop()  # doctest: +SKIP
    """

    def __init__(self, client, interval=0.5):
        self.client = _check_client(client)
        self.interval = _check_interval(interval)
        self.memory = []
        self.frames = 0
        self.error = None
        self.host = socket.gethostname()
        self._start_wall = None
        self._thread = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._seen = 0  # how much of client.history has been looked at
        self._watching = {}  # msg_id: metadata of tasks not finished when last looked at
        self._first_seen = {}  # msg_id: seconds when first seen running
        self._done = []  # finished tasks, as drawn
        self._own = set()  # our own requests (where each engine is)
        self._locating = {}  # engine_id: AsyncResult of _where
        self._pids = {}  # engine_id: pid, for engines on this host
        self._elsewhere = {}  # engine_id: host, for the others
        self.widget = self._make_widget()

    # -- the widget ---------------------------------------------------------------------

    def _make_widget(self):
        try:
            import ipywidgets
        except ImportError:  # pragma: no cover - the course extra installs it
            raise ImportError(
                "course_lib.dashboard needs ipywidgets: install the course extra "
                "(pip install 'course_lib[course]')."
            ) from None
        self._status = ipywidgets.HTML("starting...")
        self._memory_pane = ipywidgets.HTML()
        self._tasks_pane = ipywidgets.HTML()
        for pane in (self._status, self._memory_pane, self._tasks_pane):
            pane.add_class("course-dashboard-pane")
        box = ipywidgets.VBox([self._status, self._memory_pane, self._tasks_pane])
        box.add_class("course-dashboard")
        return box

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    # -- start and stop -----------------------------------------------------------------

    def start(self):
        """Start updating (in a background thread); returns the dashboard itself."""
        if self._thread is not None:
            raise RuntimeError("This dashboard has already been started: use watch() again.")
        for other in list(_RUNNING):
            if other.client is self.client:
                other.stop()  # a cell run again: one view per cluster
        self._start_wall = time.time()
        self._seen = len(self.client.history)  # only what is sent from now on
        self._locate(self.client.ids)
        self._update()
        self._thread = threading.Thread(
            target=self._run, name=f"ClusterDashboard-{id(self):x}", daemon=True
        )
        self._thread.start()
        _RUNNING.add(self)
        return self

    def stop(self):
        """Stop updating and draw the last state; returns the dashboard itself."""
        if self._thread is None:
            return self
        self._stop.set()
        self._thread.join()
        _RUNNING.discard(self)
        if self.error is None:
            self._update(final=True)
        return self

    @property
    def running(self):
        """True while the view updates."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self):
        return self if self._thread is not None else self.start()

    def __exit__(self, *exc_info):
        self.stop()
        return False

    def _run(self):
        next_scan = next_frame = time.monotonic()
        try:
            while not self._stop.wait(POLL_SECONDS):
                if self._closed():
                    self._set_status("the cluster was stopped: the view stopped too")
                    return
                self._catch_new()
                now = time.monotonic()
                if now >= next_frame + self.interval:
                    next_frame = now
                    self._update()
                elif now >= next_scan + SCAN_SECONDS:
                    next_scan = now
                    self._collect()
        except Exception as error:  # shown, never lost
            self.error = error
            self._set_status(f"the view stopped: {type(error).__name__}: {error}")

    def _closed(self):
        return getattr(self.client, "_closed", False)

    # -- what the engines do ------------------------------------------------------------

    def _now(self):
        return time.time() - self._start_wall

    def _locate(self, engine_ids):
        """Ask new engines where they are (they answer between tasks)."""
        for engine_id in engine_ids:
            if engine_id not in self._locating and engine_id not in self._pids:
                result = self.client[engine_id].apply_async(_where)
                self._own.update(result.msg_ids)
                self._locating[engine_id] = result

    def _catch_new(self):
        """Keep the metadata of newly sent tasks, before ipyparallel forgets it."""
        history = self.client.history
        if len(history) == self._seen:
            return
        for msg_id in history[self._seen : len(history)]:
            metadata = self.client.metadata.get(msg_id)  # .get: never create entries
            if metadata is not None and msg_id not in self._own:
                self._watching[msg_id] = metadata
        self._seen = len(history)

    def _collect(self):
        """Note which tasks started or ended, and where new engines run."""
        self._catch_new()
        now = self._now()
        with self._lock:
            for msg_id, metadata in list(self._watching.items()):
                if metadata["completed"] is not None and metadata["engine_id"] is not None:
                    started = metadata["started"] or metadata["completed"]
                    self._done.append(
                        {
                            "engine_id": metadata["engine_id"],
                            "start_s": _timestamp(started) - self._start_wall,
                            "end_s": _timestamp(metadata["completed"]) - self._start_wall,
                            "label": metadata["label"] or f"task {msg_id[:8]}",
                        }
                    )
                    del self._watching[msg_id]
                    self._first_seen.pop(msg_id, None)
                elif metadata["engine_id"] is not None:
                    self._first_seen.setdefault(msg_id, now)
        for engine_id, result in list(self._locating.items()):
            if result.ready():
                del self._locating[engine_id]
                if result.successful():
                    host, pid = result.get()
                    if host == self.host and psutil.pid_exists(pid):
                        self._pids[engine_id] = pid
                    else:
                        self._elsewhere[engine_id] = host
        self._locate(set(self.client.ids) - set(self._pids) - set(self._elsewhere))

    @property
    def tasks(self):
        """Every task seen: ``{"engine_id", "start_s", "end_s", "label"}``, the running
        ones with ``end_s`` None, in seconds since the view started."""
        with self._lock:
            running = [
                {
                    "engine_id": self._watching[msg_id]["engine_id"],
                    "start_s": start,
                    "end_s": None,
                    "label": self._watching[msg_id]["label"] or f"task {msg_id[:8]}",
                }
                for msg_id, start in self._first_seen.items()
                if msg_id in self._watching
            ]
            return sorted(self._done, key=lambda t: t["start_s"]) + running

    def _sample_memory(self, fresh=False):
        """The engines' memory now, or the last sample if it is recent and covers every
        engine located since (``fresh``: always now, as in the last frame)."""
        last = self.memory[-1] if self.memory else None
        if (
            not fresh
            and last is not None
            and self._now() - last["time_s"] < MEMORY_SECONDS - 1e-3
            and set(last["engines"]) >= set(self._pids)
        ):
            return last
        engines = {}
        for engine_id, pid in sorted(self._pids.items()):
            try:
                engines[engine_id] = process_memory(pid)
            except (ValueError, PermissionError):
                continue  # the engine is gone (or not ours): its line stops
        free, total = _host_free_mb()
        sample = {
            "time_s": self._now(),
            "host_free_mb": free,
            "host_total_mb": total,
            "engines": engines,
        }
        self.memory.append(sample)
        return sample

    # -- drawing ------------------------------------------------------------------------

    def _set_status(self, text):
        self._status.value = f"<b>Cluster view</b> &middot; {text}"

    def _update(self, final=False):
        self._collect()
        sample = self._sample_memory(fresh=final)
        tasks = self.tasks
        engine_ids = sorted(set(self.client.ids) | {t["engine_id"] for t in tasks})
        now = self._now()
        running = sum(t["end_s"] is None for t in tasks)
        state = f"stopped after {now:.1f} s" if final else f"live, {now:.0f} s"
        elsewhere = (
            f"; engines on other hosts (no memory shown): {sorted(self._elsewhere)}"
            if self._elsewhere
            else ""
        )
        self._set_status(
            f"{state} &middot; {len(engine_ids)} engines &middot; {len(tasks)} tasks "
            f"({running} running) &middot; host {self.host}: "
            f"{sample['host_free_mb'] / 1024:.1f} GiB available of "
            f"{sample['host_total_mb'] / 1024:.1f} GiB{elsewhere}"
        )
        self._memory_pane.value = _dashboard_svg.memory_chart(self.memory)
        self._tasks_pane.value = _dashboard_svg.timeline_chart(
            tasks[-MAX_DRAWN_TASKS:], engine_ids, now
        )
        self.frames += 1


def watch(client, interval=0.5, *, display=True):
    """Show a live view of the cluster under this cell, and keep it up to date.

    One call starts it; ``.stop()`` (or the end of a ``with`` block) stops it and
    leaves its last picture. Running the cell again replaces the earlier view.

    Parameters
    ----------
    client : ipyparallel.Client or view
        The cluster to watch. Start the view while the engines are idle: each
        engine says once where it runs (busy engines answer after their task).
    interval : float, default=0.5
        Seconds between updates, at most 1.
    display : bool, default=True
        Show the widget now (in a notebook). False: show it yourself, with
        ``display(view)`` or ``view.widget``.

    Returns
    -------
    ClusterDashboard
        Started. ``.memory`` and ``.tasks`` hold what it saw.

    Raises
    ------
    TypeError, ValueError
        If ``client`` is not an ipyparallel Client or view, or ``interval`` is
        not a number of seconds in (0, 1].

    Examples
    --------
    >>> view = watch(client)  # doctest: +SKIP
    >>> squares = client.load_balanced_view().map_sync(lambda x: x * x, range(32))  # doctest: +SKIP
    >>> view.stop().tasks[0]["engine_id"]  # doctest: +SKIP
    0
    """
    dashboard = ClusterDashboard(client, interval)
    if display:
        from IPython.display import display as show

        show(dashboard.widget)
    return dashboard.start()
