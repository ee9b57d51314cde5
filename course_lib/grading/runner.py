"""The isolated runner: nbgrader in a process of its own, nothing left behind.

Every nbgrader step list runs as ``python -m course_lib.grading._nbgrader_task`` in a
temporary course root of its own (a :class:`Workspace` folder), in a session
of its own, with the run's and the task's markers in its environment. Every
process it starts (kernel, controller, engines, whatever the student's code
starts) is tracked while it runs; what is still alive when it ends is
stopped by PID (:mod:`course_lib._processes`). Tasks run ``jobs`` at a time
(:func:`run_tasks`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import joblib
import psutil

from course_lib._processes import (
    alive_or_marked,
    describe,
    find_marked,
    settle_then_stop,
    stop,
)
from course_lib.grading import sandbox as sandboxing
from course_lib.grading.layout import RELEASE_DIR, SOURCE_DIR, course_root_of

__all__ = ["RUN_VAR", "TASK_VAR", "default_jobs"]

#: Memory one grading task may need at its peak: an nbgrader process, a
#: kernel, a controller and two engines (about 1 GB PSS, measured), plus room.
TASK_MEMORY_BYTES = int(1.5 * 2**30)
#: Wall-clock limit of one task (one student, one lesson), in seconds.
TASK_TIMEOUT = 1800.0
#: Seconds the processes of a finished task get to exit by themselves.
SETTLE_SECONDS = 5.0
#: Seconds a grading kernel gets to exit after nbgrader asks it to.
KERNEL_SHUTDOWN_SECONDS = 30.0

RUN_VAR = "COURSE_GRADING_RUN"
TASK_VAR = "COURSE_GRADING_TASK"
#: The folder of a task root where its student kernel's connection file and IPC
#: sockets live (short: a socket's path must fit in 107 bytes).
RUNTIME_DIR = "rt"
#: The same for the checker kernel, with the channel's spec and the sent-log:
#: never bound into the student's sandbox.
CHECKER_DIR = "rc"
#: The folder of a task root where the executor writes, per notebook, the
#: sent-log and the checker's types (course_lib.grading.execute).
AUDIT_DIR = "audit"
#: Suffixes of the two records written there per notebook.
SENT_SUFFIX = ".sent.jsonl"
TYPES_SUFFIX = ".checker-types.json"
#: The kernelspec of checker kernels (made by the Workspace). Kept here, not in
#: course_lib.grading.execute, so that what only runs workers (a Slurm element, the
#: instructor's side) never imports nbgrader: its import costs about 3 s of CPU.
CHECKER_KERNEL = "course-checker"
#: The grading attempt (1, 2, 3) of a task, in its kernel's environment.
ATTEMPT_VAR = "COURSE_GRADING_ATTEMPT"


def _available_memory():
    """Bytes this process may still allocate: the host's or the cgroup's limit."""
    available = psutil.virtual_memory().available
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        with contextlib.suppress(OSError, ValueError):
            limit = Path(limit_file).read_text().strip()
            if limit != "max":
                usage = int(Path(usage_file).read_text().strip())
                available = min(available, int(limit) - usage)
            break
    return max(0, available)


def default_jobs(memory_per_task=TASK_MEMORY_BYTES):
    """How many grading tasks to run at once: CPUs, capped by memory.

    The CPUs are those :func:`joblib.cpu_count` reports (CPU affinity and the
    container's quota, not the host's cores); each task may need
    ``memory_per_task`` bytes.

    Examples
    --------
    >>> default_jobs() >= 1
    True
    """
    cpus = max(1, int(joblib.cpu_count()))
    return max(1, min(cpus, int(_available_memory() // memory_per_task)))


def check_jobs(jobs):
    if jobs is None:
        return default_jobs()
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs == {jobs!r}, must be an int >= 1.")
    return jobs


def check_timeout(timeout, name="timeout"):
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError(f"{name} == {timeout!r}, must be a positive number of seconds.")
    return timeout


@dataclasses.dataclass
class RunResult:
    returncode: int | None
    timed_out: bool
    seconds: float
    steps: list
    leftovers: list  # descriptions of processes alive after the task, then killed
    survivors: list  # descriptions of processes that could not be killed
    execute_timeout: float | None = None  # the per-cell timeout nbgrader used


def run_isolated(command, *, cwd, env, log_path, timeout, marker, settle=SETTLE_SECONDS):
    """Run ``command`` in a session of its own and leave no process behind.

    While it runs, its process tree is sampled; when it ends (or after
    ``timeout`` seconds, when it is killed), every process of that tree or
    carrying ``marker`` (``(variable, value)``) in its environment gets
    ``settle`` seconds to exit, then is stopped by PID.
    """
    started = time.time()
    tracked = {}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    timed_out = False
    try:
        root = psutil.Process(proc.pid)
        tracked[proc.pid] = root
    except psutil.Error:
        root = None
    while True:
        try:
            proc.wait(timeout=1.0)
            break
        except subprocess.TimeoutExpired:
            pass
        if root is not None:
            with contextlib.suppress(psutil.Error):
                for child in root.children(recursive=True):
                    tracked.setdefault(child.pid, child)
        if time.time() - started > timeout:
            timed_out = True
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            break
    seconds = time.time() - started

    leftovers, survivors = stop_what_is_left(
        lambda: alive_or_marked(tracked.values(), *marker, since=started),
        0 if timed_out else settle,
        log_path,
        f"runner {proc.pid}",
    )
    return RunResult(proc.returncode, timed_out, seconds, [], leftovers, survivors)


def stop_what_is_left(candidates, settle, log_path, heading):
    """Give what a task left running ``settle`` seconds to exit, kill the rest by
    PID, and say so in the task's log; returns ``(killed, could_not_kill)``.

    ``candidates()`` lists the task's processes still alive (see
    :func:`course_lib._processes.settle_then_stop`); the log's line starts
    with ``== <heading>:``.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> log = pathlib.Path(tempfile.mkdtemp()) / "task.log"
    >>> stop_what_is_left(lambda: [], 1.0, log, "worker 41 (task 1)")
    ([], [])
    >>> log.read_text().split(", waited")[0]
    '== worker 41 (task 1): 0 process(es) alive when the task ended []'
    """
    lingering, leftovers, survivors, waited = settle_then_stop(candidates, settle)
    with open(log_path, "a") as log:
        print(
            f"== {heading}: {len(lingering)} process(es) alive when the task ended "
            f"{lingering}, waited {waited:.1f} s; killed {leftovers}; could not kill "
            f"{survivors}",
            file=log,
        )
    return leftovers, survivors


class Workspace:
    """A temporary folder for one run: kernelspec, template roots, tasks.

    With ``sandbox=True`` (the default), the grading kernel runs inside a
    bubblewrap sandbox (:mod:`course_lib.grading.sandbox`) and talks to
    nbgrader over IPC sockets. With ``workers=True`` (the default), nbgrader
    steps run on workers that import nbgrader once
    (:mod:`course_lib.grading.worker`), else in a process each. ``parent``:
    the folder of the temporary one (default: the system's temporary folder).
    """

    def __init__(self, sandbox=True, workers=True, parent=None):
        from course_lib.grading.worker import WorkerPool

        self.sandbox = bool(sandbox)
        self.path = Path(tempfile.mkdtemp(prefix="course-grading-", dir=parent))
        self.pool = WorkerPool(self) if workers else None
        # COURSE_GRADING_KEEP=1 keeps the temporary course roots, to debug.
        self.keep = os.environ.get("COURSE_GRADING_KEEP") == "1"
        self.run_id = uuid.uuid4().hex
        self._count = 0
        self._lock = threading.Lock()
        # The grading kernels are this interpreter's ipykernel, whatever other
        # "python3" kernelspecs the user has installed: the student's kernel
        # ("python3") and the checker kernel that runs the test cells
        # (course_lib.grading.execute). In the sandbox, each is started by the
        # sandbox's launcher script (standard library only: fast), each in a
        # sandbox of its own.
        kernels = {
            "python3": (
                "Python 3 (course grading)",
                [sandboxing.__file__],
                sandboxing.STUDENT_KERNEL_ARGS,
            ),
            CHECKER_KERNEL: (
                "Python 3 (checker)",
                [sandboxing.__file__, sandboxing.CHECKER],
                sandboxing.CHECKER_KERNEL_ARGS,
            ),
        }
        for name, (display_name, launcher, unsandboxed) in kernels.items():
            kernel_dir = self.path / "jupyter" / "kernels" / name
            kernel_dir.mkdir(parents=True)
            first = launcher if self.sandbox else unsandboxed
            argv = [sys.executable, *first, "-f", "{connection_file}"]
            spec = {"argv": argv, "display_name": display_name, "language": "python"}
            if self.sandbox:
                # A signal would reach the launcher, not the kernel: interrupt by message.
                spec["interrupt_mode"] = "message"
            (kernel_dir / "kernel.json").write_text(json.dumps(spec))

    def new_dir(self, prefix):
        with self._lock:
            self._count += 1
            path = self.path / f"{prefix}-{self._count}"
        path.mkdir()
        return path

    def env(self, task_id, root, attempt=1):
        """The environment of a task's nbgrader process (and of its kernel)."""
        env = dict(os.environ)
        bin_dir = str(Path(sys.executable).parent)  # nbgrader runs `alembic` from PATH
        env["PATH"] = os.pathsep.join(p for p in (bin_dir, env.get("PATH")) if p)
        env["JUPYTER_PATH"] = os.pathsep.join(
            p for p in (str(self.path / "jupyter"), env.get("JUPYTER_PATH")) if p
        )
        # Short: the kernel's IPC socket paths must fit in 107 bytes.
        env["JUPYTER_RUNTIME_DIR"] = str(root / RUNTIME_DIR)
        env[sandboxing.SANDBOX_DIR_VAR] = str(root / ".sandbox")
        env[ATTEMPT_VAR] = str(attempt)
        env["IPYTHONDIR"] = str(root / ".ipython")  # no user startup files in grading
        env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
        for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(variable, "1")
        env[RUN_VAR] = self.run_id
        env[TASK_VAR] = task_id
        return env

    def kill_all(self):
        """Stop every process any task of this run started (by PID)."""
        return [describe(p) for p in stop(find_marked(RUN_VAR, self.run_id))]

    def cleanup(self):
        if self.pool is not None:
            self.pool.close()
        if not self.keep:
            shutil.rmtree(self.path, ignore_errors=True)


def _as_text(path):
    return repr(None if path is None else str(path))


def make_course_root(workspace, prefix, lesson_dirs, db_path=None, timeout=None):
    """A temporary nbgrader course root whose source folder links to lessons.

    Its ``nbgrader_config.py`` loads the course's and points nbgrader at this
    root and at ``db_path`` (default: ``gradebook.db`` in the root).
    """
    root = workspace.new_dir(prefix)
    db_path = root / "gradebook.db" if db_path is None else db_path
    source = root / SOURCE_DIR
    source.mkdir()
    for name, path in lesson_dirs.items():
        (source / name).symlink_to(Path(path).resolve(), target_is_directory=True)
    lines = [
        "c = get_config()  # noqa: F821",
        # The course's settings and the course root's own nbgrader_config.py.
        "from course_lib.grading.config import course_config",
        f"c.merge(course_config({_as_text(course_root_of(lesson_dirs.values()))}))",
        f"c.CourseDirectory.root = {str(root)!r}",
        f"c.CourseDirectory.source_directory = {SOURCE_DIR!r}",
        f"c.CourseDirectory.release_directory = {RELEASE_DIR!r}",
        f"c.CourseDirectory.db_url = {'sqlite:///' + str(db_path)!r}",
    ]
    if timeout is not None:
        lines.append(f"c.Execute.timeout = {int(timeout)}")
    # A kernel asked to shut down gets time to stop its cluster on a busy host
    # (jupyter_client's default: 5 s, then SIGKILL), and its sandbox to list
    # what it left running.
    lines.append(f"c.KernelManager.shutdown_wait_time = {KERNEL_SHUTDOWN_SECONDS}")
    if workspace.sandbox:
        # The kernel has its own network namespace: Unix sockets cross it, TCP does
        # not. They and the connection file go in the task's own runtime folder,
        # the only one bound into the sandbox (nbclient would use the shared /tmp).
        runtime = root / RUNTIME_DIR
        runtime.mkdir()
        lines += [
            'c.KernelManager.transport = "ipc"',
            f"c.KernelManager.connection_file = {str(runtime / 'kernel.json')!r}",
            f"c.KernelManager.ip = {str(runtime / 'kernel-ipc')!r}",
        ]
    # Test cells in a checker kernel; warnings printed by a test cell are a note.
    lines += [
        "from course_lib.grading.integrity import configure_nbgrader",
        "configure_nbgrader(c)",
        f"c.TwoKernelExecute.checker_runtime_dir = {str(root / CHECKER_DIR)!r}",
        f"c.TwoKernelExecute.audit_dir = {str(root / AUDIT_DIR)!r}",
    ]
    (root / "nbgrader_config.py").write_text("\n".join(lines) + "\n")
    return root


def run_steps(workspace, root, steps, *, timeout=TASK_TIMEOUT, settle=SETTLE_SECONDS, attempt=1):
    """Run nbgrader ``steps`` in ``root`` by :mod:`course_lib.grading._nbgrader_task`.

    Processes the sandbox found left behind by a kernel (and killed with its
    PID namespace) count among the run's ``leftovers``.
    """
    task_id = uuid.uuid4().hex
    spec_path = root / "task.json"
    result_path = root / "result.json"
    spec_path.write_text(
        json.dumps({"root": str(root), "result": str(result_path), "steps": steps})
    )
    env = workspace.env(task_id, root, attempt)
    if workspace.pool is not None:
        run = workspace.pool.run(
            task_id,
            root,
            steps,
            env=env,
            log_path=root / "nbgrader.log",
            timeout=timeout,
            settle=settle,
        )
    else:
        run = run_isolated(
            [sys.executable, "-m", "course_lib.grading._nbgrader_task", str(spec_path)],
            cwd=root,
            env=env,
            log_path=root / "nbgrader.log",
            timeout=timeout,
            marker=(TASK_VAR, task_id),
            settle=settle,
        )
    with contextlib.suppress(OSError, ValueError, KeyError):
        result = json.loads(result_path.read_text())
        run.steps = result["steps"]
        run.execute_timeout = result.get("execute_timeout")
    for found in sorted((root / ".sandbox").glob(f"*{sandboxing.LEFTOVERS_SUFFIX}")):
        with contextlib.suppress(OSError):
            run.leftovers.extend(found.read_text().splitlines())
    return run


_KNOWN_ERRORS = {
    "DeadKernelError": "the kernel died while the notebook ran",
    "UnresponsiveKernelError": "the kernel stopped answering, even to interrupts",
}


def step_error(run):
    """A one-line reason why a runner failed."""
    if run.timed_out:
        return "grading took longer than the task limit and was stopped"
    for step in run.steps:
        if not step.get("success"):
            text = "\n".join((step.get("log") or "", step.get("error") or ""))
            return f"nbgrader {step['action']} failed: {root_cause(text)}"
    if not run.steps:
        return f"the nbgrader process exited with code {run.returncode}"
    return f"the nbgrader process stopped during {run.steps[-1]['action']}"


def root_cause(text):
    """The most telling error line of an nbgrader log and traceback."""
    causes = []
    for line in text.splitlines():
        match = re.match(r"^\s*(?:[\w]+\.)*(\w+(?:Error|Exception|Interrupt|Exit))\b:?(.*)$", line)
        if match and match.group(1) != "NbGraderException":
            causes.append((match.group(1), f"{match.group(1)}:{match.group(2)}".rstrip(":")))
    for name, line in causes:
        if name in _KNOWN_ERRORS:
            return f"{_KNOWN_ERRORS[name]} ({line.strip()})"
    if causes:
        return causes[-1][1].strip()
    errors = [line.strip() for line in text.splitlines() if "[ERROR]" in line]
    return errors[0] if errors else "see the log"


#: Attempts at preparing lessons (nbgrader generate_assignment): it can fail
#: for reasons that are not the course's (killed for memory, an ``alembic``
#: process still alive) and pass when run again.
GENERATE_ATTEMPTS = 3
#: Seconds between two attempts.
GENERATE_PAUSE = 3.0


def generate(
    workspace,
    course_root,
    lessons,
    db_path,
    prefix="release",
    attempts=GENERATE_ATTEMPTS,
    pause=GENERATE_PAUSE,
):
    """nbgrader generate_assignment for ``lessons`` in a temporary root.

    Returns the temporary root; its ``lessons/`` folder holds the release.
    A failure is retried ``attempts - 1`` more times, ``pause`` seconds apart,
    each time in a fresh root. Raises RuntimeError when every attempt failed,
    with the cause of each.
    """
    source = Path(course_root) / SOURCE_DIR
    failures = []
    for attempt in range(1, attempts + 1):
        root = make_course_root(
            workspace, prefix, {name: source / name for name in lessons}, db_path
        )
        if not lessons:
            (root / RELEASE_DIR).mkdir()
            return root
        run = run_steps(
            workspace, root, [{"action": "generate_assignment", "assignment": "*"}], attempt=attempt
        )
        if run.returncode == 0 and run.steps and run.steps[-1].get("success"):
            return root
        failures.append(f"attempt {attempt}: {step_error(run)}")
        if attempt < attempts:
            time.sleep(pause)
    raise RuntimeError(
        f"nbgrader generate_assignment failed {attempts} time(s) for {lessons}: "
        f"{'; '.join(failures)}\n{log_tail(root / 'nbgrader.log')}"
    )


def log_tail(path, lines=30):
    with contextlib.suppress(OSError):
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    return ""


def run_tasks(workspace, tasks, jobs, on_done):
    """Run ``tasks`` (callables) ``jobs`` at a time; ``on_done(result)`` in order of completion."""
    executor = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="grading")
    futures = []
    try:
        futures = [executor.submit(task) for task in tasks]
        for future in as_completed(futures):
            on_done(future.result())
    except BaseException:
        for future in futures:
            future.cancel()
        workspace.kill_all()
        raise
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
