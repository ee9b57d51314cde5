"""The channel: a checker kernel asks the student's kernel, data comes back.

When a notebook is graded, its test cells run in a *checker* kernel apart
from the student's (:mod:`course_lib.grading.execute`). There,
:data:`course_lib.checking.student` sends every request through a
:class:`KernelBackend`, which talks to the student's kernel as a Jupyter
client does, over the kernel's own ZeroMQ sockets:

* each request is an ``execute_request`` whose code is one fixed line
  (:data:`TEMPLATE`) that calls :func:`course_lib.checking.serve` with the
  request's JSON text as a string literal: names and data, never a test's
  source;
* the student's kernel publishes the reply as ``display_data`` of a private
  MIME type (:data:`MIME`), matched by the request's ``msg_id``; the checker
  decodes it from data alone (:mod:`course_lib._wire`);
* every request has a timeout (the student's kernel is interrupted when it
  passes), every reply a size limit, and a dead kernel is seen at once:
  each fails the test that made the request
  (:class:`~course_lib.checking.StudentError` of kind ``"channel"``);
* every message sent is written to the *sent-log*, one JSON line each.

What the checker can establish itself, it does not ask:
:meth:`KernelBackend.processes` reads the student kernel's process tree
from outside its sandbox, :meth:`KernelBackend.folder` is the student's
scratch folder, read-only in the checker's sandbox.

The environment variable :data:`course_lib.checking.CHANNEL_VAR` names the
channel's *spec*, a JSON file written by the executor (:func:`write_spec`).

Examples
--------
>>> TEMPLATE.format(literal=repr('{"op": "value"}'))  # doctest: +ELLIPSIS
'__import__("IPython.display", fromlist=["x"]).publish_display_data(...'
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

from course_lib import _wire
from course_lib.checking import StudentError
from course_lib.grading.sandbox import KERNEL_MODULE

__all__ = [
    "MIME",
    "TEMPLATE",
    "KernelBackend",
    "kernel_process",
    "log_sent",
    "processes_of",
    "write_spec",
]

#: The MIME type of a reply; nothing else the student's kernel publishes counts.
MIME = "application/vnd.course-reply+json"
#: The only code the checker ever sends: one line, the request as a literal.
TEMPLATE = (
    '__import__("IPython.display", fromlist=["x"]).publish_display_data('
    '{{"' + MIME + '": __import__("course_lib.checking", fromlist=["serve"])'
    ".serve({literal})}})"
)
#: Seconds the student's kernel gets to answer an interrupt before the channel gives up.
INTERRUPT_GRACE = 5.0
#: Seconds the checker waits for the student's kernel to answer its first message.
READY_TIMEOUT = 60.0
#: Seconds between two looks at whether the student's kernel still lives.
_POLL = 0.25


def _channel_error(message):
    return StudentError(message, "channel")


# -- processes, seen from outside ---------------------------------------------


#: How an ipykernel process is started: the grading kernels' way, and ipykernel's own.
_KERNEL_ENTRY_POINTS = {KERNEL_MODULE, "ipykernel_launcher"}


def kernel_process(launcher_pid, timeout=10.0):
    """The ipykernel process a kernel manager started as ``launcher_pid``.

    Without a sandbox, it is that process; in one, a descendant of the
    sandbox launcher. Looked up once, right after the kernel answered its
    first message, before any of the student's code ran.

    Returns
    -------
    psutil.Process or None
    """
    import psutil

    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(psutil.Error):
            launcher = psutil.Process(launcher_pid)
            for proc in [launcher, *launcher.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    if _KERNEL_ENTRY_POINTS & set(proc.cmdline()):
                        return proc
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)


def _namespace_pid(proc):
    """The PID of ``proc`` as the processes of its own PID namespace see it."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    return proc.pid


def processes_of(kernel_pid, create_time=None, sandbox=None):
    """The live processes ``kernel_pid`` started: ``[{pid, name, cmdline}]``.

    ``pid`` is as the student's kernel sees it (its own PID namespace when
    sandboxed), so that it compares with what the student's engines report.
    With ``sandbox`` (``{"root": pid, "machinery": [pid, ...]}``: the sandbox's
    launcher and the processes between it and the kernel), every process in
    the student's sandbox counts, also those that left the kernel's tree (a
    double fork), except the sandbox's own.

    Raises
    ------
    StudentError
        Of kind ``"channel"`` when the kernel is not running any more.
    """
    import psutil

    try:
        kernel = psutil.Process(kernel_pid)
        if create_time is not None and abs(kernel.create_time() - create_time) > 0.01:
            raise psutil.NoSuchProcess(kernel_pid)
        if kernel.status() == psutil.STATUS_ZOMBIE:
            raise psutil.NoSuchProcess(kernel_pid)
        children = kernel.children(recursive=True)
        if sandbox:
            machinery = {int(pid) for pid in sandbox.get("machinery", [])} | {kernel.pid}
            root = psutil.Process(int(sandbox["root"]))
            children = [p for p in root.children(recursive=True) if p.pid not in machinery]
    except psutil.Error:
        raise _channel_error("the notebook's kernel is not running any more") from None
    found = []
    for child in children:
        with contextlib.suppress(psutil.Error):
            if child.status() == psutil.STATUS_ZOMBIE:
                continue
            found.append(
                {"pid": _namespace_pid(child), "name": child.name(), "cmdline": child.cmdline()}
            )
    return found


