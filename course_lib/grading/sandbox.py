"""The sandbox: every graded notebook's kernel runs inside bubblewrap.

nbgrader, which holds the gradebooks, stays outside. Only the kernel goes in,
and everything it starts (its cluster's controller and engines, any
subprocess). Inside, the student's code

* sees the system (``/usr``, ``/etc``, ...) and the course's Python
  environment read-only, and of the course's code only ``course_lib/``;
* has one writable folder, a scratch copy of the notebook's folder, at the
  path nbgrader runs the notebook in, plus a private ``/tmp`` and ``HOME``;
* does not see the course root (``solutions/``, ``lessons/``, ``.git``, the
  gradebooks), the grading task's folder, other students' submissions, nor
  the grader's ``HOME``;
* has its own network namespace (loopback only: the lesson's cluster works on
  127.0.0.1, nothing else is reachable) and its own PID namespace.

The kernelspec's ``argv`` runs this file as a script (it imports only the
standard library, so it starts fast), which makes the scratch copy and
starts ``bwrap`` with the kernel inside. The kernel talks to nbgrader over
ZeroMQ's IPC transport: Unix sockets next to the connection file, in a
folder bound into the sandbox. The script stays as the sandbox's parent:
when the kernel exits, any process it left behind is written down (the
runner reports them) and killed with the whole PID namespace.

The checker kernel, which runs the test cells (:mod:`course_lib.grading.execute`),
has a sandbox of its own, started by the same script with ``--checker``
(:func:`checker_bwrap_command`): the system, the Python environment and
``course_lib/`` read-only, the student's scratch folder read-only, the student
kernel's sockets, its own runtime folder, loopback only; it shares the host's
PID namespace, read-only, to see the student kernel's processes from outside.
Nothing of the checker is bound into the student's sandbox.

Examples
--------
>>> problem = sandbox_problem()
>>> problem is None or "bubblewrap" in problem
True
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["bwrap_command", "checker_bwrap_command", "describe_host", "sandbox_problem"]

#: Environment variable naming the folder where the launcher puts scratch
#: copies and the list of processes left behind (one per grading task).
SANDBOX_DIR_VAR = "COURSE_SANDBOX_DIR"
#: Home of the student's code inside the sandbox.
SANDBOX_HOME = "/tmp/home"
#: Environment variable naming the folder a student kernel's launcher uses for
#: its scratch copy (the executor names it, to show it to the checker).
RUN_DIR_VAR = "COURSE_SANDBOX_RUN"
#: Suffix of the files where the launcher lists processes left behind.
LEFTOVERS_SUFFIX = ".leftovers"
#: Suffix of the files where the launcher lists the files the kernel left in
#: its scratch copy of the notebook's folder (new ones, relative paths).
FILES_LEFT_SUFFIX = ".files-left"
#: What the launcher prints when it cannot make the sandbox (a grading
#: infrastructure failure, retried).
FAILURE_PREFIX = "course sandbox:"

HOW_TO_INSTALL = (
    "install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`; Fedora/RHEL: "
    "`dnf install bubblewrap`) and allow user namespaces (`sysctl "
    "kernel.unprivileged_userns_clone=1` on older Debian kernels; in a container, run it "
    "with namespaces allowed), then check with `make check-sandbox`; or grade without a "
    "sandbox with SANDBOX=off (every row of grades.csv then says so)"
)

_SYSTEM_DIRS = ("/usr", "/etc", "/opt", "/sys")
_SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


def _course_lib_dir():
    return Path(__file__).resolve().parent.parent


def _python_dirs():
    """The folders the kernel's Python needs: the venv and its base interpreter."""
    dirs = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}
    dirs.add(Path(os.path.realpath(sys.executable)).parent.parent)
    return sorted(d for d in dirs if not any(str(d).startswith(s + "/") for s in _SYSTEM_DIRS))


