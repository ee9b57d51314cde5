"""The course's grading pipeline: release, check the release, grade, verify.

Four commands, one per Makefile target, all on top of nbgrader:

``release``
    Generate the student notebooks of every lesson, ``lessons/NN_topic/``,
    from ``solutions/NN_topic/`` (nbgrader ``generate_assignment``: solutions
    replaced by stubs, hidden tests removed, no outputs).
``check-release``
    Fail when ``lessons/`` differs from what ``release`` would write.
``grade SUBMISSIONS``
    Autograde ``SUBMISSIONS/<student>/<lesson>/*.ipynb`` (nbgrader's own
    ``submitted/`` layout) against live local clusters, write feedback HTML,
    merge everything into the course gradebook and write ``grades.csv``.
``verify-exercises``
    Grade every lesson's solutions and its untouched release as two students:
    full marks and zero on every autograded cell, a release without solution
    code or hidden tests, and no process left behind.

Every (student, lesson) is graded by its own nbgrader process in its own
temporary course root, ``--jobs`` at a time, and merged into the gradebook
afterwards: a class of hundreds grades in parallel on a many-core host, and a
broken or hanging submission harms nobody else. Every process a grading task
starts (the kernel, the controller, the engines, whatever the student's code
starts) carries the task's marker in its environment and is tracked while it
runs; what is still alive when the task ends is killed by PID.

Run ``python -m course_lib.grading --help`` for the command line.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import csv
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
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import joblib
import psutil

__all__ = [
    "GradeReport",
    "Outcome",
    "VerifyReport",
    "check_release",
    "default_jobs",
    "find_lessons",
    "grade",
    "hidden_test_lines",
    "release",
    "release_leaks",
    "solution_lines",
    "verify_exercises",
]

#: The repository: its ``nbgrader_config.py`` is the base of every grading run.
REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE = REPO_ROOT / "nbgrader_config.py"
SOURCE_DIR = "solutions"
RELEASE_DIR = "lessons"

#: Memory one grading task may need at its peak: an nbgrader process, a
#: kernel, a controller and two engines (about 1 GB PSS, measured), plus room.
TASK_MEMORY_BYTES = int(1.5 * 2**30)
#: Wall-clock limit of one task (one student, one lesson), in seconds.
TASK_TIMEOUT = 1800.0
#: Seconds the processes of a finished task get to exit by themselves.
SETTLE_SECONDS = 5.0

RUN_VAR = "COURSE_GRADING_RUN"
TASK_VAR = "COURSE_GRADING_TASK"

_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
_TIMEOUT_ERRORS = ("KeyboardInterrupt", "CellTimeoutError")


# --------------------------------------------------------------------------
# Lessons and resources
# --------------------------------------------------------------------------


def find_lessons(source_dir):
    """Names of the lessons in ``source_dir``: sub-folders holding a notebook.

    Parameters
    ----------
    source_dir : str or Path
        Usually ``solutions/``.

    Returns
    -------
    list of str
        Sorted folder names; empty when there is no lesson (or no folder).

    Examples
    --------
    >>> import tempfile
    >>> find_lessons(tempfile.mkdtemp())
    []
    """
    source_dir = Path(source_dir)
    if not source_dir.is_dir():
        return []
    return sorted(
        child.name
        for child in source_dir.iterdir()
        if child.is_dir() and not child.name.startswith((".", "_")) and any(child.glob("*.ipynb"))
    )


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


def _check_jobs(jobs):
    if jobs is None:
        return default_jobs()
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs == {jobs!r}, must be an int >= 1.")
    return jobs


def _check_timeout(timeout, name="timeout"):
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError(f"{name} == {timeout!r}, must be a positive number of seconds.")
    return timeout


def _select_lessons(course_root, lessons):
    available = find_lessons(Path(course_root) / SOURCE_DIR)
    if lessons is None:
        return available
    if isinstance(lessons, str):
        lessons = [lessons]
    unknown = sorted(set(lessons) - set(available))
    if unknown:
        raise ValueError(
            f"unknown lesson(s) {unknown}: the lessons in {Path(course_root) / SOURCE_DIR} "
            f"are {available}."
        )
    return sorted(set(lessons))


# --------------------------------------------------------------------------
# Processes: every one a task starts is found and stopped, by PID
# --------------------------------------------------------------------------


def _alive(proc):
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def marked_processes(variable, value, since=0.0):
    """Live processes whose environment holds ``variable=value``.

    Kernels, controllers and engines inherit the environment of the process
    that starts them, so the marker follows them wherever they are re-parented.
    Only processes created after ``since`` (a :func:`time.time`) are read.
    """
    found = []
    me = os.getpid()
    for proc in psutil.process_iter(["create_time"]):
        if proc.pid == me or (proc.info["create_time"] or 0) < since - 1:
            continue
        try:
            if proc.environ().get(variable) == value and _alive(proc):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _describe(proc):
    try:
        cmdline = " ".join(proc.cmdline()[1:4])
        return f"{proc.pid} ({proc.name()} {cmdline})".strip()
    except psutil.Error:
        return str(proc.pid)


def _stop_processes(processes, grace=2.0):
    """SIGTERM, then SIGKILL after ``grace`` s, by PID. Returns the survivors."""
    alive = [p for p in processes if _alive(p)]
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    deadline = time.monotonic() + grace
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if _alive(p)]
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    deadline = time.monotonic() + 5.0
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if _alive(p)]
    return alive


@dataclasses.dataclass
class _RunResult:
    returncode: int | None
    timed_out: bool
    seconds: float
    steps: list
    leftovers: list  # descriptions of processes alive after the task, then killed
    survivors: list  # descriptions of processes that could not be killed
    execute_timeout: float | None = None  # the per-cell timeout nbgrader used


def _run_isolated(command, *, cwd, env, log_path, timeout, marker, settle=SETTLE_SECONDS):
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

    def candidates():
        found = {p.pid: p for p in tracked.values() if _alive(p)}
        for p in marked_processes(*marker, since=started):
            found.setdefault(p.pid, p)
        return list(found.values())

    alive = candidates()
    lingering = [_describe(p) for p in alive]
    waited = time.monotonic()
    deadline = waited + (0 if timed_out else settle)
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [p for p in alive if _alive(p)]
    alive = candidates() if alive else alive
    leftovers = [_describe(p) for p in alive]
    survivors = [_describe(p) for p in _stop_processes(alive)]
    with open(log_path, "a") as log:
        print(
            f"== processes: {len(lingering)} alive when the runner exited {lingering}, "
            f"waited {time.monotonic() - waited:.1f} s; killed {leftovers}; "
            f"could not kill {survivors}",
            file=log,
        )
    return _RunResult(proc.returncode, timed_out, seconds, [], leftovers, survivors)


# --------------------------------------------------------------------------
# Temporary course roots and the nbgrader runner
# --------------------------------------------------------------------------


class _Workspace:
    """A temporary folder for one run: kernelspec, template roots, tasks."""

    def __init__(self):
        self.path = Path(tempfile.mkdtemp(prefix="course-grading-"))
        # COURSE_GRADING_KEEP=1 keeps the temporary course roots, to debug.
        self.keep = os.environ.get("COURSE_GRADING_KEEP") == "1"
        self.run_id = uuid.uuid4().hex
        self._count = 0
        self._lock = threading.Lock()
        # The grading kernel is this interpreter's ipykernel, whatever other
        # "python3" kernelspecs the user has installed.
        kernel_dir = self.path / "jupyter" / "kernels" / "python3"
        kernel_dir.mkdir(parents=True)
        (kernel_dir / "kernel.json").write_text(
            json.dumps(
                {
                    "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    "display_name": "Python 3 (course grading)",
                    "language": "python",
                }
            )
        )

    def new_dir(self, prefix):
        with self._lock:
            self._count += 1
            path = self.path / f"{prefix}-{self._count}"
        path.mkdir()
        return path

    def env(self, task_id, root):
        env = dict(os.environ)
        bin_dir = str(Path(sys.executable).parent)  # nbgrader runs `alembic` from PATH
        env["PATH"] = os.pathsep.join(p for p in (bin_dir, env.get("PATH")) if p)
        env["JUPYTER_PATH"] = os.pathsep.join(
            p for p in (str(self.path / "jupyter"), env.get("JUPYTER_PATH")) if p
        )
        env["JUPYTER_RUNTIME_DIR"] = str(root / ".runtime")
        env["IPYTHONDIR"] = str(root / ".ipython")  # no user startup files in grading
        env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
        for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(variable, "1")
        env[RUN_VAR] = self.run_id
        env[TASK_VAR] = task_id
        return env

    def kill_all(self):
        """Stop every process any task of this run started (by PID)."""
        return [_describe(p) for p in _stop_processes(marked_processes(RUN_VAR, self.run_id))]

    def cleanup(self):
        if not self.keep:
            shutil.rmtree(self.path, ignore_errors=True)


def _course_root(workspace, prefix, lesson_dirs, db_path=None, timeout=None):
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
        f"load_subconfig({str(CONFIG_FILE)!r})",
        f"c.CourseDirectory.root = {str(root)!r}",
        f"c.CourseDirectory.source_directory = {SOURCE_DIR!r}",
        f"c.CourseDirectory.release_directory = {RELEASE_DIR!r}",
        f"c.CourseDirectory.db_url = {'sqlite:///' + str(db_path)!r}",
    ]
    if timeout is not None:
        lines.append(f"c.Execute.timeout = {int(timeout)}")
    (root / "nbgrader_config.py").write_text("\n".join(lines) + "\n")
    return root


def _run_steps(workspace, root, steps, *, timeout=TASK_TIMEOUT, settle=SETTLE_SECONDS):
    """Run nbgrader ``steps`` in ``root`` by :mod:`course_lib._nbgrader_task`."""
    task_id = uuid.uuid4().hex
    spec_path = root / "task.json"
    result_path = root / "result.json"
    spec_path.write_text(
        json.dumps({"root": str(root), "result": str(result_path), "steps": steps})
    )
    run = _run_isolated(
        [sys.executable, "-m", "course_lib._nbgrader_task", str(spec_path)],
        cwd=root,
        env=workspace.env(task_id, root),
        log_path=root / "nbgrader.log",
        timeout=timeout,
        marker=(TASK_VAR, task_id),
        settle=settle,
    )
    with contextlib.suppress(OSError, ValueError, KeyError):
        result = json.loads(result_path.read_text())
        run.steps = result["steps"]
        run.execute_timeout = result.get("execute_timeout")
    return run


_KNOWN_ERRORS = {
    "DeadKernelError": "the kernel died while the notebook ran",
    "UnresponsiveKernelError": "the kernel stopped answering, even to interrupts",
}


def _step_error(run):
    """A one-line reason why a runner failed."""
    if run.timed_out:
        return "grading took longer than the task limit and was stopped"
    for step in run.steps:
        if not step.get("success"):
            text = "\n".join((step.get("log") or "", step.get("error") or ""))
            return f"nbgrader {step['action']} failed: {_root_cause(text)}"
    if not run.steps:
        return f"the nbgrader process exited with code {run.returncode}"
    return f"the nbgrader process stopped during {run.steps[-1]['action']}"


def _root_cause(text):
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


def _generate(workspace, course_root, lessons, db_path, prefix="release"):
    """nbgrader generate_assignment for ``lessons`` in a temporary root.

    Returns the temporary root; its ``lessons/`` folder holds the release.
    Raises RuntimeError when nbgrader fails.
    """
    source = Path(course_root) / SOURCE_DIR
    root = _course_root(workspace, prefix, {name: source / name for name in lessons}, db_path)
    if not lessons:
        (root / RELEASE_DIR).mkdir()
        return root
    run = _run_steps(workspace, root, [{"action": "generate_assignment", "assignment": "*"}])
    if run.returncode != 0 or not run.steps or not run.steps[-1].get("success"):
        raise RuntimeError(
            f"nbgrader generate_assignment failed for {lessons}: "
            f"{_step_error(run)}\n{_log_tail(root / 'nbgrader.log')}"
        )
    return root


def _log_tail(path, lines=30):
    with contextlib.suppress(OSError):
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    return ""


# --------------------------------------------------------------------------
# release and check-release
# --------------------------------------------------------------------------


def _files(folder):
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    return {
        str(path.relative_to(folder)): path
        for path in sorted(folder.rglob("*"))
        if path.is_file() and ".ipynb_checkpoints" not in path.parts
    }


def _same_file(a, b):
    if a.suffix == ".ipynb":
        try:
            return json.loads(a.read_text()) == json.loads(b.read_text())
        except (OSError, ValueError):
            return False
    return a.read_bytes() == b.read_bytes()


def _release_dirs(course_root):
    release_dir = Path(course_root) / RELEASE_DIR
    if not release_dir.is_dir():
        return []
    return sorted(
        child.name
        for child in release_dir.iterdir()
        if child.is_dir() and not child.name.startswith(".")
    )


def _diff_release(fresh_dir, course_root, lessons, stale_check):
    problems = []
    release_dir = Path(course_root) / RELEASE_DIR
    for lesson in lessons:
        fresh = _files(fresh_dir / lesson)
        committed = _files(release_dir / lesson)
        for name in sorted(set(fresh) | set(committed)):
            where = f"{RELEASE_DIR}/{lesson}/{name}"
            if name not in committed:
                problems.append(f"{where} is missing")
            elif name not in fresh:
                problems.append(f"{where} is not generated from {SOURCE_DIR}/{lesson}")
            elif not _same_file(fresh[name], committed[name]):
                problems.append(f"{where} differs from what `make release` writes")
    if stale_check:
        for name in sorted(set(_release_dirs(course_root)) - set(lessons)):
            problems.append(f"{RELEASE_DIR}/{name} has no source in {SOURCE_DIR}/{name}")
    return problems


def release(course_root=REPO_ROOT, lessons=None, *, verbose=True):
    """Regenerate ``lessons/`` from ``solutions/`` with nbgrader.

    Solutions become stubs, hidden tests disappear and outputs are cleared.
    A lesson folder whose source is gone is removed.

    Parameters
    ----------
    course_root : str or Path
        The folder holding ``solutions/`` and ``lessons/``.
    lessons : list of str, optional
        Default: every lesson in ``solutions/``.
    verbose : bool

    Returns
    -------
    list of str
        The lessons that were written or changed.
    """
    course_root = Path(course_root)
    selected = _select_lessons(course_root, lessons)
    workspace = _Workspace()
    changed = []
    try:
        fresh = _generate(workspace, course_root, selected, workspace.path / "release.db")
        release_dir = course_root / RELEASE_DIR
        release_dir.mkdir(exist_ok=True)
        for lesson in selected:
            if _diff_release(fresh / RELEASE_DIR, course_root, [lesson], stale_check=False):
                shutil.rmtree(release_dir / lesson, ignore_errors=True)
                shutil.copytree(fresh / RELEASE_DIR / lesson, release_dir / lesson)
                changed.append(lesson)
        if lessons is None:
            for stale in sorted(set(_release_dirs(course_root)) - set(selected)):
                shutil.rmtree(release_dir / stale)
                changed.append(stale)
                if verbose:
                    print(f"removed {RELEASE_DIR}/{stale}: no {SOURCE_DIR}/{stale}")
    finally:
        workspace.cleanup()
    if verbose:
        for lesson in selected:
            state = "written" if lesson in changed else "up to date"
            print(f"{RELEASE_DIR}/{lesson}: {state}")
        if not selected:
            print(f"no lesson in {course_root / SOURCE_DIR}")
    return changed


def check_release(course_root=REPO_ROOT, lessons=None):
    """What differs between ``lessons/`` and what :func:`release` would write.

    Also checks every committed release for solution code, hidden tests and
    stored outputs (:func:`release_leaks`).

    Returns
    -------
    list of str
        One line per problem; empty when the release is up to date.
    """
    course_root = Path(course_root)
    selected = _select_lessons(course_root, lessons)
    workspace = _Workspace()
    try:
        fresh = _generate(workspace, course_root, selected, workspace.path / "check.db")
        problems = _diff_release(
            fresh / RELEASE_DIR, course_root, selected, stale_check=lessons is None
        )
    finally:
        workspace.cleanup()
    for lesson in selected:
        problems.extend(_lesson_leaks(course_root, lesson))
    return problems


# --------------------------------------------------------------------------
# What a release must not contain
# --------------------------------------------------------------------------


def _read_notebook(path):
    import nbformat

    return nbformat.read(str(path), as_version=4)


def _nbgrader_meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def _regions(source, begin, end):
    """Split ``source`` lines into (inside, outside) of ``begin``/``end`` regions."""
    inside, outside, active = [], [], False
    for line in source.splitlines():
        if begin in line:
            active = True
        elif end in line:
            active = False
        elif active:
            inside.append(line)
        else:
            outside.append(line)
    return inside, outside


def _significant(lines):
    """Stripped lines long enough to identify code (not ``)`` or ``else:``)."""
    return {line.strip() for line in lines if len(line.strip()) >= 8}


def _split_notebook(notebook):
    """Lines of a solutions notebook: (solution, hidden tests, everything else).

    An answer cell without ``### BEGIN SOLUTION`` is a solution as a whole
    (nbgrader replaces all of it).
    """
    nb = notebook if hasattr(notebook, "cells") else _read_notebook(notebook)
    solution, hidden, public = [], [], []
    for cell in nb.cells:
        source = cell.source
        inside_hidden, rest = _regions(source, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
        rest = "\n".join(rest)
        if "BEGIN SOLUTION" in rest:
            inside_solution, rest = _regions(rest, "BEGIN SOLUTION", "END SOLUTION")
        elif _nbgrader_meta(cell).get("solution"):
            inside_solution, rest = rest.splitlines(), []
        else:
            inside_solution, rest = [], rest.splitlines()
        solution.extend(inside_solution)
        hidden.extend(inside_hidden)
        public.extend(rest)
    return solution, hidden, public


def hidden_test_lines(notebook):
    """Lines of the hidden tests of a solutions notebook, not shown elsewhere.

    Parameters
    ----------
    notebook : str, Path or nbformat.NotebookNode

    Returns
    -------
    set of str
        Stripped lines of 8 characters or more that appear in a hidden test
        region and nowhere in the released part of the notebook.
    """
    _, hidden, public = _split_notebook(notebook)
    return _significant(hidden) - _significant(public)


def solution_lines(notebook):
    """Lines of the solution regions of a solutions notebook, not shown elsewhere."""
    solution, _, public = _split_notebook(notebook)
    return _significant(solution) - _significant(public)


def _notebook_text_lines(nb, outputs=True):
    lines = []
    for cell in nb.cells:
        lines.extend(cell.source.splitlines())
        if outputs:
            for output in cell.get("outputs", []):
                lines.extend(_output_text(output).splitlines())
    return lines


def _output_text(output):
    parts = []
    if "text" in output:
        parts.append(output["text"])
    for value in output.get("data", {}).values():
        if isinstance(value, str):
            parts.append(value)
    parts.extend(output.get("traceback", []))
    if "evalue" in output:
        parts.append(str(output["evalue"]))
    return "\n".join(parts)


def release_leaks(solution_notebook, release_notebook):
    """Solution code, hidden tests or outputs found in a released notebook.

    Parameters
    ----------
    solution_notebook, release_notebook : str, Path or nbformat.NotebookNode

    Returns
    -------
    list of str
        One line per problem; empty when the release gives nothing away.
    """
    source = solution_notebook
    if not hasattr(source, "cells"):
        source = _read_notebook(source)
    released = release_notebook
    if not hasattr(released, "cells"):
        released = _read_notebook(released)
    problems = []
    text = _significant(_notebook_text_lines(released))
    raw = "\n".join(_notebook_text_lines(released))
    for marker in _MARKERS:
        if marker in raw:
            problems.append(f"contains the marker {marker!r}")
    for line in sorted(solution_lines(source) & text):
        problems.append(f"contains solution code: {line!r}")
    for line in sorted(hidden_test_lines(source) & text):
        problems.append(f"contains a hidden test: {line!r}")
    for index, cell in enumerate(released.cells):
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count")):
            problems.append(f"cell {index} has stored outputs")
    return problems


def _lesson_leaks(course_root, lesson):
    problems = []
    release_dir = Path(course_root) / RELEASE_DIR / lesson
    for solution in sorted((Path(course_root) / SOURCE_DIR / lesson).glob("*.ipynb")):
        released = release_dir / solution.name
        if released.exists():
            for problem in release_leaks(solution, released):
                problems.append(f"{RELEASE_DIR}/{lesson}/{solution.name} {problem}")
    return problems


# --------------------------------------------------------------------------
# A submission, checked against its release before nbgrader sees it
# --------------------------------------------------------------------------


def _grade_id(cell):
    return _nbgrader_meta(cell).get("grade_id")


def _same_source(a, b):
    return a.strip() == b.strip()


def _prepare_notebook(nb, released, solution):
    """Check a submitted notebook against its release; return notes.

    Restores, in place, the nbgrader metadata of every cell the release
    marks (so a test cell cannot be turned into a plain cell) and re-inserts
    deleted test cells after the cell that preceded them: they are graded as
    released. Edited locked cells are left to nbgrader, which restores them
    from its gradebook; they are reported here.
    """
    notes = []
    release_cells = {_grade_id(c): c for c in released.cells if _grade_id(c)}
    solution_cells = {_grade_id(c): c for c in solution.cells if _grade_id(c)}
    seen, edited, changed_meta, duplicates = set(), [], [], []
    for cell in nb.cells:
        gid = _grade_id(cell)
        if gid is None:
            continue
        if gid not in release_cells:
            continue
        if gid in seen:
            duplicates.append(gid)
            continue
        seen.add(gid)
        original = release_cells[gid]
        meta = _nbgrader_meta(original)
        submitted = _nbgrader_meta(cell)
        keys = ("grade", "solution", "locked", "points", "task")
        if any(submitted.get(k) != meta.get(k) for k in keys):
            changed_meta.append(gid)
        cell.metadata["nbgrader"] = copy.deepcopy(meta)
        if meta.get("locked") and not meta.get("solution"):
            versions = [original.source]
            if gid in solution_cells:
                versions.append(solution_cells[gid].source)
            if not any(_same_source(cell.source, v) for v in versions):
                edited.append(gid)
    restored, missing_answers = [], []
    for index, original in enumerate(released.cells):
        gid = _grade_id(original)
        if gid is None or gid in seen:
            continue
        meta = _nbgrader_meta(original)
        if meta.get("solution") and not meta.get("grade"):
            missing_answers.append(gid)
            continue
        if not (meta.get("grade") or meta.get("task")):
            continue
        position = 0
        for previous in reversed(released.cells[:index]):
            found = _find_cell(nb, previous)
            if found is not None:
                position = found + 1
                break
        nb.cells.insert(position, copy.deepcopy(original))
        seen.add(gid)
        restored.append(gid)
    if edited:
        notes.append(f"edited locked cell(s) {', '.join(edited)}: graded as released")
    if changed_meta:
        notes.append(f"nbgrader metadata of {', '.join(changed_meta)} edited: restored")
    if restored:
        notes.append(f"deleted graded cell(s) {', '.join(restored)}: restored and graded")
    if missing_answers:
        notes.append(f"deleted answer cell(s) {', '.join(missing_answers)}")
    if duplicates:
        notes.append(f"duplicated cell(s) {', '.join(sorted(set(duplicates)))}: copies ignored")
    return notes, bool(edited or changed_meta or restored or duplicates)


def _find_cell(nb, wanted):
    gid = _grade_id(wanted)
    cell_id = wanted.get("id")
    for position, cell in enumerate(nb.cells):
        if gid is not None and _grade_id(cell) == gid:
            return position
        if gid is None and cell_id is not None and cell.get("id") == cell_id:
            return position
    return None


def _load_submission(path):
    """A submitted notebook, or raise ValueError with a message for the student."""
    import nbformat

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{Path(path).name} cannot be read ({exc})") from None
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{Path(path).name} is not a notebook: broken JSON ({exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        raise ValueError(f"{Path(path).name} is not a notebook: it has no list of cells")
    try:
        with warnings.catch_warnings():
            # nbformat warns about missing cell ids and upgrades the notebook.
            warnings.simplefilter("ignore")
            nb = nbformat.reads(text, as_version=4)
            nbformat.validate(nb)
    except Exception as exc:  # nbformat raises many types for bad notebooks
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{Path(path).name} is not a valid notebook ({first})") from None
    return nb


# --------------------------------------------------------------------------
# Grading
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    """The grading of one student's lesson.

    Attributes
    ----------
    student, lesson : str
    status : str
        ``"graded"``; ``"missing"`` (nothing submitted); ``"invalid"`` (no
        notebook could be read); ``"error"`` (nbgrader could not grade it,
        for instance because the student's code killed its kernel).
    score, max_score : float
    cells : dict
        ``{grade_id: (score, max_score)}`` of every autograded cell.
    manual : list of str
        Cells that need grading by hand.
    notes : list of str
        What was noticed: edited or deleted cells, timeouts, broken files.
    seconds : float
        Wall-clock seconds of its grading task.
    leftovers : list of str
        Processes still alive after its grading, which were killed.
    """

    student: str
    lesson: str
    status: str = "graded"
    score: float = 0.0
    max_score: float = 0.0
    cells: dict = dataclasses.field(default_factory=dict)
    manual: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    leftovers: list = dataclasses.field(default_factory=list)
    flagged: bool = False
    autograded: Path | None = None
    feedback: Path | None = None
    log: Path | None = None

    @property
    def message(self):
        return "; ".join(self.notes)


@dataclasses.dataclass
class GradeReport:
    """What :func:`grade` did.

    Attributes
    ----------
    outcomes : list of Outcome
        One per student and lesson.
    problems : list of str
        Failures of the pipeline itself (not of students' work).
    csv_path : Path or None
    run_id : str
        The value of ``COURSE_GRADING_RUN`` in the environment of every
        process the run started.
    """

    outcomes: list
    problems: list
    csv_path: Path | None
    run_id: str
    seconds: float = 0.0

    @property
    def ok(self):
        return not self.problems

    def outcome(self, student, lesson):
        for outcome in self.outcomes:
            if outcome.student == student and outcome.lesson == lesson:
                return outcome
        raise KeyError((student, lesson))

    def table(self):
        """Students × lessons, ``score/max``; ``!`` marks an outcome with notes."""
        students = sorted({o.student for o in self.outcomes})
        lessons = sorted({o.lesson for o in self.outcomes})
        cells = {}
        for o in self.outcomes:
            if o.status == "missing":
                text = "-"
            elif o.status in ("invalid", "error"):
                text = o.status
            else:
                text = f"{o.score:g}/{o.max_score:g}"
            cells[o.student, o.lesson] = text + (" !" if o.notes else "")
        rows = [["student", *lessons]]
        rows += [[s, *(cells.get((s, lesson), "") for lesson in lessons)] for s in students]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        notes = [
            f"! {o.student}/{o.lesson}: {o.message}"
            for o in sorted(self.outcomes, key=lambda o: (o.student, o.lesson))
            if o.notes
        ]
        return "\n".join(lines + ([""] + notes if notes else []))


def _discover_submissions(submissions):
    """``{student: folder}`` from ``<student>/<lesson>/`` or a course root."""
    submissions = Path(submissions)
    if not submissions.is_dir():
        raise FileNotFoundError(
            f"submissions folder {submissions} does not exist: pass "
            f"SUBMISSIONS=<folder> holding <student>/<lesson>/*.ipynb."
        )
    if (submissions / "submitted").is_dir() and not any(
        (child / "submitted").is_dir() for child in submissions.iterdir() if child.is_dir()
    ):
        nested = submissions / "submitted"
        if any(child.is_dir() for child in nested.iterdir()):
            submissions = nested
    return {
        child.name: child
        for child in sorted(submissions.iterdir())
        if child.is_dir() and not child.name.startswith((".", "_"))
    }


@dataclasses.dataclass
class _Prepared:
    lesson: str
    source: Path  # the lesson's folder in solutions/
    release_dir: Path  # the fresh release of the lesson
    notebooks: list  # notebook file names of the lesson


def _prepare_lessons(course_root, lessons, template_root):
    prepared = {}
    for lesson in lessons:
        release_dir = template_root / RELEASE_DIR / lesson
        prepared[lesson] = _Prepared(
            lesson,
            Path(course_root) / SOURCE_DIR / lesson,
            release_dir,
            sorted(p.name for p in release_dir.glob("*.ipynb")),
        )
    return prepared


def _stage_submission(outcome, folder, lesson, task_root):
    """Copy one submission, checked and repaired, into a task's ``submitted/``.

    Returns True when there is something for nbgrader to grade.
    """
    dest = task_root / "submitted" / outcome.student / lesson.lesson
    dest.mkdir(parents=True)
    submitted = {p.name: p for p in sorted(folder.glob("*.ipynb"))}
    expected = lesson.notebooks
    unknown = sorted(set(submitted) - set(expected))
    absent = [name for name in expected if name not in submitted]
    renamed = {}
    if len(absent) == 1 and len(unknown) == 1:
        renamed[absent[0]] = unknown[0]
        outcome.notes.append(f"graded {unknown[0]} as {absent[0]}")
        unknown, absent = [], []
    for name in unknown:
        outcome.notes.append(f"{name} is not a notebook of this lesson: ignored")
    for name in absent:
        outcome.notes.append(f"{name} was not submitted")
    staged = 0
    for name in expected:
        if name not in submitted and name not in renamed:
            continue
        path = submitted.get(renamed.get(name, name))
        try:
            nb = _load_submission(path)
        except ValueError as exc:
            outcome.notes.append(str(exc))
            outcome.flagged = True
            continue
        notes, flag = _prepare_notebook(
            nb, _read_notebook(lesson.release_dir / name), _read_notebook(lesson.source / name)
        )
        outcome.notes.extend(notes)
        outcome.flagged |= flag
        import nbformat

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nbformat.write(nb, str(dest / name))
        staged += 1
    timestamp = folder / "timestamp.txt"
    if timestamp.is_file():
        text = timestamp.read_text(errors="replace").strip()
        try:
            from nbgrader.utils import parse_utc

            parse_utc(text)
            shutil.copy(timestamp, dest / "timestamp.txt")
        except Exception:
            outcome.notes.append(f"timestamp.txt is not a date ({text[:40]!r}): ignored")
    return staged > 0


def _timeout_notes(autograded_dir, timeout):
    notes = []
    for path in sorted(Path(autograded_dir).glob("*.ipynb")):
        with contextlib.suppress(Exception):
            nb = _read_notebook(path)
            for index, cell in enumerate(nb.cells):
                names = {o.get("ename") for o in cell.get("outputs", [])}
                if names & set(_TIMEOUT_ERRORS):
                    label = _grade_id(cell) or f"cell {index + 1}"
                    limit = f"the {timeout:g} s" if timeout else "the"
                    notes.append(f"{label} stopped by {limit} timeout")
    return notes


def _grade_one(workspace, lesson, student, folder, template_db, *, timeout, task_timeout):
    """Grade one student's lesson in a temporary course root of its own."""
    outcome = Outcome(student, lesson.lesson)
    if folder is None or not folder.is_dir():
        outcome.status = "missing"
        return outcome, None
    started = time.time()
    root = _course_root(workspace, "task", {lesson.lesson: lesson.source}, timeout=timeout)
    db_path = root / "gradebook.db"
    shutil.copy(template_db, db_path)
    if not _stage_submission(outcome, folder, lesson, root):
        outcome.status = "invalid" if any(folder.glob("*.ipynb")) else "missing"
        if outcome.status == "missing":
            outcome.notes.append("no notebook submitted")
        outcome.seconds = time.time() - started
        return outcome, None
    names = {"assignment": lesson.lesson, "student": student}
    steps = [
        {"action": "autograde", **names},
        {"action": "generate_feedback", **names},
        {"action": "scores", **names},
    ]
    run = _run_steps(workspace, root, steps, timeout=task_timeout)
    outcome.seconds = time.time() - started
    outcome.log = root / "nbgrader.log"
    outcome.leftovers = run.leftovers
    if run.leftovers:
        outcome.notes.append(f"{len(run.leftovers)} process(es) left after grading were killed")
    autograded = root / "autograded" / student / lesson.lesson
    feedback = root / "feedback" / student / lesson.lesson
    outcome.autograded = autograded if autograded.is_dir() else None
    outcome.feedback = feedback if feedback.is_dir() else None
    if outcome.autograded is not None:
        outcome.notes.extend(_timeout_notes(autograded, run.execute_timeout))
    by_action = {step["action"]: step for step in run.steps}
    autograde_ok = by_action.get("autograde", {}).get("success", False)
    if not autograde_ok:
        outcome.status = "error"
        outcome.flagged = True
        outcome.notes.append(_step_error(run))
    elif not by_action.get("generate_feedback", {}).get("success", False):
        outcome.notes.append(_step_error(run))
    scores = by_action.get("scores", {}).get("scores")
    if scores is not None:
        outcome.score = float(scores["score"] or 0.0)
        outcome.max_score = float(scores["max_score"] or 0.0)
        for notebook in scores["notebooks"]:
            outcome.flagged |= notebook["flagged"]
            for cell in notebook["cells"]:
                if cell["autograded"]:
                    outcome.cells[cell["cell"]] = (cell["auto_score"], cell["max_score"])
                elif cell["needs_manual_grade"]:
                    outcome.manual.append(cell["cell"])
    if outcome.manual:
        outcome.notes.append(f"to grade by hand: {', '.join(outcome.manual)}")
    return outcome, {"root": root, "db": db_path, "survivors": run.survivors}


def _merge(master, outcome, task, course_id, max_scores):
    """Copy one graded submission from its task gradebook into the course's."""
    from nbgrader.api import Gradebook, MissingEntry

    master.update_or_create_student(outcome.student)
    if outcome.status == "missing":
        return
    kwargs = {}
    task_sub = None
    if task is not None:
        with Gradebook(f"sqlite:///{task['db']}", course_id) as gb:
            with contextlib.suppress(MissingEntry):
                sub = gb.find_submission(outcome.lesson, outcome.student)
                task_sub = {
                    "timestamp": sub.timestamp,
                    "notebooks": {
                        nb.name: {
                            "flagged": nb.flagged,
                            "penalty": nb.late_submission_penalty,
                            "grades": {
                                g.name: (g.auto_score, g.needs_manual_grade) for g in nb.grades
                            },
                            "comments": {c.name: c.auto_comment for c in nb.comments},
                        }
                        for nb in sub.notebooks
                    },
                }
                if sub.timestamp is not None:
                    kwargs["timestamp"] = sub.timestamp
    submission = master.update_or_create_submission(outcome.lesson, outcome.student, **kwargs)
    graded = outcome.status == "graded" and task_sub is not None
    for notebook in submission.notebooks:
        data = (task_sub or {}).get("notebooks", {}).get(notebook.name)
        notebook.flagged = bool(outcome.flagged or (data and data["flagged"]))
        if data is not None:
            notebook.late_submission_penalty = data["penalty"]
        for grade in notebook.grades:
            if graded and data is not None and grade.name in data["grades"]:
                grade.auto_score, grade.needs_manual_grade = data["grades"][grade.name]
            else:
                # Not gradable automatically: zero, left for the instructor to look at.
                grade.auto_score, grade.needs_manual_grade = 0.0, True
            if grade.manual_score is not None:
                grade.needs_manual_grade = False
        for comment in notebook.comments:
            if data is not None and comment.name in data["comments"]:
                comment.auto_comment = data["comments"][comment.name]
    master.db.commit()
    outcome.score = float(submission.score or 0.0)
    outcome.max_score = float(submission.max_score or max_scores.get(outcome.lesson, 0.0))


def _copy_results(course_root, outcome, folder):
    for kind, source in (("autograded", outcome.autograded), ("feedback", outcome.feedback)):
        dest = course_root / kind / outcome.student / outcome.lesson
        shutil.rmtree(dest, ignore_errors=True)
        if source is not None:
            shutil.copytree(source, dest)
    if outcome.autograded is not None:
        outcome.autograded = course_root / "autograded" / outcome.student / outcome.lesson
    if outcome.feedback is not None:
        outcome.feedback = course_root / "feedback" / outcome.student / outcome.lesson
    submitted = course_root / "submitted" / outcome.student / outcome.lesson
    if folder is not None and folder.is_dir() and folder.resolve() != submitted.resolve():
        shutil.rmtree(submitted, ignore_errors=True)
        shutil.copytree(folder, submitted, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    if outcome.log is not None:
        log_dir = course_root / ".nbgrader" / "logs" / outcome.lesson
        log_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(outcome.log, log_dir / f"{outcome.student}.log")
        outcome.log = log_dir / f"{outcome.student}.log"


def _write_csv(path, outcomes):
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = ["student", "lesson", "score", "max_score", "status", "message", "seconds"]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for o in sorted(outcomes, key=lambda o: (o.student, o.lesson)):
            writer.writerow(
                {
                    "student": o.student,
                    "lesson": o.lesson,
                    "score": f"{o.score:g}",
                    "max_score": f"{o.max_score:g}",
                    "status": o.status,
                    "message": o.message,
                    "seconds": f"{o.seconds:.1f}",
                }
            )


@contextlib.contextmanager
def _quiet_gradebook():
    """nbgrader's gradebook emits SQLAlchemy ``SAWarning``\\ s about objects
    "not in session" while it creates submissions (nbgrader's own pattern,
    harmless). Silence that warning only."""
    with warnings.catch_warnings():
        try:
            from sqlalchemy.exc import SAWarning

            warnings.filterwarnings("ignore", message=r".*not in session", category=SAWarning)
        except ImportError:  # pragma: no cover
            pass
        yield


def _run_tasks(workspace, tasks, jobs, on_done):
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


def grade(
    submissions,
    course_root=REPO_ROOT,
    *,
    lessons=None,
    jobs=None,
    timeout=None,
    task_timeout=TASK_TIMEOUT,
    csv_path=None,
    verbose=True,
):
    """Autograde every submission, write feedback, the gradebook and a CSV.

    Parameters
    ----------
    submissions : str or Path
        A folder of ``<student>/<lesson>/*.ipynb`` (the layout of nbgrader's
        ``submitted/``), or a course root holding ``submitted/``.
    course_root : str or Path
        Where ``solutions/`` is and where the results go: ``autograded/``,
        ``feedback/``, ``submitted/``, the gradebook
        ``.nbgrader/gradebook.db`` and ``grades.csv``.
    lessons : list of str, optional
        Lessons to grade; default every lesson in ``solutions/``.
    jobs : int, optional
        Submissions graded at once; default :func:`default_jobs`.
    timeout : float, optional
        Seconds per cell; default ``Execute.timeout`` of ``nbgrader_config.py``.
    task_timeout : float
        Seconds one student's lesson may take in all before it is stopped.
    csv_path : str or Path, optional
        Default ``<course_root>/grades.csv``.
    verbose : bool
        Print progress and the students × lessons table.

    Returns
    -------
    GradeReport
        Bad student work is graded (zero, with a note), never fatal; the
        report's ``problems`` list only failures of the pipeline itself.
    """
    started = time.time()
    course_root = Path(course_root).resolve()
    selected = _select_lessons(course_root, lessons)
    jobs = _check_jobs(jobs)
    timeout = _check_timeout(timeout)
    task_timeout = _check_timeout(task_timeout, "task_timeout")
    students = _discover_submissions(submissions)
    csv_path = Path(csv_path) if csv_path else course_root / "grades.csv"
    workspace = _Workspace()
    problems, outcomes = [], []
    say = print if verbose else (lambda *a, **k: None)
    try:
        if not selected:
            say(f"no lesson in {course_root / SOURCE_DIR}: nothing to grade")
            _write_csv(csv_path, [])
            return GradeReport([], [], csv_path, workspace.run_id, time.time() - started)
        known = set(find_lessons(course_root / SOURCE_DIR))
        for student, folder in students.items():
            for child in sorted(folder.iterdir()):
                if child.is_dir() and not child.name.startswith(".") and child.name not in known:
                    say(f"warning: {student}/{child.name} is not a lesson: ignored")
        master_db = course_root / ".nbgrader" / "gradebook.db"
        master_db.parent.mkdir(parents=True, exist_ok=True)
        say(f"preparing {len(selected)} lesson(s) with nbgrader ...")
        with ThreadPoolExecutor(max_workers=2) as pool:
            template = pool.submit(
                _generate, workspace, course_root, selected, workspace.path / "template.db"
            )
            master = pool.submit(_generate, workspace, course_root, selected, master_db, "master")
            template_root = template.result()
            master.result()
        prepared = _prepare_lessons(course_root, selected, template_root)
        template_db = workspace.path / "template.db"

        def task(student, folder, lesson):
            return lambda: _grade_one(
                workspace,
                prepared[lesson],
                student,
                folder / lesson if (folder / lesson).is_dir() else None,
                template_db,
                timeout=timeout,
                task_timeout=task_timeout,
            )

        tasks = [task(s, f, lesson) for lesson in selected for s, f in students.items()]
        say(f"grading {len(tasks)} submission(s) of {len(students)} student(s), {jobs} at a time")
        from nbgrader.api import Gradebook

        course_id = _course_id(template_root)
        with _quiet_gradebook(), Gradebook(f"sqlite:///{master_db}", course_id) as master_gb:
            max_scores = {a.name: float(a.max_score) for a in master_gb.assignments}

            def done(result):
                outcome, task_info = result
                if task_info is not None and task_info["survivors"]:
                    problems.append(
                        f"{outcome.student}/{outcome.lesson}: processes survived SIGKILL: "
                        f"{task_info['survivors']}"
                    )
                try:
                    _merge(master_gb, outcome, task_info, course_id, max_scores)
                except Exception as exc:
                    master_gb.db.rollback()
                    problems.append(
                        f"{outcome.student}/{outcome.lesson}: merging into the gradebook "
                        f"failed: {exc!r}"
                    )
                if outcome.status != "missing":
                    folder = students[outcome.student] / outcome.lesson
                    _copy_results(course_root, outcome, folder)
                if outcome.status == "error" and outcome.log is not None:
                    outcome.notes.append(f"log: {outcome.log}")
                if not outcome.max_score:
                    outcome.max_score = max_scores.get(outcome.lesson, 0.0)
                outcomes.append(outcome)
                if outcome.status != "missing":
                    say(
                        f"  {outcome.student}/{outcome.lesson}: {outcome.status} "
                        f"{outcome.score:g}/{outcome.max_score:g} ({outcome.seconds:.1f} s)"
                    )

            _run_tasks(workspace, tasks, jobs, done)
        _write_csv(csv_path, outcomes)
    except (RuntimeError, FileNotFoundError, ValueError) as exc:
        problems.append(str(exc))
    finally:
        survivors = workspace.kill_all()
        if survivors:
            problems.append(f"processes could not be stopped: {survivors}")
        workspace.cleanup()
    report = GradeReport(outcomes, problems, csv_path, workspace.run_id, time.time() - started)
    if verbose and outcomes:
        print()
        print(report.table())
        print(f"\n{len(outcomes)} row(s) written to {csv_path} in {report.seconds:.0f} s")
    for problem in problems:
        say(f"PIPELINE ERROR: {problem}", file=sys.stderr)
    return report


def _course_id(root):
    """The course id nbgrader uses in ``root`` (``CourseDirectory.course_id``)."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    course_id = config.CourseDirectory.get("course_id", "")
    return course_id if isinstance(course_id, str) else ""


# --------------------------------------------------------------------------
# verify-exercises
# --------------------------------------------------------------------------


@dataclasses.dataclass
class VerifyReport:
    """What :func:`verify_exercises` found, lesson by lesson.

    Attributes
    ----------
    lessons : dict
        ``{lesson: {"reference": Outcome, "blank": Outcome, "problems": [...]}}``.
    """

    lessons: dict
    seconds: float = 0.0
    run_id: str = ""

    @property
    def ok(self):
        return all(not entry["problems"] for entry in self.lessons.values())

    def table(self):
        rows = [["lesson", "reference", "blank", "max", "seconds (ref/blank)", "result"]]
        for lesson, entry in sorted(self.lessons.items()):
            ref, blank = entry["reference"], entry["blank"]
            rows.append(
                [
                    lesson,
                    f"{_auto_points(ref):g}",
                    f"{_auto_points(blank):g}",
                    f"{_auto_max(ref):g}",
                    f"{ref.seconds:.1f}/{blank.seconds:.1f}",
                    "ok" if not entry["problems"] else f"{len(entry['problems'])} problem(s)",
                ]
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        for lesson, entry in sorted(self.lessons.items()):
            lines.extend(f"! {lesson}: {problem}" for problem in entry["problems"])
        return "\n".join(lines)


def _auto_points(outcome):
    return sum(score or 0.0 for score, _ in outcome.cells.values())


def _auto_max(outcome):
    return sum(maximum or 0.0 for _, maximum in outcome.cells.values())


def verify_exercises(course_root=REPO_ROOT, lessons=None, *, jobs=None, timeout=None, verbose=True):
    """Prove that every lesson's exercises grade what they claim.

    For every lesson, its solutions and its untouched release are graded as
    two students, each in a grading task of its own, and

    1. the solutions get full points on every autograded cell;
    2. the untouched release gets zero on every autograded cell (no test
       passes vacuously);
    3. the release holds no solution code, no hidden test, no output;
    4. no engine, controller or kernel is alive when grading ends.

    Returns
    -------
    VerifyReport
    """
    started = time.time()
    course_root = Path(course_root).resolve()
    selected = _select_lessons(course_root, lessons)
    jobs = _check_jobs(jobs)
    timeout = _check_timeout(timeout)
    entries = {}
    if not selected:
        if verbose:
            print(f"no lesson in {course_root / SOURCE_DIR}: nothing to verify")
        return VerifyReport({}, time.time() - started)
    workspace = _Workspace()
    try:
        template_root = _generate(workspace, course_root, selected, workspace.path / "template.db")
        prepared = _prepare_lessons(course_root, selected, template_root)
        template_db = workspace.path / "template.db"
        submissions = workspace.new_dir("students")
        for lesson in selected:
            for student, source in (
                ("reference", prepared[lesson].source),
                ("blank", prepared[lesson].release_dir),
            ):
                dest = submissions / student / lesson
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copytree(source, dest)
            entries[lesson] = {"problems": []}

        def task(student, lesson):
            return lambda: _grade_one(
                workspace,
                prepared[lesson],
                student,
                submissions / student / lesson,
                template_db,
                timeout=timeout,
                task_timeout=TASK_TIMEOUT,
            )

        def done(result):
            outcome, info = result
            entries[outcome.lesson][outcome.student] = outcome
            if info is not None and info["survivors"]:
                entries[outcome.lesson]["problems"].append(
                    f"processes survived SIGKILL: {info['survivors']}"
                )

        tasks = [task(s, lesson) for lesson in selected for s in ("reference", "blank")]
        if verbose:
            print(f"grading {len(tasks)} notebook set(s), {jobs} at a time ...")
        _run_tasks(workspace, tasks, jobs, done)
        for lesson in selected:
            entry = entries[lesson]
            entry["problems"].extend(_verify_problems(entry, timeout))
            for problem in release_problems(prepared[lesson]):
                entry["problems"].append(f"fresh release {problem}")
            entry["problems"].extend(_lesson_leaks(course_root, lesson))
    finally:
        workspace.kill_all()
        workspace.cleanup()
    report = VerifyReport(entries, time.time() - started, workspace.run_id)
    if verbose:
        print(report.table())
    return report


def release_problems(prepared):
    problems = []
    for name in prepared.notebooks:
        for problem in release_leaks(prepared.source / name, prepared.release_dir / name):
            problems.append(f"{name} {problem}")
    return problems


def _verify_problems(entry, timeout):
    problems = []
    ref, blank = entry["reference"], entry["blank"]
    for who, outcome in (("solutions", ref), ("release", blank)):
        if outcome.status != "graded":
            problems.append(f"the {who} could not be graded: {outcome.message}")
            continue
        if outcome.leftovers:
            problems.append(f"grading the {who} left processes behind: {outcome.leftovers}")
        for note in outcome.notes:
            if not note.startswith("to grade by hand") and "left after grading" not in note:
                problems.append(f"grading the {who}: {note}")
    if not ref.cells:
        problems.append("no autograded test cell")
    for cell, (score, maximum) in sorted(ref.cells.items()):
        if score != maximum:
            problems.append(f"the solutions get {score} of {maximum} points on {cell}")
    for cell, (score, maximum) in sorted(blank.cells.items()):
        if score:
            problems.append(
                f"the untouched release gets {score} of {maximum} points on {cell}: "
                f"its test passes without an answer"
            )
    if ref.manual:
        problems.append(f"cells need grading by hand: {', '.join(ref.manual)}")
    return problems


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None):
    """``python -m course_lib.grading <command>``: see ``--help``."""
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.grading", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--root", default=str(REPO_ROOT), help="course root (default: the repo)")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("release", "regenerate lessons/ from solutions/"),
        ("check-release", "fail when lessons/ is not what release writes"),
        ("grade", "autograde a folder of submissions"),
        ("verify-exercises", "grade solutions and blank releases, check both"),
    ):
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("--lessons", nargs="+", help="only these lessons")
        if name in ("grade", "verify-exercises"):
            sub.add_argument("--jobs", type=int, help="tasks at once (default: CPUs, memory)")
            sub.add_argument("--timeout", type=float, help="seconds per cell (default: config)")
        if name == "grade":
            sub.add_argument("submissions", help="folder of <student>/<lesson>/*.ipynb")
            sub.add_argument("--task-timeout", type=float, default=TASK_TIMEOUT)
            sub.add_argument("--csv", help="default: <root>/grades.csv")
    args = parser.parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        if args.command == "release":
            release(args.root, args.lessons)
            return 0
        if args.command == "check-release":
            problems = check_release(args.root, args.lessons)
            for problem in problems:
                print(problem)
            print("lessons/ is up to date" if not problems else "run `make release` and commit")
            return 1 if problems else 0
        if args.command == "grade":
            report = grade(
                args.submissions,
                args.root,
                lessons=args.lessons,
                jobs=args.jobs,
                timeout=args.timeout,
                task_timeout=args.task_timeout,
                csv_path=args.csv,
            )
            return 0 if report.ok else 1
        report = verify_exercises(args.root, args.lessons, jobs=args.jobs, timeout=args.timeout)
        return 0 if report.ok else 1
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
