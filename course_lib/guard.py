"""Check, before every cell of a graded notebook, that the rules are still the course's.

:mod:`course_lib.tamper` reads the submitted code; what it cannot see (code
run from a string, an attribute set with a computed name) shows at run time.
Grading loads this module into the graded kernel as an IPython extension,
before any of the student's code runs. It takes a snapshot of what the tests
rely on (the quiz checker, the comparison functions of NumPy and ``math``,
the builtins tests call, the IPython hooks, the tracing state) and, before
every cell, compares the kernel with it. Each cell leaves one signed line in
a record file that the grader reads back with :func:`read_record`: a
mismatch becomes a reason for a person to look at the submission, and a
record that stops (the check was removed) or was forged is a reason too.

The extension does nothing unless grading left a file holding the signing
secret for it (deleted as soon as it is read): see
:func:`load_ipython_extension`.

Examples
--------
>>> import json
>>> from course_lib.guard import sign
>>> line = sign("s3cret", {"cell": 3, "problems": []})
>>> json.loads(line)["entry"]
{'cell': 3, 'problems': []}
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import importlib
import json
import os
import sys
import threading

__all__ = ["Guard", "cell_digest", "guard_files", "load_ipython_extension", "read_record", "sign"]

RECORD_VARIABLE = "COURSE_GUARD_RECORD"
SECRET_VARIABLE = "COURSE_GUARD_SECRET"

#: What the course's tests call, by dotted name: each must stay the object it
#: was when the kernel started (and, for Python functions, keep its code).
WATCHED = (
    "course_lib.quiz.is_correct",
    "course_lib.quiz.check",
    "course_lib.quiz.key",
    "course_lib.quiz.normalize",
    "numpy.array_equal",
    "numpy.allclose",
    "numpy.isclose",
    "numpy.asarray",
    "numpy.testing.assert_allclose",
    "numpy.testing.assert_array_equal",
    "numpy.testing.assert_equal",
    "math.isclose",
    # the graded quiz twins run a fresh copy of course_lib.quiz through these
    "runpy.run_path",
    "importlib.util.find_spec",
    "hashlib.sha256",
    *(
        f"builtins.{name}"
        for name in (
            "abs all any bool dict float getattr hasattr int isinstance issubclass len list "
            "max min print range repr round set sorted str sum tuple type zip AssertionError"
        ).split()
    ),
)
# Methods of the IPython shell through which code changes how cells run.
_SHELL_METHODS = (
    "run_cell",
    "run_cell_async",
    "run_ast_nodes",
    "run_code",
    "transform_cell",
    "transform_ast",
    "showtraceback",
    "_showtraceback",
    "showsyntaxerror",
    "set_custom_exc",
)
_SHELL_LISTS = ("ast_transformers", "input_transformers_cleanup", "input_transformers_post")
# Packages whose hooks are part of a normal session (%matplotlib inline, %px).
_TRUSTED = (
    "IPython",
    "ipykernel",
    "matplotlib",
    "matplotlib_inline",
    "ipyparallel",
    "ipywidgets",
    "course_lib.guard",
)
_AGREEING = ("__eq__", "__ne__", "__hash__", "__getitem__", "__contains__", "get", "__bool__")


def _resolve(dotted):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _fingerprint(obj):
    obj = getattr(obj, "__func__", obj)  # a bound method is made anew at each access
    code = getattr(obj, "__code__", None)
    return (id(obj), id(code), repr(getattr(obj, "__defaults__", None)))


def _mac(secret, entry):
    body = json.dumps(entry, sort_keys=True)
    return hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()


def cell_digest(source):
    """How the record names a cell: a digest of its source."""
    return hashlib.sha256(source.strip().encode()).hexdigest()[:16]


def sign(secret, entry):
    """One line of the record: ``entry`` and its HMAC under ``secret``."""
    return json.dumps({"entry": entry, "mac": _mac(secret, entry)})


def _foreign(items):
    """Hooks in ``items`` that neither the course's libraries nor IPython installed."""
    found = []
    for item in items:
        module = getattr(item, "__module__", None) or type(item).__module__ or ""
        if not module.startswith(_TRUSTED):
            found.append(getattr(item, "__qualname__", type(item).__qualname__))
    return found