# -- the spec: what the executor tells the checker ------------------------------


def write_spec(path, *, connection, kernel_pid, create_time, folder, sent_log, max_bytes=None):
    """Write the channel's spec (a JSON file) for a checker kernel; return its path.

    Parameters
    ----------
    path : str or Path
        Where to write it (a folder of the checker's, not the student's).
    connection : dict
        The student kernel's connection info (``KernelManager.get_connection_info``).
    kernel_pid : int
        The student's ipykernel process, seen from outside (:func:`kernel_process`).
    create_time : float
        Its creation time (a reused PID is not the kernel).
    folder : str or Path
        The student's folder, as the checker sees it.
    sent_log : str or Path
        Where the checker appends every message it sends.
    max_bytes : int, optional
        The longest reply accepted; default :data:`course_lib._wire.MAX_BYTES`.
    """
    info = {
        key: value.decode() if isinstance(value, bytes) else value
        for key, value in dict(connection).items()
    }
    spec = {
        "connection": info,
        "kernel_pid": int(kernel_pid),
        "create_time": float(create_time),
        "folder": str(folder),
        "sent_log": str(sent_log),
        "max_bytes": int(max_bytes or _wire.MAX_BYTES),
    }
    Path(path).write_text(json.dumps(spec, indent=1))
    return Path(path)


def _url(info, channel):
    port = info[f"{channel}_port"]
    if info.get("transport", "tcp") == "ipc":
        return f"ipc://{info['ip']}-{port}"
    return f"tcp://{info['ip']}:{port}"


# -- the backend ------------------------------------------------------------------


