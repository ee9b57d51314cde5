"""Functions the tests send to the engines, through the student's own cluster.

A test cell that needs work done on the student's engines (a function whose
result the test knows in advance, a pause of a length it drew) cannot send its
own code to the student's kernel: only names and data cross
(:mod:`course_lib.checking`). It names one of these functions instead, with
``student.probe("name", **parameters)``, and the student's kernel imports it
from here. Each takes its parameters as plain data and returns plain data.

Examples
--------
>>> affine_with_pid(3, a=2, b=1)[0]
7
"""

import os
import time

__all__ = [
    "HeldTasks",
    "QueueWatch",
    "affine_with_pid",
    "array_info",
    "discard_scratch",
    "file_text",
    "fill_global",
    "forget_global",
    "held_tasks",
    "is_one_of",
    "persist_splits",
    "pick",
    "pretend_host",
    "pretend_hosts",
    "read_global_map",
    "read_splits",
    "scratch_file",
    "scratch_folder",
    "spy_report",
    "stream_spies",
    "task_result",
    "timed_pause",
    "tweet_corpus",
    "wait_for_file",
    "watch_queues",
    "write_random_npy",
]


# -- shared by several lessons --------------------------------------------------


def affine_with_pid(x, a=1, b=0, seconds=0.0):
    """``(a * x + b, pid)`` after sleeping ``seconds``: which engine computed what."""
    time.sleep(seconds)
    return a * x + b, os.getpid()


def timed_pause(seconds):
    """Sleep ``seconds``; return ``(pid, seconds measured on the engine)``."""
    start = time.perf_counter()
    time.sleep(seconds)
    return os.getpid(), time.perf_counter() - start


# -- lesson 1 -------------------------------------------------------------------


def _globals(variable):
    """The namespace of this process's notebook or engine, and ``variable`` checked."""
    from course_lib.checking import _namespace

    if not isinstance(variable, str) or not variable.isidentifier():
        raise ValueError(f"variable == {variable!r}, must be a Python identifier.")
    return _namespace(), variable


