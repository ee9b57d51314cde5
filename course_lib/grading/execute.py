"""The executor of a graded notebook: two kernels, tests apart from the student's code.

:class:`TwoKernelExecute` takes nbgrader's ``Execute`` place in
``Autograde.autograde_preprocessors`` (:func:`use_two_kernels`). It starts

* the **student kernel** (``Execute.kernel_name``, in the grading sandbox),
  which runs every code cell that is not a test: the student's answers, the
  locked setup and teaching cells, in notebook order;
* a **checker kernel** (:data:`CHECKER_KERNEL`, in a sandbox of its own),
  which runs every test cell (nbgrader ``grade`` and not ``solution``). Only
  there is :data:`course_lib.checking.CHANNEL_VAR` set: the test cells'
  ``student`` handle reaches the student's kernel through the channel
  (:mod:`course_lib.grading.channel`), data only.

Outputs go into each cell as nbgrader's ``Execute`` writes them (an error
output costs the cell's points), with the same per-cell timeout, interrupts
and kernel arguments (minimal tracebacks) for both kernels. A hang is
stopped by the timeout and the rest is graded; a student kernel that dies
fails the cells after it that need it, and the rest is still graded
(nothing is restarted). A checker kernel that dies or stops answering is not
the student's doing: :class:`CheckerKernelError` ends the run, and grading
retries it.

Two records per notebook are written in ``audit_dir``:
``<notebook>.sent.jsonl``, every code sent to the student's kernel (one JSON
line each, ``{"from": "executor" | "checker", "code": ...}``), and
``<notebook>.checker-types.json``, the sorted ``module.qualname`` of the type
of every object the garbage collector tracked in the checker at the end.

Examples
--------
>>> from traitlets.config import Config
>>> c = Config()
>>> use_two_kernels(c)
>>> TwoKernelExecute in c.Autograde.autograde_preprocessors
True
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_sync
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Integer, Unicode

from course_lib import _wire
from course_lib.checking import CHANNEL_VAR
from course_lib.grading import sandbox as sandboxing
from course_lib.grading.channel import kernel_process, log_sent, write_spec
from course_lib.grading.notebooks import grade_id, nbgrader_meta
from course_lib.grading.runner import CHECKER_KERNEL, SENT_SUFFIX, TYPES_SUFFIX

__all__ = [
    "CHECKER_KERNEL",
    "CheckerKernelError",
    "TwoKernelExecute",
    "autograde_steps",
    "is_test_cell",
]

#: What the checker evaluates at the end: the types of every object it holds.
#: What the checker runs, unawaited, while the student's first cells run.
_WARM_UP = "import course_lib.grading.channel, numpy"
_TYPES_EXPRESSION = (
    '__import__("json").dumps(sorted({str(getattr(type(o), "__module__", "?")) + "." + '
    'str(getattr(type(o), "__qualname__", "?")) for o in __import__("gc").get_objects()}))'
)


class CheckerKernelError(RuntimeError):
    """The checker kernel died, did not start or stopped answering: not the student's doing."""


def _write_json(path, value):
    """Write ``value`` to ``path`` at once: a reader sees the old file or the new one."""
    tmp = Path(f"{path}.part")
    tmp.write_text(json.dumps(value, indent=1))
    os.replace(tmp, path)


def is_test_cell(cell):
    """Whether ``cell`` is a test cell, the checker's: nbgrader ``grade``, locked, no answer.

    It must also carry a ``grade_id``: nbgrader's autograde removes the id of
    every cell the gradebook does not know and restores the source of every
    locked cell it does, so a cell a student added or edited never runs in the
    checker.

    Examples
    --------
    >>> from nbformat.v4 import new_code_cell
    >>> cell = new_code_cell("assert True")
    >>> cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True,
    ...                              "grade_id": "test-x"}
    >>> is_test_cell(cell), is_test_cell(new_code_cell("x = 1"))
    (True, False)
    """
    meta = nbgrader_meta(cell)
    return (
        cell.get("cell_type") == "code"
        and bool(meta.get("grade"))
        and bool(meta.get("locked"))
        and not meta.get("solution")
        and bool(meta.get("grade_id"))
    )


def _error_output(ename, evalue):
    return NotebookNode(
        output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"]
    )


def _label(cell, index):
    return grade_id(cell) or f"cell {index + 1}"


