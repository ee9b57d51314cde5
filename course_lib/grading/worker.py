"""nbgrader's start-up paid once per worker, not once per submission.

A :class:`Worker` is one ``python -m course_lib.grading._nbgrader_task --worker``
process: it imports nbgrader once, then grades task after task, each in the
task's own temporary course root with a fresh nbgrader application and the
task's own environment and log. What one task starts (kernels, clusters,
whatever the student's code starts) is tracked and stopped by PID when the
task ends, exactly as :func:`course_lib.grading.runner.run_isolated` does for a
process of its own; a task that runs past its limit kills its worker, and the
next task starts a fresh one. :class:`WorkerPool` lends idle workers to the
threads that grade (:func:`course_lib.grading.runner.run_tasks`).

Examples
--------
>>> from course_lib.grading.runner import Workspace
>>> workspace = Workspace(sandbox=False)
>>> workspace.pool is not None
True
>>> workspace.cleanup()
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time

import psutil

from course_lib._processes import alive_or_marked

__all__ = ["Worker", "WorkerPool", "READY_TIMEOUT"]

#: Seconds a worker may take to import nbgrader and say it is ready.
READY_TIMEOUT = 300.0
#: Task environment variables a worker sets for one task (the rest is the run's).
TASK_ENV = (
    "JUPYTER_RUNTIME_DIR",
    "IPYTHONDIR",
    "COURSE_GRADING_ATTEMPT",
    "COURSE_GRADING_TASK",
    "COURSE_SANDBOX_DIR",
)


class WorkerError(RuntimeError):
    """A worker died or did not answer: never the student's doing."""


class Worker:
    """One nbgrader process that grades one task after another.

    Parameters
    ----------
    env : dict
        The worker's environment (the run's); each task adds its own.
    cwd : Path
        The worker's folder between tasks.
    log_path : Path
        Where the worker writes when no task runs (its start-up).
    """

    def __init__(self, env, cwd, log_path):
        self.env, self.cwd, self.log_path = dict(env), cwd, log_path
        self.proc = None
        self.tasks = 0

    def start(self, timeout=READY_TIMEOUT):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "course_lib.grading._nbgrader_task", "--worker"],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.proc.stdout, selectors.EVENT_READ)
        self._buffer = b""
        answer = self._answer(time.time() + timeout)
        if answer is None or "ready" not in answer:
            self.kill()
            raise WorkerError(f"the grading worker did not start (log: {self.log_path})")
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _answer(self, deadline, on_tick=None):
        """The worker's next JSON line, or None (it died, or ``deadline`` passed)."""
        while b"\n" not in self._buffer:
            if time.time() > deadline or self.proc.poll() is not None:
                return None
            if self._selector.select(timeout=1.0):
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    self.proc.wait()
                    return None
                self._buffer += chunk
            if on_tick is not None:
                on_tick()
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def run(self, spec, timeout):
        """Send ``spec``; ``(answer or None, timed_out, tracked processes)``."""
        tracked = {}
        root = psutil.Process(self.proc.pid)

        def sample():
            with contextlib.suppress(psutil.Error):
                for child in root.children(recursive=True):
                    tracked.setdefault(child.pid, child)

        started = time.time()
        try:
            self.proc.stdin.write((json.dumps(spec) + "\n").encode())
            self.proc.stdin.flush()
        except OSError:
            return None, False, []
        answer = self._answer(started + timeout, sample)
        timed_out = answer is None and self.proc.poll() is None
        if answer is None:
            self.kill()
        self.tasks += 1
        return answer, timed_out, list(tracked.values())

    def kill(self):
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def close(self, timeout=10.0):
        """Ask the worker to exit (end of its input); kill it if it does not."""
        if self.proc is None:
            return
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        with contextlib.suppress(OSError):
            self.proc.stdout.close()
        self._selector.close()


class WorkerPool:
    """Idle workers of one :class:`~course_lib.grading.runner.Workspace`, lent per task."""

    def __init__(self, workspace):
        self.workspace = workspace
        self._idle = []
        self._all = []
        self._lock = threading.Lock()

    def _take(self):
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive():
                    return worker
            count = len(self._all) + 1
            worker = Worker(
                self.workspace.env(f"worker-{count}", self.workspace.path),
                self.workspace.path,
                self.workspace.path / f"worker-{count}.log",
            )
            self._all.append(worker)
        return worker.start()

    def warm(self):
        """Start one worker now, in a thread: the first task finds it ready.

        Returns the thread; join it before the first task, or that task starts
        a worker of its own.
        """

        def start():
            with contextlib.suppress(WorkerError):
                worker = self._take()
                with self._lock:
                    self._idle.append(worker)

        thread = threading.Thread(target=start, name="grading-worker-warm", daemon=True)
        thread.start()
        return thread

    def run(self, task_id, root, steps, *, env, log_path, timeout, settle):
        """Run nbgrader ``steps`` in ``root`` on a worker: a runner's ``RunResult``."""
        from course_lib.grading.runner import TASK_VAR, RunResult, stop_what_is_left

        started = time.time()
        spec = {
            "root": str(root),
            "result": str(root / "result.json"),
            "steps": steps,
            "log": str(log_path),
            "env": {k: env[k] for k in TASK_ENV if k in env},
        }
        try:
            worker = self._take()
        except WorkerError as exc:
            with open(log_path, "a") as log:
                print(f"== {exc}", file=log)
            return RunResult(None, False, time.time() - started, [], [], [])
        answer, timed_out, tracked = worker.run(spec, timeout)
        seconds = time.time() - started
        if worker.alive():
            with self._lock:
                self._idle.append(worker)
        returncode = (0 if answer["ok"] else 1) if answer else worker.proc.returncode

        others = [p for p in tracked if p.pid != worker.proc.pid]
        leftovers, survivors = stop_what_is_left(
            lambda: alive_or_marked(others, TASK_VAR, task_id, since=started),
            0 if timed_out else settle,
            log_path,
            f"worker {worker.proc.pid} (task {worker.tasks})",
        )
        return RunResult(returncode, timed_out, seconds, [], leftovers, survivors)

    def close(self):
        with self._lock:
            workers, self._all, self._idle = self._all, [], []
        for worker in workers:
            worker.close()