def fill_global(variable, size_mib):
    """Hold a float64 array of ``size_mib`` MiB, every value written, as the global ``variable``.

    Run on an engine, its RSS grows by about ``size_mib`` MiB until
    :func:`forget_global` removes the array. Returns the array's size in bytes.

    Examples
    --------
    >>> fill_global("_probe_block", 1)
    1048576
    >>> forget_global("_probe_block")
    """
    import numpy as np

    if isinstance(size_mib, bool) or not isinstance(size_mib, int) or size_mib < 0:
        raise ValueError(f"size_mib == {size_mib!r}, must be a whole number of MiB >= 0.")
    namespace, variable = _globals(variable)
    block = np.ones(size_mib * 2**20 // 8, dtype=np.float64)  # ones: every page written
    namespace[variable] = block
    return int(block.nbytes)


def array_info(variable):
    """``(dtype, nbytes)`` of the NumPy array in the global ``variable``; None if there is none.

    Examples
    --------
    >>> fill_global("_probe_block", 1)
    1048576
    >>> array_info("_probe_block"), array_info("_probe_nothing")
    (('float64', 1048576), None)
    >>> forget_global("_probe_block")
    """
    import numpy as np

    namespace, variable = _globals(variable)
    value = namespace.get(variable)
    if not isinstance(value, np.ndarray):
        return None
    return str(value.dtype), int(value.nbytes)


def forget_global(variable):
    """Remove the global ``variable`` (if any) and hand freed memory back to the system.

    Freed heap pages can stay resident and be reused by the next array, which
    would then not raise the process's RSS: they are returned to the system
    (glibc's ``malloc_trim``, where there is one) before a test measures.
    """
    import ctypes
    import gc

    namespace, variable = _globals(variable)
    namespace.pop(variable, None)
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


# -- lesson 2 -------------------------------------------------------------------


# -- lesson 3 -------------------------------------------------------------------


def write_random_npy(path, n_values, seed):
    """Save ``numpy.random.default_rng(seed).standard_normal(n_values)`` at ``path``.

    The file is written by :func:`numpy.save` (a ``.npy`` file); the test
    computes the same values itself from ``seed``. Returns their size in bytes.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "values.npy")
    >>> write_random_npy(path, 4, seed=0)
    32
    """
    import numpy as np

    values = np.random.default_rng(seed).standard_normal(n_values)
    np.save(path, values)
    return int(values.nbytes)


def read_global_map(variable):
    """Read every value of the array in the global ``variable``; describe it, as data.

    Reading touches every page, so a memory map's pages come into the
    process (and into its PSS). Returns ``{"type", "writeable", "shape",
    "sum"}``, or None when ``variable`` holds no NumPy array.

    Examples
    --------
    >>> fill_global("_probe_block", 1)
    1048576
    >>> read_global_map("_probe_block")["sum"]
    131072.0
    >>> forget_global("_probe_block")
    """
    import numpy as np

    namespace, variable = _globals(variable)
    value = namespace.get(variable)
    if not isinstance(value, np.ndarray):
        return None
    return {
        "type": type(value).__name__,
        "writeable": bool(value.flags.writeable),
        "shape": tuple(int(n) for n in value.shape),
        "sum": float(value.sum()),
    }


def read_splits(paths):
    """Open every split file of ``paths`` memory-mapped, as lesson 3's tests read them.

    A file made by :func:`course_lib.splits.persist_cv_splits` opens with
    :func:`course_lib.splits.load_cv_split`; any other ``joblib`` file must
    hold the four parts ``(X_train, y_train, X_test, y_test)``. Returns one
    dict per path, in order: ``{"path", "mapped", "parts"}`` (``mapped``:
    both ``X`` parts are memory maps; ``parts``: the four as arrays), or
    ``{"path", "holds"}`` (the type found) when the file holds something else.
    """
    import joblib
    import numpy as np

    from course_lib.splits import load_cv_split

    found = []
    for path in list(paths):
        stored = joblib.load(path, mmap_mode="r")
        if isinstance(stored, dict):
            parts = load_cv_split(path)
        elif isinstance(stored, tuple | list) and len(stored) == 4:
            parts = tuple(stored)
        else:
            found.append({"path": str(path), "holds": type(stored).__name__})
            continue
        mapped = isinstance(parts[0], np.memmap) and isinstance(parts[2], np.memmap)
        found.append(
            {"path": str(path), "mapped": mapped, "parts": tuple(np.asarray(p) for p in parts)}
        )
    return found


# -- lesson 4 -------------------------------------------------------------------

#: Folders the probes made on the student's side; each is also removed at exit.
_SCRATCH = []


def scratch_folder():
    """A new empty folder for a test's files, removed at exit: its path (a str)."""
    import atexit
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="grading-")
    _SCRATCH.append(folder)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def discard_scratch(paths):
    """Remove the probes' folders that hold ``paths`` (a path or a list); nothing else.

    Returns the number of folders removed. A path outside the probes' folders
    is left alone: a test can only clean up what a probe made.
    """
    import shutil

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    removed = 0
    for folder in list(_SCRATCH):
        inside = [p for p in paths if os.path.commonpath([folder, os.path.abspath(p)]) == folder]
        if inside:
            shutil.rmtree(folder, ignore_errors=True)
            _SCRATCH.remove(folder)
            removed += 1
    return removed


def persist_splits(X, y, splits):
    """Persist ``(train, test)`` index pairs of ``X, y`` in a scratch folder.

    The test draws the data and the splits, so it knows every split's
    content; the files are written on the student's side, where engines can
    map them. Returns :func:`course_lib.splits.persist_cv_splits`'s list of
    paths (keep it on the student's side with ``student.keep``).
    """
    import numpy as np

    from course_lib.splits import persist_cv_splits

    pairs = [(np.asarray(train), np.asarray(test)) for train, test in splits]
    return persist_cv_splits(np.asarray(X), np.asarray(y), pairs, scratch_folder(), "grading")