class Guard:
    """The snapshot of a kernel at start, and the check against it.

    Parameters
    ----------
    shell : IPython.core.interactiveshell.InteractiveShell
        The kernel's shell.
    record : str or path-like, optional
        File that receives one signed line per checked cell.
    secret : str, default=""
        The signing secret.
    """

    def __init__(self, shell, record=None, secret=""):
        self.shell = shell
        self.secret = secret
        self.seen = set()
        # Bound now: the student's code cannot swap what writing uses.
        self._open, self._write, self._close = os.open, os.write, os.close
        self._flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        self.record = None if record is None else os.fspath(record)
        self.watched = {}
        for dotted in WATCHED:
            try:
                self.watched[dotted] = _fingerprint(_resolve(dotted))
            except (ImportError, AttributeError):
                continue
        self.modules = {
            name: id(sys.modules.get(name)) for name in {d.rpartition(".")[0] for d in self.watched}
        }
        self.methods = {name: _fingerprint(getattr(shell, name, None)) for name in _SHELL_METHODS}
        self.trace = (sys.gettrace(), sys.getprofile(), self._thread_hooks())
        self.excepthook = id(sys.excepthook)
        self.custom = (
            getattr(shell, "custom_exceptions", ()),
            id(getattr(shell, "CustomTB", None)),
        )
        shell.events.register("pre_run_cell", self.before_cell)

    @staticmethod
    def _thread_hooks():
        return (getattr(threading, "_trace_hook", None), getattr(threading, "_profile_hook", None))

    def problems(self):
        """What differs from the snapshot, as readable reasons (empty: nothing)."""
        found = []
        for dotted, fingerprint in self.watched.items():
            try:
                now = _fingerprint(_resolve(dotted))
            except (ImportError, AttributeError):
                found.append(f"{dotted} was deleted")
                continue
            if now != fingerprint:
                found.append(f"{dotted} was replaced")
        for name, module_id in self.modules.items():
            if id(sys.modules.get(name)) != module_id:
                found.append(f"sys.modules[{name!r}] was replaced")
        user_ns = getattr(self.shell, "user_ns", {})
        for dotted in self.watched:
            module, _, name = dotted.rpartition(".")
            if module == "builtins" and name in user_ns:
                if user_ns[name] is not getattr(builtins, name, None):
                    found.append(f"the notebook's {name} hides the builtin")
        for name, fingerprint in self.methods.items():
            if _fingerprint(getattr(self.shell, name, None)) != fingerprint:
                found.append(f"the IPython shell's {name} was replaced")
        for name in _SHELL_LISTS:
            for hook in _foreign(getattr(self.shell, name, [])):
                found.append(f"{hook} was added to the IPython shell's {name} (an IPython hook)")
        for name, callbacks in self.shell.events.callbacks.items():
            for hook in _foreign(callbacks):
                found.append(f"{hook} was registered for IPython's {name} event (an IPython hook)")
        custom = (
            getattr(self.shell, "custom_exceptions", ()),
            id(getattr(self.shell, "CustomTB", None)),
        )
        if custom != self.custom:
            found.append("a custom exception handler was installed (set_custom_exc)")
        if sys.gettrace() is not self.trace[0] or sys.getprofile() is not self.trace[1]:
            found.append("a trace or profile function is set (sys.settrace/setprofile)")
        if self._thread_hooks() != self.trace[2]:
            found.append("a thread trace or profile function is set")
        if id(sys.excepthook) != self.excepthook:
            found.append("sys.excepthook was replaced")
        for name, value in list(user_ns.items()):
            if name.startswith("answer") and type(value).__module__ == "__main__":
                overridden = [m for m in _AGREEING if vars(type(value)).get(m) is not None]
                if overridden:
                    found.append(
                        f"{name} is an object of the notebook's own class "
                        f"{type(value).__name__}, which overrides {', '.join(overridden)}"
                    )
        return found

    def before_cell(self, info=None):
        """The ``pre_run_cell`` callback: check, then sign one line of the record."""
        problems = self.problems()
        new = [p for p in problems if p not in self.seen]
        self.seen.update(new)
        if self.record is None:
            return
        entry = {"cell": cell_digest(getattr(info, "raw_cell", "")), "problems": new}
        fd = self._open(self.record, self._flags, 0o600)
        try:
            self._write(fd, (sign(self.secret, entry) + "\n").encode())
        finally:
            self._close(fd)