class TwoKernelExecute(Execute):
    """nbgrader's ``Execute``, with test cells in a checker kernel of their own."""

    checker_kernel_name = Unicode(CHECKER_KERNEL, help="The kernelspec of the checker kernel.").tag(
        config=True
    )
    checker_runtime_dir = Unicode(
        "",
        help="Folder of the checker kernel's connection file, the channel's spec and the "
        "sent-log (default: a temporary folder). Never a folder the student's kernel sees.",
    ).tag(config=True)
    audit_dir = Unicode(
        "", help="Where the sent-log and the checker's types are written per notebook."
    ).tag(config=True)
    max_reply_bytes = Integer(
        _wire.MAX_BYTES, help="The longest reply (characters) the checker accepts."
    ).tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        """Execute ``nb``: test cells in the checker, every other code cell in the student's."""
        NotebookClient.__init__(self, nb, km)
        self.reset_execution_trackers()
        self._check_assign_resources(resources)
        self._student_down = None
        self._checker_started = False
        owned = not self.checker_runtime_dir
        runtime = Path(self.checker_runtime_dir or tempfile.mkdtemp(prefix="course-checker-"))
        runtime.mkdir(parents=True, exist_ok=True)
        self._sent_log = runtime / "sent.jsonl"
        self._sent_log.write_text("")
        self._status_file = runtime / "student-status"
        self._status_file.unlink(missing_ok=True)
        name = (resources or {}).get("unique_key") or "notebook"
        types = None
        try:
            if self.km is None:
                self.km = self.create_kernel_manager()
            student_env, scratch = self._student_env()
            checker = self._checker(runtime, scratch)
            # Both kernels start at once: the checker's start costs no time of its own.
            self._start(checker, student_env)
            with self.setup_kernel(), checker.setup_kernel(cleanup_kc=True):
                info_msg = self.wait_for_reply(self.kc.kernel_info())
                self.nb.metadata["language_info"] = info_msg["content"]["language_info"]
                self._complete_spec(checker)
                # The checker imports the channel while the student's first cells run.
                checker.kc.execute(_WARM_UP, silent=True, store_history=False)
                for index, cell in enumerate(self.nb.cells):
                    self._run_cell(checker, cell, index)
                types = self._checker_types(checker)
        except (OSError, RuntimeError) as error:
            if isinstance(error, CheckerKernelError) or not self._checker_started:
                raise
            raise CheckerKernelError(f"the checker kernel failed: {error!r}") from error
        finally:
            self._write_audit(name, types)
            if owned:
                shutil.rmtree(runtime, ignore_errors=True)
        self.set_widgets_metadata()
        return self.nb, self.resources

    # -- kernels
    def _sandboxed(self):
        launcher = str(Path(sandboxing.__file__).resolve())
        return any(str(Path(arg).resolve()) == launcher for arg in self.km.kernel_spec.argv[:3])

    def _student_env(self):
        """The student kernel's environment; the folder of its scratch copy, if sandboxed."""
        env = dict(os.environ)
        env.pop(CHANNEL_VAR, None)
        if not self._sandboxed():
            return env, None
        base = Path(env[sandboxing.SANDBOX_DIR_VAR])
        run_dir = base / f"kernel-{uuid.uuid4().hex[:12]}"
        env[sandboxing.RUN_DIR_VAR] = str(run_dir)
        return env, run_dir / "scratch"

    def _checker(self, runtime, scratch):
        """The checker's client and kernel manager; the first part of the channel's spec.

        What the checker's sandbox binds is known before either kernel starts;
        the student kernel's connection and process follow (:meth:`_complete_spec`).
        """
        student = self.km
        self._workdir = Path(self.resources.get("metadata", {}).get("path") or os.getcwd())
        self._workdir = self._workdir.resolve()
        self._spec_path = runtime / "channel.json"
        self._spec = {"status_file": str(self._status_file)}
        if scratch is not None:
            # The student's launcher fills it; the checker binds it read-only.
            scratch.mkdir(parents=True)
            self._spec["sandbox"] = {
                "workdir": str(self._workdir),
                "folder": str(scratch),
                "student_runtime": str(Path(student.connection_file).resolve().parent),
            }
        _write_json(self._spec_path, self._spec)
        manager = {"kernel_name": self.checker_kernel_name}
        if student.transport == "ipc":
            manager.update(
                transport="ipc",
                ip=str(runtime / "kernel-ipc"),
                connection_file=str(runtime / "kernel.json"),
            )
        km = AsyncKernelManager(config=self.config, **manager)
        km.shutdown_wait_time = student.shutdown_wait_time
        checker = Execute(config=self.config)
        NotebookClient.__init__(checker, self.nb, km)
        checker.reset_execution_trackers()
        checker.resources = self.resources
        checker.kernel_name = self.checker_kernel_name
        return checker

    def _start(self, checker, student_env):
        """Start both kernels at once and wait until both answer."""
        checker_env = {**os.environ, CHANNEL_VAR: str(self._spec_path)}
        checker_env.pop(sandboxing.RUN_DIR_VAR, None)

        async def start():
            steps = (
                lambda: (
                    self.async_start_new_kernel(env=student_env),
                    checker.async_start_new_kernel(env=checker_env),
                ),
                lambda: (
                    self.async_start_new_kernel_client(),
                    checker.async_start_new_kernel_client(),
                ),
            )
            for step in steps:
                student, checked = await asyncio.gather(*step(), return_exceptions=True)
                if isinstance(student, BaseException):
                    raise student
                if isinstance(checked, BaseException):
                    raise CheckerKernelError(f"the checker kernel did not start: {checked!r}")

        try:
            run_sync(start)()
        except BaseException:
            for client in (checker, self):
                with contextlib.suppress(Exception):
                    client._cleanup_kernel()
            raise
        self._checker_started = True

    def _complete_spec(self, checker):
        """The rest of the spec: how to reach the student's kernel, its process."""
        launcher = self.km.provisioner.process.pid if self.km.provisioner else None
        kernel = kernel_process(launcher) if launcher else None
        if kernel is None:
            raise RuntimeError("the student's kernel process could not be found")
        written = write_spec(
            self._spec_path.with_suffix(".tmp"),
            connection=self.km.get_connection_info(),
            kernel_pid=kernel.pid,
            create_time=kernel.create_time(),
            folder=self._workdir,
            sent_log=self._sent_log,
            max_bytes=self.max_reply_bytes,
        )
        spec = {**json.loads(written.read_text()), **self._spec}
        if "sandbox" in spec:
            # Everything in the student's sandbox is the student's, but its machinery.
            machinery = []
            for parent in kernel.parents():  # bwrap, its PID 1, the watcher
                if parent.pid == launcher:
                    break
                machinery.append(parent.pid)
            spec["processes"] = {"root": launcher, "machinery": machinery}
        written.unlink()
        _write_json(self._spec_path, spec)

    # -- cells
    def _run_cell(self, checker, cell, index):
        if cell.get("cell_type") != "code" or not cell.source.strip():
            return
        if is_test_cell(cell):
            try:
                checker.execute_cell(cell, index, store_history=True)
            except DeadKernelError as error:
                raise CheckerKernelError(
                    f"the checker kernel died while {_label(cell, index)} ran"
                ) from error
            except CellTimeoutError as error:
                raise CheckerKernelError(
                    f"the checker kernel stopped answering in {_label(cell, index)}"
                ) from error
            return
        if self._student_down is not None:
            cell.outputs = [
                _error_output(
                    "DeadKernelError",
                    f"not run: the notebook's kernel {self._student_down}",
                )
            ]
            return
        log_sent(self._sent_log, cell.source, "executor")
        try:
            self.execute_cell(cell, index, store_history=True)
        except DeadKernelError:
            self._student_gone(cell, index, "died", "the notebook's kernel died in this cell")
        except CellTimeoutError:
            self._student_gone(
                cell,
                index,
                "stopped answering",
                "the notebook's kernel stopped answering, even to an interrupt, in this cell",
            )

    def _student_gone(self, cell, index, what, message):
        self._student_down = f"{what} in {_label(cell, index)}"
        cell.outputs = [*cell.get("outputs", []), _error_output("DeadKernelError", message)]
        self._status_file.write_text(f"the notebook's kernel {self._student_down}")

    # -- records
    def _checker_types(self, checker):
        """The types of every object the checker holds (``module.qualname``), sorted."""
        try:
            msg_id = checker.kc.execute(
                "", silent=True, store_history=False, user_expressions={"types": _TYPES_EXPRESSION}
            )
            reply = checker.wait_for_reply(msg_id)
            found = reply["content"]["user_expressions"]["types"]
            if found.get("status") != "ok":
                raise RuntimeError(f"{found.get('ename')}: {found.get('evalue')}")
            return json.loads(ast.literal_eval(found["data"]["text/plain"]))
        except Exception as error:  # the checker could not say: recorded, not fatal here
            return {"error": f"{type(error).__name__}: {error}"}

    def _write_audit(self, name, types):
        if not self.audit_dir:
            return
        folder = Path(self.audit_dir)
        folder.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            shutil.copy(self._sent_log, folder / f"{name}{SENT_SUFFIX}")
        if types is not None:
            (folder / f"{name}{TYPES_SUFFIX}").write_text(json.dumps(types, indent=0))


def use_two_kernels(config):
    """Put :class:`TwoKernelExecute` in ``Execute``'s place in autograde's preprocessors.

    Parameters
    ----------
    config : traitlets.config.Config
        The ``c`` of an ``nbgrader_config.py``. Settings of ``c.Execute``
        (timeout, kernel, arguments) apply to both kernels.
    """
    steps = autograde_steps(config, "autograde_preprocessors")
    config.Autograde.autograde_preprocessors = [
        TwoKernelExecute if step is Execute else step for step in steps
    ]


def autograde_steps(config, trait):
    """The preprocessors ``config`` gives nbgrader's ``Autograde.<trait>``, else its default.

    Examples
    --------
    >>> from traitlets.config import Config
    >>> autograde_steps(Config(), "sanitize_preprocessors")[0].__name__
    'ClearOutput'
    """
    from nbgrader.converters import Autograde

    steps = list(config.Autograde.get(trait, None) or [])
    return steps or list(Autograde.class_traits()[trait].default())