def pick(sequence, index):
    """``sequence[index]``, or a list of those for a list of indices.

    A test keeps it on the student's side (``student.keep``): one split path of
    the notebook's ``split_paths``, say, passed on as the notebook has it.
    """
    if isinstance(index, list):
        return [sequence[i] for i in index]
    return sequence[index]


def wait_for_file(path, timeout):
    """On an engine: hold it until ``path`` exists or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    return os.path.exists(path)


def task_result(score):
    """On an engine: a search task's result whose ``test_score`` the test chose."""
    return {"test_score": score}


class HeldTasks:
    """Tasks of a fake search, some finished, the others stuck behind a held engine.

    Made by :func:`held_tasks`. ``tasks`` is ``{(setting, split): AsyncResult}``.
    """

    def __init__(self, tasks, hold, flag):
        self.tasks = tasks
        self._hold = hold
        self._flag = flag

    def hold_ended(self):
        """Whether the held engine was let go: true only after :meth:`release`."""
        return self._hold.ready()

    def release(self, timeout=20.0):
        """Let the held engine go, wait for every task, remove the flag's folder."""
        with open(self._flag, "w"):
            pass
        self._hold.wait(timeout)
        for task in self.tasks.values():
            task.wait(timeout)
        discard_scratch(self._flag)


def held_tasks(client, scores, finished, timeout=30.0):
    """Start a fake search of which only the ``finished`` tasks are done.

    Parameters
    ----------
    client : ipyparallel.Client
        The student's client: its first engine runs the finished tasks, its
        last one is held (for at most ``timeout`` seconds) and then runs the rest.
    scores : dict
        ``{(setting, split): test score}``, in the order tasks are submitted.
    finished : collection of (setting, split)
        The tasks that are done when this returns.

    Returns
    -------
    HeldTasks
    """
    finished = {tuple(key) for key in finished}
    fast, slow = client[client.ids[0]], client[client.ids[-1]]
    flag = os.path.join(scratch_folder(), "go")
    hold = slow.apply_async(wait_for_file, flag, timeout)
    tasks = {
        tuple(key): (fast if tuple(key) in finished else slow).apply_async(task_result, score)
        for key, score in scores.items()
    }
    for key in finished:
        tasks[key].wait(10)
    return HeldTasks(tasks, hold, flag)


# -- lesson 5 -------------------------------------------------------------------


def stream_spies(texts, targets, batch_size, random_state=0):
    """A stream and a classifier that record how a training loop uses them.

    Returns an object with ``stream`` (a :class:`course_lib.text.TweetStream`
    counting its ``next_batch`` calls in ``calls``) and ``classifier`` (an
    ``SGDClassifier`` whose ``log`` lists ``(method, n_rows, batches taken
    so far)`` for every ``partial_fit`` and ``fit``). Read them with
    :func:`spy_report`.
    """
    import types

    from sklearn.linear_model import SGDClassifier

    from course_lib.text import TweetStream

    state = types.SimpleNamespace(calls=0)

    class SpyStream(TweetStream):
        def next_batch(self, size=None):
            state.calls += 1
            self.calls = state.calls
            return super().next_batch(size)

    class SpyClassifier(SGDClassifier):
        def partial_fit(self, X, y, classes=None, sample_weight=None):
            self.log = [*getattr(self, "log", []), ("partial_fit", X.shape[0], state.calls)]
            return super().partial_fit(X, y, classes=classes, sample_weight=sample_weight)

        def fit(self, X, y, **kwargs):
            self.log = [*getattr(self, "log", []), ("fit", X.shape[0], state.calls)]
            return super().fit(X, y, **kwargs)

    stream = SpyStream(texts, targets, batch_size=batch_size, random_state=random_state)
    stream.calls = 0
    return types.SimpleNamespace(
        stream=stream, classifier=SpyClassifier(random_state=0), state=state
    )


