"""The handle every test cell uses: the student's work, as data, and one-line verdicts.

A test cell never touches the student's objects directly. It asks
:data:`student` for values and calls, by name::

    from course_lib.checking import check, student

    with check("busy_seconds"):
        busy = student.call("busy_seconds", student.ref("balanced"))
        assert isinstance(busy, dict), "busy_seconds should return a dict."

What comes back is data only (:mod:`course_lib._wire`): numbers, strings,
containers, NumPy arrays, sparse matrices, dates, scikit-learn estimators
rebuilt from their parameters and fitted arrays. Never the student's own
objects.

The same cell runs in two places:

* **in the student's notebook** (on-the-spot feedback), the handle works in
  the notebook's own namespace: a value is encoded and decoded exactly as it
  would be when graded, so a check passes here iff it passes in grading;
* **when graded**, test cells run in a *checker* kernel apart from the
  student's, and the handle sends each request to the student's kernel over
  a channel that carries data only (:mod:`course_lib.grading.channel`; the
  environment variable :data:`CHANNEL_VAR` names it). The student's kernel
  never sees a test's source, an expected value or a quiz key.

:func:`check` turns a test's failure into one line, with no traceback, and a
pass into one line too. :func:`check_quiz` is the graded twin of a pop quiz.

Examples
--------
>>> answer_copies = 60      # a notebook cell of the student's
>>> import __main__; __main__.answer_copies = answer_copies
>>> with check("copies"):
...     assert student.value("answer_copies") == 60, "count again"
✔ copies: passed
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import traceback

from course_lib import _wire

__all__ = [
    "CHANNEL_VAR",
    "CheckFailed",
    "Ref",
    "StudentError",
    "check",
    "check_quiz",
    "serve",
    "student",
]

#: In a checker kernel: how to reach the student's kernel (read by
#: :mod:`course_lib.grading.channel`). Unset in a student's notebook.
CHANNEL_VAR = "COURSE_STUDENT_CHANNEL"
#: Seconds one request may take before the test that made it fails.
DEFAULT_TIMEOUT = 120.0


class StudentError(AssertionError):
    """What a test cell gets when the student's side cannot answer.

    Its ``kind`` says why: ``"missing"`` (no such name), ``"raised"`` (the
    student's code raised), ``"notdata"`` (the value is not data),
    ``"channel"`` (the student's kernel did not answer, died, or replied with
    something that is not a value). A subclass of ``AssertionError``: it fails
    the test that made the request, and only that test.
    """

    def __init__(self, message, kind="raised"):
        super().__init__(message)
        self.kind = kind


class CheckFailed(AssertionError):
    """A failed check, shown as one line (IPython's ``_render_traceback_``)."""

    def __init__(self, label, message):
        super().__init__(f"{label}: {message}")
        self.label = label
        self.message = message

    def _render_traceback_(self):
        return [f"\u2718 {self.label}: {self.message}"]


@contextlib.contextmanager
def check(label):
    """Run a test's assertions; print one line, passing or failing.

    Parameters
    ----------
    label : str
        What is checked, as the student knows it (an exercise's function).

    Raises
    ------
    CheckFailed
        When an assertion (or anything else) fails in the block: one line
        saying what to do, no traceback. The cell still fails, for grading and
        for Run All (the cell is tagged ``raises-exception``).

    Examples
    --------
    >>> with check("two"):
    ...     assert 1 + 1 == 2
    ✔ two: passed
    """
    if not isinstance(label, str) or not label.strip():
        raise ValueError(f"label == {label!r}, must be a non-empty str.")
    try:
        yield
    except AssertionError as error:
        message = " ".join(str(error).split()) or "a check of this exercise failed"
        raise CheckFailed(label, message) from None
    except Exception as error:  # the test itself broke on what it was given
        raise CheckFailed(label, " ".join(f"{type(error).__name__}: {error}".split())) from None
    print(f"\u2714 {label}: passed")


def check_quiz(name, question, label=None):
    """The graded check of a pop quiz: the answer in ``name`` against the key.

    In a checker kernel the key never leaves it; in the student's notebook
    this is the same check as :func:`course_lib.quiz.check`, without the hint.

    Parameters
    ----------
    name : str
        The variable of the quiz cell, e.g. ``"answer_views"``.
    question : str
        The quiz id in ``quiz_data.json``, e.g. ``"l2-views"``.
    label : str, optional
        The line's label; default ``"quiz <question>"``.
    """
    from course_lib import quiz

    with check(label or f"quiz {question}"):
        answer = student.value(name)
        assert answer is not ..., (
            f"replace ... with your answer in the quiz cell above ({name} = ...), and run it."
        )
        assert quiz.is_correct(answer, question), (
            "not the right answer yet: run the quiz cell above for a hint."
        )


# -- references: names in the student's namespace --------------------------------


class Ref:
    """A name in the student's namespace, or something kept there for a test.

    Made by :meth:`Student.ref`, :meth:`Student.lib`, :meth:`Student.probe`,
    or returned by :meth:`Student.keep`. ``ref.attr("get")`` is the
    attribute ``get`` of what ``ref`` names. A reference crosses as its name,
    never as the object.
    """

    def __init__(self, node):
        self._node = node

    def attr(self, *names):
        """The reference to an attribute (or a chain of them) of this one."""
        for name in names:
            _check_identifier(name, "attribute")
        node = dict(self._node)
        node["attrs"] = [*node.get("attrs", []), *names]
        return Ref(node)

    def __repr__(self):
        node = self._node
        base = {"ref": node.get("path"), "lib": node.get("path"), "kept": f"#{node.get('id')}"}
        text = base.get(node["$"].removeprefix("@"), "?")
        return f"<Ref {'.'.join([str(text), *node.get('attrs', [])])}>"


def _check_identifier(name, what):
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"{what} name == {name!r}, must be a Python identifier.")


def _check_path(path):
    if not isinstance(path, str) or not all(part.isidentifier() for part in path.split(".")):
        raise ValueError(f"path == {path!r}, must be a dotted name such as 'client.ids'.")
    return path


def _target_node(target):
    if isinstance(target, Ref):
        return target._node
    return {"$": "@ref", "path": _check_path(target)}


def _request_extra(value):
    """How a request names references (the student's side resolves them)."""
    if isinstance(value, Ref):
        return value._node
    return None


class Student:
    """The student's work, reached by name; data comes back.

    One instance, :data:`student`, serves every test cell. Where it sends
    its requests is chosen once, on first use: the student's kernel through
    the channel when :data:`CHANNEL_VAR` is set (grading), this process's
    ``__main__`` namespace otherwise (the student's notebook).
    """

    def __init__(self):
        self.timeout = DEFAULT_TIMEOUT
        self._backend = None

    # -- references
    def ref(self, path):
        """A reference to ``path`` (``"lview"``, ``"client.ids"``) in the student's namespace."""
        return Ref({"$": "@ref", "path": _check_path(path)})

    def lib(self, path, **kwargs):
        """A reference to an importable function (``"course_lib.cluster.engine_pids"``).

        With ``kwargs`` (data), the student's side binds them with
        :func:`functools.partial`: a function with parameters drawn by the test.
        """
        module, _, name = _check_path(path).rpartition(".")
        if not module:
            raise ValueError(f"path == {path!r}, must name a module and a function in it.")
        return Ref({"$": "@lib", "path": path, "kwargs": _wire._encode(kwargs, 0, None)})

    def probe(self, name, **kwargs):
        """A reference to :mod:`course_lib.probes` ``.name``: what tests run on engines."""
        _check_identifier(name, "probe")
        return self.lib(f"course_lib.probes.{name}", **kwargs)

    # -- requests
    def value(self, target):
        """The value of ``target`` (a path or a :class:`Ref`), as data."""
        return self._request({"op": "value", "target": _target_node(target)})

    def exists(self, path):
        """Whether ``path`` names something in the student's namespace."""
        return self._request({"op": "exists", "target": _target_node(path)})

    def call(self, target, *args, **kwargs):
        """``target(*args, **kwargs)`` on the student's side; the result as data.

        ``args`` and ``kwargs`` are data or :class:`Ref`\\ s.
        """
        return self._request(self._call(target, args, kwargs, keep=False))

    def keep(self, target, *args, **kwargs):
        """Like :meth:`call`, but the result stays on the student's side: a :class:`Ref`."""
        return Ref(self._request(self._call(target, args, kwargs, keep=True)))

    def type_of(self, target):
        """``module.qualname`` of the type of ``target``'s value (a string)."""
        return self._request({"op": "type", "target": _target_node(target)})

    # -- facts the checker can read itself
    def processes(self):
        """Processes the student's kernel started, alive now: ``[{pid, name, cmdline}]``.

        When graded, read from outside the student's kernel (its process tree).
        """
        return self._get_backend().processes()

    @property
    def folder(self):
        """The folder of the student's notebook (read-only when graded)."""
        return self._get_backend().folder()

    # -- plumbing
    def _call(self, target, args, kwargs, keep):
        for name in kwargs:
            _check_identifier(name, "keyword")
        return {
            "op": "call",
            "target": _target_node(target),
            "args": [_wire._encode(a, 0, _request_extra) for a in args],
            "kwargs": {k: _wire._encode(v, 0, _request_extra) for k, v in kwargs.items()},
            "keep": keep,
        }

    def _get_backend(self):
        if self._backend is None:
            if os.environ.get(CHANNEL_VAR):
                from course_lib.grading.channel import KernelBackend

                self._backend = KernelBackend(os.environ[CHANNEL_VAR])
            else:
                self._backend = InProcess()
        return self._backend

    def _request(self, request):
        import json

        text = json.dumps(request, separators=(",", ":"))
        reply_text = self._get_backend().request(text, timeout=self.timeout)
        try:
            reply = _wire.decode(reply_text)
        except _wire.DataError as error:
            raise StudentError(f"the notebook's answer is not data: {error}", "channel") from None
        if not isinstance(reply, dict) or "ok" not in reply:
            raise StudentError("the notebook's answer is not a reply", "channel")
        if reply["ok"] is not True:
            raise StudentError(str(reply.get("message")), str(reply.get("kind")))
        if request["op"] == "call" and request["keep"]:
            return {"$": "@kept", "id": int(reply["value"])}
        return reply.get("value")


class InProcess:
    """Requests served in this process: the student's notebook itself."""

    def request(self, text, timeout=None):
        return serve(text)

    def processes(self):
        import psutil

        found = []
        for child in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if child.status() == psutil.STATUS_ZOMBIE:
                    continue  # exited, not yet reaped: not running
                found.append({"pid": child.pid, "name": child.name(), "cmdline": child.cmdline()})
        return found

    def folder(self):
        from pathlib import Path

        return Path.cwd()


#: The one handle of every test cell.
student = Student()


# -- the student's side: answering a request ----------------------------------

#: Results kept for a test (:meth:`Student.keep`), by number.
_KEPT = {}


def _namespace():
    with contextlib.suppress(Exception):
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            return shell.user_ns
    return vars(sys.modules["__main__"])


class _Missing(Exception):
    pass


def _resolve(node):
    kind = node.get("$")
    if kind == "@ref":
        first, *rest = str(node["path"]).split(".")
        namespace = _namespace()
        if first not in namespace:
            raise _Missing(f"{first} is not defined: run the cell that defines it")
        value = namespace[first]
        attrs = rest
    elif kind == "@lib":
        module_name, _, name = str(node["path"]).rpartition(".")
        value = getattr(importlib.import_module(module_name), name)
        kwargs = _wire.decode(_json(node["kwargs"]))
        if kwargs:
            import functools

            value = functools.partial(value, **kwargs)
        attrs = []
    elif kind == "@kept":
        value = _KEPT[int(node["id"])]
        attrs = []
    else:
        return NotImplemented
    for attr in [*attrs, *node.get("attrs", [])]:
        value = getattr(value, attr)
    return value


def _json(tree):
    import json

    return json.dumps(tree)


def _decode_argument(tree):
    return _wire.decode(_json(tree), extra=_resolve)


def _reply(ok, value=None, kind=None, message=None):
    if ok:
        return _wire.encode({"ok": True, "value": value})
    return _wire.encode({"ok": False, "kind": kind, "message": message})


def serve(text):
    """Answer one request of a test (JSON text); return the reply's text.

    Runs in the student's process: it resolves names there, calls, and
    encodes the result with :func:`course_lib._wire.encode`. It never runs
    code sent with the request: a request holds names and data only.
    """
    import json

    try:
        request = json.loads(text)
        op = request["op"]
        target = request["target"]
    except (ValueError, KeyError, TypeError) as error:
        return _reply(False, kind="channel", message=f"a malformed request ({error!r})")
    label = _label(target)
    try:
        if op == "exists":
            try:
                _resolve(target)
            except (_Missing, AttributeError, LookupError, ImportError):
                return _reply(True, False)
            return _reply(True, True)
        value = _resolve(target)
        if op == "type":
            return _reply(True, _wire.type_name(value))
        if op == "call":
            args = [_decode_argument(a) for a in request.get("args", [])]
            kwargs = {k: _decode_argument(v) for k, v in request.get("kwargs", {}).items()}
            label = f"{label}(...)"
            value = value(*args, **kwargs)
            if request.get("keep"):
                number = len(_KEPT) + 1
                _KEPT[number] = value
                return _reply(True, number)
        elif op != "value":
            return _reply(False, kind="channel", message=f"unknown request {op!r}")
        try:
            return _reply(True, value)
        except _wire.NotData as error:
            return _reply(False, kind="notdata", message=f"{label} gave {error}")
    except _Missing as error:
        return _reply(False, kind="missing", message=str(error))
    except BaseException as error:  # the student's code raised: say so, in one line
        if isinstance(error, KeyboardInterrupt | SystemExit):
            raise
        where = traceback.extract_tb(error.__traceback__)[-1:]
        line = f" (line {where[0].lineno})" if where else ""
        return _reply(
            False,
            kind="raised",
            message=f"{label} raised {type(error).__name__}: {error}{line}",
        )


def _label(target):
    kind = target.get("$") if isinstance(target, dict) else None
    if kind in ("@ref", "@lib"):
        base = str(target.get("path"))
    elif kind == "@kept":
        base = "the result kept for this test"
    else:
        base = "?"
    return ".".join([base, *map(str, target.get("attrs", []))]) if kind else base