def _system_argv(bwrap, unshare):
    """``bwrap``, namespaces and the system, read-only."""
    # No capabilities: root inside is bound by file modes, and cannot remount.
    argv = [bwrap, *unshare, "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    for folder in _SYSTEM_DIRS:
        argv += ["--ro-bind-try", folder, folder]
    for link in _SYSTEM_LINKS:
        if os.path.islink(link):
            argv += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            argv += ["--ro-bind", link, link]
    return argv


def _course_argv():
    """The course's Python, ``course_lib`` and the data folder, read-only.

    Bound after the private ``/tmp``, so that a course or a venv kept under
    ``/tmp`` is seen, not hidden by it.
    """
    argv = []
    for folder in _python_dirs():
        argv += ["--ro-bind", str(folder), str(folder)]
    course_lib = _course_lib_dir()
    argv += ["--ro-bind", str(course_lib), str(course_lib)]
    data = os.environ.get("COURSE_DATA")
    if data and os.path.isdir(data):
        argv += ["--ro-bind", data, data]
    return argv


def _home_argv(workdir):
    argv = ["--dir", SANDBOX_HOME, "--setenv", "HOME", SANDBOX_HOME]
    argv += ["--setenv", "IPYTHONDIR", f"{SANDBOX_HOME}/.ipython"]
    argv += ["--setenv", "MPLCONFIGDIR", f"{SANDBOX_HOME}/.matplotlib"]
    argv += ["--setenv", "TMPDIR", "/tmp", "--unsetenv", "JUPYTER_PATH"]
    argv += ["--unsetenv", SANDBOX_DIR_VAR, "--unsetenv", RUN_DIR_VAR, "--chdir", str(workdir)]
    return argv


def bwrap_command(command, *, workdir, scratch, runtime_dir, bwrap="bwrap"):
    """The ``bwrap`` argv that runs ``command`` in a sandbox.

    Parameters
    ----------
    command : list of str
        What to run inside, for instance the kernel.
    workdir : str or Path
        Where the command runs, as it sees it (the notebook's folder).
    scratch : str or Path
        The writable copy of ``workdir``, bound at ``workdir``'s path.
    runtime_dir : str or Path
        Bound read-write at its own path: the kernel's connection file and
        IPC sockets.
    bwrap : str
        The bubblewrap executable.

    Returns
    -------
    list of str

    Examples
    --------
    >>> argv = bwrap_command(["true"], workdir="/w", scratch="/s", runtime_dir="/r")
    >>> argv[:3]
    ['bwrap', '--unshare-all', '--die-with-parent']
    >>> _ancestors("/tmp/grading/task-1/ada", "/tmp/grading/task-1/rt")
    ['/tmp/grading', '/tmp/grading/task-1']
    """
    argv = _system_argv(bwrap, ["--unshare-all"])
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/dev/shm", "--tmpfs", "/tmp"]
    # The folders above the two writable ones exist only to hold them: read-only.
    for folder in _ancestors(workdir, runtime_dir):
        argv += ["--perms", "0555", "--dir", folder]
    argv += _course_argv()
    argv += ["--bind", str(scratch), str(workdir)]
    argv += ["--bind", str(runtime_dir), str(runtime_dir)]
    return [*argv, *_home_argv(workdir), *command]


def checker_bwrap_command(command, *, workdir, folder, student_runtime, runtime_dir, bwrap="bwrap"):
    """The ``bwrap`` argv of a checker kernel: its sandbox, apart from the student's.

    The checker sees the system, the course's Python and ``course_lib``
    read-only, the student's folder read-only at ``workdir`` (what the
    student's code wrote), the student kernel's runtime folder read-only (its
    sockets: the channel), its own runtime folder read-write, a private
    ``/tmp``, loopback only. It shares the host's PID namespace, read-only,
    to see the student kernel's processes from outside.

    Examples
    --------
    >>> argv = checker_bwrap_command(["true"], workdir="/w", folder="/s",
    ...                              student_runtime="/r", runtime_dir="/c")
    >>> "--unshare-pid" in argv, ["--ro-bind", "/s", "/w"] == argv[argv.index("/s") - 1:][:3]
    (False, True)
    """
    unshare = [f"--unshare-{kind}" for kind in ("user", "ipc", "net", "uts", "cgroup")]
    argv = _system_argv(bwrap, unshare)
    argv += ["--ro-bind", "/proc", "/proc", "--dev", "/dev", "--tmpfs", "/dev/shm"]
    argv += ["--tmpfs", "/tmp"]
    for above in _ancestors(workdir, student_runtime, runtime_dir):
        argv += ["--perms", "0555", "--dir", above]
    argv += _course_argv()
    argv += ["--ro-bind", str(folder), str(workdir)]
    argv += ["--ro-bind", str(student_runtime), str(student_runtime)]
    argv += ["--bind", str(runtime_dir), str(runtime_dir)]
    return [*argv, *_home_argv(workdir), *command]


def _ancestors(*paths):
    """The folders above ``paths`` below ``/tmp``, each once, parents first."""
    found = []
    for path in paths:
        parts = Path(path).parts
        for depth in range(3, len(parts)):
            folder = str(Path(*parts[:depth]))
            if parts[:2] == ("/", "tmp") and folder not in found:
                found.append(folder)
    return found


def sandbox_problem(bwrap=None):
    """Why a sandbox cannot be made on this host, or None when it can.

    Starts a real one (``bwrap`` with every namespace) and runs ``true`` in it.

    Returns
    -------
    str or None
        What is missing and how to install it.
    """
    bwrap = bwrap or shutil.which("bwrap")
    if bwrap is None:
        return f"bubblewrap (`bwrap`) is not on PATH: {HOW_TO_INSTALL}."
    with tempfile.TemporaryDirectory(prefix="course-sandbox-check-") as folder:
        argv = bwrap_command(
            [sys.executable, "-c", "pass"],
            workdir=folder,
            scratch=folder,
            runtime_dir=folder,
            bwrap=bwrap,
        )
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{bwrap} could not be run ({exc}): {HOW_TO_INSTALL}."
    if result.returncode != 0:
        error = (result.stderr or result.stdout).strip().splitlines()
        reason = error[-1] if error else f"exit code {result.returncode}"
        return f"{bwrap} cannot make namespaces here ({reason}): {HOW_TO_INSTALL}."
    return None


def describe_host():
    """Lines saying what of the sandbox works here (``make check-sandbox``)."""
    bwrap = shutil.which("bwrap")
    lines = [f"bwrap: {bwrap or 'not found on PATH'}"]
    if bwrap:
        version = subprocess.run([bwrap, "--version"], capture_output=True, text=True, check=False)
        lines.append(f"version: {version.stdout.strip() or version.stderr.strip()}")
        probe = (
            "import os, socket; print(os.getpid(), sorted(n for _, n in socket.if_nameindex()), "
            "os.path.exists(os.path.expanduser('~/.ssh')))"
        )
        with tempfile.TemporaryDirectory(prefix="course-sandbox-check-") as folder:
            argv = bwrap_command(
                [sys.executable, "-c", probe], workdir=folder, scratch=folder, runtime_dir=folder
            )
            run = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        if run.returncode == 0:
            pid, interfaces, _ = run.stdout.strip().split(" ", 2)
            lines.append(f"namespaces: ok (the kernel is PID {pid} of its own PID namespace)")
            lines.append(f"network interfaces inside: {interfaces.strip()}")
            lines.append(f"course_lib bound read-only from {_course_lib_dir()}")
            lines.append(f"python: {', '.join(str(p) for p in _python_dirs())} read-only")
        else:
            lines.append(f"namespaces: FAILED ({run.stderr.strip().splitlines()[-1:]})")
    problem = sandbox_problem()
    lines.append("sandbox: ok" if problem is None else f"sandbox: NOT AVAILABLE: {problem}")
    return lines


# --------------------------------------------------------------------------
# The kernel launcher (run as a script by the grading kernelspec)
# --------------------------------------------------------------------------


def _parents():
    """``{pid: parent pid}`` of every process, read from ``/proc/PID/stat``."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":  # a zombie has exited
            parents[int(entry)] = int(fields[1])
    return parents


def _descendants(pid, depth=None):
    """PIDs of the live descendants of ``pid``, generation by generation."""
    parents = _parents()
    found, generation = [], [pid]
    while generation and (depth is None or depth > 0):
        generation = [child for child, parent in parents.items() if parent in generation]
        found.extend(generation)
        depth = None if depth is None else depth - 1
    return found


def _describe_pid(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            args = handle.read().split(b"\0")
        with open(f"/proc/{pid}/comm") as handle:
            name = handle.read().strip()
    except OSError:
        return str(pid)
    cmdline = " ".join(a.decode(errors="replace") for a in args[1:4] if a)
    return f"{pid} ({name} {cmdline})".strip()


def _new_files(folder, original):
    """The files under ``folder`` that ``original`` does not have, as relative paths.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> a, b = (pathlib.Path(tempfile.mkdtemp()) for _ in range(2))
    >>> _ = (a / "lesson.ipynb").write_text("{}"), (b / "lesson.ipynb").write_text("{}")
    >>> _ = (b / "scratch.txt").write_text("left")
    >>> _new_files(b, a)
    ['scratch.txt']
    """
    folder, original = Path(folder), Path(original)
    return sorted(
        str(path.relative_to(folder))
        for path in folder.rglob("*")
        if not path.is_dir() and not (original / path.relative_to(folder)).exists()
    )


def launch_kernel(kernel_args):
    """Run the kernel in a sandbox; return its exit code (the launcher's ``main``).

    ``kernel_args`` are ipykernel's (``-f CONNECTION_FILE ...``). The current
    folder is the notebook's (nbgrader starts kernels there); its scratch
    copy is made in ``$COURSE_SANDBOX_DIR``. Inside, this file runs again as
    the kernel's parent (:func:`_watch_kernel`) and says on a pipe when the
    kernel has exited: what is still running then was left behind.
    """
    workdir = Path.cwd()
    base = Path(os.environ[SANDBOX_DIR_VAR])
    base.mkdir(parents=True, exist_ok=True)
    if os.environ.get(RUN_DIR_VAR):
        run_dir = Path(os.environ[RUN_DIR_VAR])  # the executor may have made scratch/
        run_dir.mkdir(parents=True, exist_ok=True)
    else:
        run_dir = Path(tempfile.mkdtemp(prefix="kernel-", dir=base))
    scratch = run_dir / "scratch"
    shutil.copytree(workdir, scratch, symlinks=True, dirs_exist_ok=True)
    connection = Path(kernel_args[kernel_args.index("-f") + 1]).resolve()
    if connection.parent.parent != base.parent:
        # Only a folder of the task's own may be bound: never a shared /tmp.
        print(
            f"{FAILURE_PREFIX} the connection file {connection} is not in the task's folder",
            file=sys.stderr,
            flush=True,
        )
        return 70
    read_fd, write_fd = os.pipe()
    inside = [sys.executable, __file__, _INSIDE, str(write_fd), *kernel_args]
    argv = bwrap_command(inside, workdir=workdir, scratch=scratch, runtime_dir=connection.parent)
    try:
        proc = subprocess.Popen(argv, pass_fds=(write_fd,), stdin=subprocess.DEVNULL)
    except OSError as exc:
        print(f"{FAILURE_PREFIX} bwrap could not start: {exc}", file=sys.stderr, flush=True)
        return 70

    def kill_sandbox():
        # bwrap's PID 1 dies, and the kernel tears the whole PID namespace down.
        for child in _descendants(proc.pid, depth=1):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)

    def terminate_kernel(signum, frame):
        # jupyter_client's SIGTERM is meant for the kernel: the watcher passes it on,
        # and says when the kernel has exited, as always.
        for pid in _descendants(proc.pid):
            if _INSIDE in _describe_pid(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, terminate_kernel)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        message = pipe.readline().split()
    if message[:1] == ["exit"]:
        # Under bwrap: its PID 1, under which the watcher and what was left behind.
        left = [pid for pid in _descendants(proc.pid)[1:] if _INSIDE not in _describe_pid(pid)]
        if left:
            (run_dir.parent / f"{run_dir.name}{LEFTOVERS_SUFFIX}").write_text(
                "\n".join(_describe_pid(pid) for pid in left) + "\n"
            )
        kill_sandbox()
        proc.wait()
        new_files = _new_files(scratch, workdir)
        if new_files:
            (run_dir.parent / f"{run_dir.name}{FILES_LEFT_SUFFIX}").write_text(
                "\n".join(new_files) + "\n"
            )
        shutil.rmtree(run_dir, ignore_errors=True)
        return int(message[1])
    returncode = proc.wait()
    print(f"{FAILURE_PREFIX} the sandbox failed (bwrap exit code {returncode})", file=sys.stderr)
    return 70


def launch_checker(kernel_args):
    """Run a checker kernel in a sandbox of its own (the launcher's ``--checker``).

    What it may see comes from the channel's spec (:mod:`course_lib.grading.channel`),
    named by ``COURSE_STUDENT_CHANNEL``, which the executor writes in the
    checker's own runtime folder next to the connection file. ``bwrap`` replaces
    this process: the kernel manager signals the sandbox directly.
    """
    import json

    connection = Path(kernel_args[kernel_args.index("-f") + 1]).resolve()
    try:
        spec = json.loads(Path(os.environ["COURSE_STUDENT_CHANNEL"]).read_text())
        sandbox = spec["sandbox"]
    except (KeyError, OSError, ValueError) as exc:
        print(f"{FAILURE_PREFIX} the checker has no channel spec ({exc!r})", file=sys.stderr)
        return 70
    inside = [sys.executable, *CHECKER_KERNEL_ARGS, *kernel_args]
    argv = checker_bwrap_command(
        inside,
        workdir=sandbox["workdir"],
        folder=sandbox["folder"],
        student_runtime=sandbox["student_runtime"],
        runtime_dir=connection.parent,
    )
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        print(f"{FAILURE_PREFIX} bwrap could not start: {exc}", file=sys.stderr, flush=True)
    return 70


def _watch_kernel(write_fd, kernel_args):
    """Inside the sandbox: run the kernel, say when it exits, wait to be killed."""
    kernel = subprocess.Popen([sys.executable, *STUDENT_KERNEL_ARGS, *kernel_args])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: kernel.terminate())
    returncode = kernel.wait()
    with os.fdopen(write_fd, "w") as pipe:
        pipe.write(f"exit {returncode}\n")
    signal.pause()


_INSIDE = "--inside-sandbox"
#: What runs the kernels: ipykernel's, with a clean shutdown (course_lib.grading._kernel).
KERNEL_MODULE = "course_lib.grading._kernel"
#: The interpreter's arguments of each kernel, sandboxed or not. The checker gets -P:
#: it starts in the student's folder, and nothing there may be importable by it.
STUDENT_KERNEL_ARGS = ("-m", KERNEL_MODULE)
CHECKER_KERNEL_ARGS = ("-P", "-m", KERNEL_MODULE)
CHECKER = "--checker"

if __name__ == "__main__":
    if sys.argv[1:2] == [_INSIDE]:
        _watch_kernel(int(sys.argv[2]), sys.argv[3:])
    elif sys.argv[1:2] == [CHECKER]:
        sys.exit(launch_checker(sys.argv[2:]))
    else:
        sys.exit(launch_kernel(sys.argv[1:]))