def spy_report(spies, trained):
    """What :func:`stream_spies` saw: ``{"calls", "batch_size", "log"}``.

    ``log`` is the record of ``trained`` (what the loop returned), empty when
    it is not a spy classifier.
    """
    log = getattr(trained, "log", [])
    return {
        "calls": spies.state.calls,
        "batch_size": spies.stream.batch_size,
        "log": [tuple(entry) for entry in log] if isinstance(log, list) else [],
    }


# -- lesson 6 -------------------------------------------------------------------


def tweet_corpus(n_rows, random_state):
    """:func:`course_lib.datasets.make_tweet_corpus` written in a scratch folder: its path.

    The corpus is a function of its seed: the test makes the same one on its
    side to know what every partition holds.
    """
    from course_lib.datasets import make_tweet_corpus

    path = os.path.join(scratch_folder(), f"grading-{n_rows}.csv")
    return str(make_tweet_corpus(n_rows, random_state=random_state, path=path))


def is_one_of(value, candidates):
    """Whether ``value`` is (the very object) one of ``candidates``."""
    return any(value is candidate for candidate in candidates)


# -- lesson 7 -------------------------------------------------------------------


def scratch_file(name, text, mode=0o600):
    """Write ``text`` to a new file ``name`` in a scratch folder: its path (a str)."""
    if os.path.basename(name) != name or name in ("", ".", ".."):
        raise ValueError(f"name == {name!r}, must be a file name without a folder.")
    path = os.path.join(scratch_folder(), name)
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)
    os.chmod(path, mode)
    return path


def file_text(path):
    """The text of a file, as it is now (undecodable bytes replaced)."""
    with open(path, encoding="utf-8", errors="replace") as file:
        return file.read()


def pretend_host(name=None):
    """On an engine: ``socket.gethostname()`` answers ``name`` (None: the real name)."""
    import _socket
    import socket

    real = getattr(socket, "_grading_gethostname", socket.gethostname)
    socket._grading_gethostname = real
    socket.gethostname = _socket.gethostname = real if name is None else (lambda: name)


def pretend_hosts(client, names):
    """Make each engine ``{engine_id: host name or None}`` answer that host name."""
    for engine_id, name in names.items():
        client[int(engine_id)].apply_sync(pretend_host, name)


class QueueWatch:
    """A thread that samples a controller's queues from a client of its own.

    Made by :func:`watch_queues`; :meth:`stop` ends it and returns what it saw.
    """

    def __init__(self, connection, period=0.05):
        import threading

        self._connection = connection
        self._period = period
        self._stop = threading.Event()
        self._seen = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        while not self._seen and self._thread.is_alive():
            time.sleep(0.01)

    def _run(self):
        import ipyparallel as ipp

        watcher = ipp.Client(self._connection)
        try:
            while not self._stop.is_set():
                status = watcher.queue_status()  # also lists engines that died, stale
                ids = set(watcher.ids)
                unassigned = status.pop("unassigned")
                busy = unassigned + sum(
                    status[e]["queue"] + status[e]["tasks"] for e in ids if e in status
                )
                self._seen.append((ids, unassigned, busy))
                time.sleep(self._period)
        finally:
            watcher.close()

    def stop(self):
        """Stop watching: ``[(engine ids, unassigned tasks, tasks not finished), ...]``."""
        self._stop.set()
        self._thread.join()
        return [(sorted(ids), unassigned, busy) for ids, unassigned, busy in self._seen]


def watch_queues(connection):
    """Start watching the queues of a controller: a :class:`QueueWatch`.

    ``connection`` is a client's connection info (the dict of
    ``ipcontroller-client.json``). The watch has sampled once when this returns.
    """
    return QueueWatch(connection)