class KernelBackend:
    """:data:`course_lib.checking.student`'s requests, sent to the student's kernel.

    Parameters
    ----------
    spec : str or Path
        The channel's spec file (:func:`write_spec`): the value of
        :data:`course_lib.checking.CHANNEL_VAR` in a checker kernel.
    """

    def __init__(self, spec):
        path = Path(spec)
        try:
            self._spec = json.loads(path.read_text())
            self._info = self._spec["connection"]
            self._kernel_pid = int(self._spec["kernel_pid"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise _channel_error(f"the channel's spec {path} is unusable ({error})") from None
        self._max_bytes = int(self._spec.get("max_bytes") or _wire.MAX_BYTES)
        self._sockets = None

    # -- facts read from outside
    def processes(self):
        """The processes the student's kernel started, alive now (:func:`processes_of`)."""
        return processes_of(
            self._kernel_pid, self._spec.get("create_time"), self._spec.get("processes")
        )

    def folder(self):
        """The student's folder (read-only here)."""
        return Path(self._spec["folder"])

    # -- requests
    def request(self, text, timeout=None):
        """Send one request's JSON ``text``; return the reply's text.

        Raises
        ------
        StudentError
            Of kind ``"channel"``: the kernel is dead, did not answer within
            ``timeout`` seconds (it is interrupted), or answered with
            something that is not a reply (too long, not text).
        """
        timeout = _wire_timeout(timeout)
        self._check_alive()
        session, shell, iopub, _ = self._connect()
        code = TEMPLATE.format(literal=repr(str(text)))
        msg_id = self._send(
            shell,
            "execute_request",
            {
                "code": code,
                "silent": False,
                "store_history": False,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": False,
            },
            log=code,
        )
        try:
            return self._wait_reply(msg_id, timeout)
        except KeyboardInterrupt:
            # The checker's cell ran out of time: the student's kernel stops too.
            self._interrupt(msg_id, wait=False)
            raise

    def _wait_reply(self, msg_id, timeout):
        import zmq

        _, shell, iopub, _ = self._connect()
        deadline = time.monotonic() + timeout
        reply, replied, idle = None, None, False
        poller = zmq.Poller()
        poller.register(shell, zmq.POLLIN)
        poller.register(iopub, zmq.POLLIN)
        while replied is None or not idle:
            left = deadline - time.monotonic()
            if left <= 0:
                self._interrupt(msg_id)
                raise _channel_error(
                    f"the notebook did not answer within {timeout:g} s (its kernel was interrupted)"
                )
            ready = dict(poller.poll(int(1000 * min(left, _POLL))))
            if not ready:
                self._check_alive()
                continue
            if iopub in ready:
                message = self._recv(iopub)
                if _parent(message) == msg_id:
                    kind = message["header"].get("msg_type")
                    if kind == "display_data" and reply is None:
                        data = message["content"].get("data", {})
                        if MIME in data:
                            reply = self._accept(data[MIME])
                    elif kind == "status" and message["content"].get("execution_state") == "idle":
                        idle = True
            if shell in ready:
                message = self._recv(shell)
                if _parent(message) == msg_id and message["header"].get("msg_type") == (
                    "execute_reply"
                ):
                    replied = message["content"]
        if reply is None:
            if replied.get("status") == "error":
                raise _channel_error(
                    "the notebook's kernel could not answer "
                    f"({replied.get('ename')}: {str(replied.get('evalue'))[:200]})"
                )
            raise _channel_error("the notebook's kernel answered with what is not a reply")
        return reply

    def _accept(self, value):
        if not isinstance(value, str):
            raise _channel_error(
                f"the notebook's answer is a {_wire.type_name(value)}, not the text of a value"
            )
        if len(value) > self._max_bytes:
            raise _channel_error(
                f"the notebook's answer is {len(value)} characters long, more than the "
                f"{self._max_bytes} a reply may have"
            )
        return value

    # -- plumbing
    def _connect(self):
        if self._sockets is not None:
            return self._sockets
        import zmq
        from jupyter_client.session import Session

        info = self._info
        session = Session(
            key=str(info.get("key", "")).encode(),
            signature_scheme=info.get("signature_scheme", "hmac-sha256"),
            username="checker",
        )
        context = zmq.Context()
        # Enough for the longest reply accepted, escaped in a message: a bigger one
        # drops the connection instead of filling the checker's memory.
        limit = 3 * self._max_bytes + 2**20
        sockets = []
        for channel, kind in (("shell", zmq.DEALER), ("iopub", zmq.SUB), ("control", zmq.DEALER)):
            socket = context.socket(kind)
            socket.setsockopt(zmq.LINGER, 0)
            socket.setsockopt(zmq.MAXMSGSIZE, limit)
            if kind == zmq.SUB:
                socket.setsockopt(zmq.SUBSCRIBE, b"")
            socket.connect(_url(info, channel))
            sockets.append(socket)
        self._context = context
        self._sockets = (session, *sockets)
        self._wait_ready()
        return self._sockets

    def _wait_ready(self):
        """Until IOPub delivers (a SUB socket misses what comes before it joins)."""
        import zmq

        session, shell, iopub, _ = self._sockets
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            msg_id = self._send(shell, "kernel_info_request", {})
            until = time.monotonic() + 1.0
            while time.monotonic() < until:
                if iopub.poll(100, zmq.POLLIN):
                    message = self._recv(iopub)
                    if _parent(message) == msg_id:
                        self._drain(shell)
                        return
                elif shell.poll(0, zmq.POLLIN):
                    self._recv(shell)
            self._check_alive()
        self._sockets = None
        raise _channel_error(f"the notebook's kernel did not answer within {READY_TIMEOUT:g} s")

    def _drain(self, socket):
        import zmq

        while socket.poll(200, zmq.POLLIN):
            self._recv(socket)

    def _send(self, socket, msg_type, content, log=None):
        session = self._sockets[0]
        message = session.send(socket, msg_type, content)
        if log is not None:
            self._log(log)
        return message["header"]["msg_id"]

    def _recv(self, socket):
        import zmq

        session = self._sockets[0]
        try:
            _, message = session.recv(socket, mode=zmq.NOBLOCK, content=True)
        except Exception as error:  # a forged or broken message: not a reply
            raise _channel_error(
                f"the notebook's kernel sent a message that is not one ({type(error).__name__})"
            ) from None
        return message or {"header": {}, "parent_header": {}, "content": {}}

    def _interrupt(self, msg_id, wait=True):
        """Interrupt the student's kernel; wait a little for the request to end."""
        import zmq

        session, shell, _, control = self._sockets
        session.send(control, "interrupt_request", {})
        if not wait:
            return
        deadline = time.monotonic() + INTERRUPT_GRACE
        while time.monotonic() < deadline:
            if shell.poll(100, zmq.POLLIN):
                message = self._recv(shell)
                if _parent(message) == msg_id:
                    return

    def _check_alive(self):
        import psutil

        status = self._spec.get("status_file")
        if status:
            with contextlib.suppress(OSError):
                raise _channel_error(Path(status).read_text().strip()[:300])
        try:
            kernel = psutil.Process(self._kernel_pid)
            create_time = self._spec.get("create_time")
            gone = kernel.status() == psutil.STATUS_ZOMBIE or (
                create_time is not None and abs(kernel.create_time() - create_time) > 0.01
            )
        except psutil.Error:
            gone = True
        if gone:
            raise _channel_error("the notebook's kernel is not running any more (it died)")

    def _log(self, code):
        if self._spec.get("sent_log"):
            log_sent(self._spec["sent_log"], code, "checker")

    def close(self):
        """Close the sockets (a checker kernel's exit does it too)."""
        if self._sockets is not None:
            self._context.destroy(linger=0)
            self._sockets = None


def _parent(message):
    return (message.get("parent_header") or {}).get("msg_id")


def _wire_timeout(timeout):
    if timeout is None:
        from course_lib.checking import DEFAULT_TIMEOUT

        return DEFAULT_TIMEOUT
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ValueError(f"timeout == {timeout!r}, must be a positive number of seconds.")
    return float(timeout)


def log_sent(path, code, sender):
    """Append one message sent to the student's kernel to the sent-log at ``path``."""
    with open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps({"from": sender, "code": code}) + "\n")