def guard_files(folder):
    """``(record, secret file)`` that grading puts in the kernel's runtime ``folder``."""
    return (os.path.join(folder, "course-guard.jsonl"), os.path.join(folder, "course-guard.secret"))


def load_ipython_extension(shell):
    """Start the guard in a graded kernel (``--InteractiveShellApp.extensions``).

    The record and the secret are named by ``COURSE_GUARD_RECORD`` and
    ``COURSE_GUARD_SECRET``, else they are :func:`guard_files` of
    ``JUPYTER_RUNTIME_DIR``; without a secret file the guard does nothing.
    """
    record = os.environ.pop(RECORD_VARIABLE, None)
    secret_file = os.environ.pop(SECRET_VARIABLE, None)
    if not (record and secret_file) and os.environ.get("JUPYTER_RUNTIME_DIR"):
        record, secret_file = guard_files(os.environ["JUPYTER_RUNTIME_DIR"])
    if not record or not secret_file or not os.path.isfile(secret_file):
        return
    with open(secret_file, encoding="utf-8") as file:
        secret = file.read().strip()
    os.remove(secret_file)
    shell._course_guard = Guard(shell, record=record, secret=secret)


def read_record(path, secret, cells, required=None):
    """Reasons to flag a graded notebook, from the guard's record.

    Parameters
    ----------
    path : str or path-like
        The record file the guard wrote.
    secret : str
        The secret it signed with.
    cells : dict
        ``{cell label: source}`` of the cells that ran, to name them.
    required : iterable of str, optional
        Labels of the cells that must have a signed line (the graded test
        cells); default: every cell of ``cells``.

    Returns
    -------
    list of str
        ``"before cell <label>, at run time: <problem>"`` for each problem,
        plus a reason when a line is forged or a test cell was not checked.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "record.jsonl"
    >>> entry = {"cell": cell_digest("assert ok"), "problems": ["math.isclose was replaced"]}
    >>> _ = path.write_text(sign("k", entry))
    >>> read_record(path, "k", {"test-x": "assert ok"})
    ['before cell test-x, at run time: math.isclose was replaced']
    >>> read_record(path, "other", {"test-x": "assert ok"})[0]
    'the record of the run-time check was tampered with (line 1 is not signed by grading)'
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            lines = file.read().splitlines()
    except FileNotFoundError:
        lines = []
    required = set(cells) if required is None else set(required)
    if required and not lines:
        return ["the run-time check left no record: it was removed or never ran"]
    labels = {cell_digest(source): label for label, source in cells.items()}
    reasons, checked, forged = [], set(), False
    for number, line in enumerate(lines, start=1):
        try:
            data = json.loads(line)
            entry = data["entry"]
            good = hmac.compare_digest(_mac(secret, entry), str(data["mac"]))
        except (ValueError, KeyError, TypeError):
            good = False
        if not good:
            if not forged:
                reasons.append(
                    f"the record of the run-time check was tampered with "
                    f"(line {number} is not signed by grading)"
                )
            forged = True
            continue
        checked.add(entry["cell"])
        label = labels.get(entry["cell"], "(unknown)")
        reasons += [f"before cell {label}, at run time: {p}" for p in entry["problems"]]
    if not forged:
        missing = [
            label for digest, label in labels.items() if label in required and digest not in checked
        ]
        if missing:
            reasons.append(
                f"the run-time check was removed: cell(s) {', '.join(missing)} ran unchecked"
            )
    return reasons
