"""Find submitted code that changes the rules of grading, by reading it.

A graded test cell runs in the student's own kernel, after the student's
cells. Those cells can therefore change what a test relies on: replace the
quiz checker or a library function, install an IPython hook that rewrites
later cells, trace or reach into the test's frames, or answer with objects
that compare equal to anything. None of that is needed to solve an exercise,
so grading flags such a submission for a person to look at, with a reason
that says which cell did what.

:func:`scan_source` reads one cell; :func:`scan_notebook` reads every cell
the student could edit (cells identical to the release are the course's own
code and are skipped). Both parse the code, with IPython's magics turned into
Python first, and never run it. What parsing cannot see (``exec`` of a
string, ``getattr`` with a computed name) is left to the run-time check of
:mod:`course_lib.guard`.

Examples
--------
>>> from course_lib.tamper import scan_source
>>> scan_source("from course_lib import quiz\\nquiz.is_correct = lambda *a: True",
...             cell="ex-evaluate")
['cell ex-evaluate replaces course_lib.quiz.is_correct']
>>> scan_source("view.retries = 1\\nplt.rcParams['figure.dpi'] = 90")
[]
"""

from __future__ import annotations

import ast
import builtins
import concurrent.futures

from course_lib.guard import _SHELL_LISTS, _SHELL_METHODS

__all__ = ["scan_notebook", "scan_source", "student_cells"]

_SHELL = "the IPython shell"
# Attributes of the IPython shell through which code changes how later cells
# (the tests included) run or report their errors.
_SHELL_HOOKS = {
    *_SHELL_METHODS,
    *_SHELL_LISTS,
    "input_transformer_manager",
    "events",
    "custom_exceptions",
    "set_hook",
    "compile",
    "displayhook",
    "display_pub",
    "excepthook",
}
# Functions that trace the interpreter or reach into other code's frames.
_REACH = {
    "sys.settrace": "traces the interpreter with sys.settrace",
    "sys.setprofile": "profiles the interpreter with sys.setprofile",
    "threading.settrace": "traces threads with threading.settrace",
    "threading.setprofile": "profiles threads with threading.setprofile",
    "threading.settrace_all_threads": "traces threads with threading.settrace_all_threads",
    "sys.monitoring": "watches the interpreter with sys.monitoring",
    "sys.addaudithook": "installs an audit hook with sys.addaudithook",
    "sys._getframe": "reaches into other frames with sys._getframe",
    "sys._current_frames": "reaches into other frames with sys._current_frames",
    "inspect.currentframe": "reaches into other frames with inspect.currentframe",
    "inspect.stack": "reaches into other frames with inspect.stack",
    "gc.get_referrers": "reaches other code's objects with gc.get_referrers",
    "gc.get_referents": "reaches other code's objects with gc.get_referents",
    "gc.get_objects": "reaches other code's objects with gc.get_objects",
}
# Low-level access to the interpreter's memory.
_LOW_LEVEL = ("ctypes", "_ctypes", "cffi")
# Attributes of frames, tracebacks and functions that lead into other code.
_FRAME_ATTRS = {"f_back", "f_globals", "f_locals", "tb_frame", "gi_frame", "cr_frame"}
_CODE_ATTRS = {"__code__", "__globals__", "__defaults__", "__kwdefaults__", "__class__"}
# Methods whose override lets an answer agree with whatever a test compares it to.
_AGREEING = {
    "__eq__",
    "__ne__",
    "__lt__",
    "__le__",
    "__gt__",
    "__ge__",
    "__hash__",
    "__bool__",
    "__getitem__",
    "__contains__",
    "__len__",
    "__iter__",
    "__instancecheck__",
    "__subclasscheck__",
    "__array_ufunc__",
    "__array_function__",
    "get",
    "keys",
    "values",
    "items",
}
# Quiz functions whose use in a loop searches the answers, and what reads keys.
_QUIZ = "course_lib.quiz"
_QUIZ_CHECKERS = {f"{_QUIZ}.is_correct", f"{_QUIZ}.check"}
_QUIZ_KEYS = {
    f"{_QUIZ}.{name}"
    for name in (
        "key",
        "normalize",
        "_unseal",
        "DATA_FILE",
        "_load_quizzes",
        "_resolve",
        "_matches",
    )
}
# The file that holds the quizzes' keys: naming it in a string is reading the keys.
_QUIZ_DATA = "quiz_data.json"
# Configuration objects of libraries, meant to be set by their users.
_SETTINGS = ("matplotlib.rcParams", "matplotlib.pyplot.rcParams", "pandas.options", "numpy.random")
_MUTATORS = {"pop", "popitem", "update", "setdefault", "clear", "__setitem__", "__delitem__"}
_BUILTINS = frozenset(dir(builtins))
# Builtins the course's tests call: a notebook-wide replacement changes them.
_TESTED_BUILTINS = frozenset(
    "abs all any bool dict float getattr hasattr int isinstance issubclass len list max min "
    "print range repr round set sorted str sum tuple type zip AssertionError".split()
)
_SETATTR = {
    "builtins.setattr": "replaces",
    "builtins.delattr": "deletes",
    "builtins.object.__setattr__": "replaces",
    "builtins.object.__delattr__": "deletes",
    "builtins.type.__setattr__": "replaces",
    "builtins.type.__delattr__": "deletes",
}


def _python_of(source):
    """The cell as plain Python: IPython magics and shell escapes become calls."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


class _Scanner(ast.NodeVisitor):
    """Walks one cell; ``origins`` maps names to what they were imported as."""

    def __init__(self, state):
        self.state = state
        self.origins = state.origins
        self.reasons = []
        self.loops = 0
        self.depth = 0  # functions entered
        self.function = None  # the outermost function being read
        self.made = []  # names of classes whose instances are given out as answers
        self.engine_functions = set()

    # -- what an expression refers to ----------------------------------------

    def origin(self, node):
        """Dotted name of the module, library object or builtin ``node`` is, or None."""
        if isinstance(node, ast.Name):
            if node.id in self.origins:
                return self.origins[node.id]
            if node.id == "get_ipython":
                return "IPython.get_ipython"
            return f"builtins.{node.id}" if node.id in _BUILTINS else None
        if isinstance(node, ast.Attribute):
            base = self.origin(node.value)
            if base == _SHELL:
                return f"{_SHELL}.{node.attr}"
            return f"{base}.{node.attr}" if base else None
        if isinstance(node, ast.Subscript):
            base = self.origin(node.value)
            key = node.slice
            if base == "sys.modules" and isinstance(key, ast.Constant):
                return str(key.value)
            return None
        if isinstance(node, ast.Call):
            func = self.origin(node.func)
            first = node.args[0] if node.args else None
            if func in ("IPython.get_ipython", "IPython.core.getipython.get_ipython"):
                return _SHELL
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                if func == "importlib.import_module":
                    return first.value
                if func == "builtins.__import__":  # the top package, without a fromlist
                    return first.value if len(node.args) > 3 else first.value.split(".")[0]
            if func == "builtins.vars" and first is not None:
                base = self.origin(first)
                return f"{base}.__dict__" if base else None
        return None

    def flag(self, reason):
        if reason not in self.reasons:
            self.reasons.append(reason)

    # -- names ---------------------------------------------------------------

    def visit_Import(self, node):
        for alias in node.names:
            self.low_level(alias.name)
            self.referred(alias.name)
            if alias.asname:
                self.origins[alias.asname] = alias.name
            else:
                top = alias.name.split(".")[0]
                self.origins[top] = top

    def visit_ImportFrom(self, node):
        module = node.module or ""
        self.low_level(module)
        for alias in node.names:
            if alias.name == "*":
                continue
            full = f"{module}.{alias.name}" if module else alias.name
            self.low_level(full)
            self.referred(full)
            self.origins[alias.asname or alias.name] = full
            if full in _REACH:
                self.flag(_REACH[full])

    def low_level(self, name):
        if name.split(".")[0] in _LOW_LEVEL:
            self.flag(f"uses {name.split('.')[0]} (raw access to the interpreter's memory)")

    def bind(self, target, value):
        """Record ``target = value``: an alias when value is imported, else forget."""
        if isinstance(target, ast.Name):
            found = self.origin(value) if value is not None else None
            if found:
                self.origins[target.id] = found
            else:
                self.origins.pop(target.id, None)
        elif isinstance(target, (ast.Tuple, ast.List)):
            values = value.elts if isinstance(value, (ast.Tuple, ast.List)) else []
            for i, element in enumerate(target.elts):
                self.bind(element, values[i] if len(values) == len(target.elts) else None)

    # -- changes -------------------------------------------------------------

    def changed(self, target, verb):
        """``target`` is written or deleted: flag it when it belongs to someone else."""
        if isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self.changed(element, verb)
            return
        if isinstance(target, ast.Starred):
            self.changed(target.value, verb)
            return
        if isinstance(target, ast.Attribute):
            if target.attr in _CODE_ATTRS:
                what = ast.unparse(target.value)
                self.flag(f"{verb} the {target.attr} of {what}")
                return
            owner = self.origin(target.value)
            if owner == _SHELL or (owner or "").startswith(f"{_SHELL}."):
                self.flag(f"{verb} {_SHELL}'s {target.attr} (an IPython hook)")
            elif owner and not owner.startswith(_SETTINGS):
                self.flag(f"{verb} {owner}.{target.attr}")
        elif isinstance(target, ast.Subscript):
            owner = self.origin(target.value)
            if owner == "sys.modules":
                self.flag("edits sys.modules")
            elif owner and owner.endswith(".__dict__"):
                self.flag(f"{verb} entries of {owner[: -len('.__dict__')]} through its __dict__")
            elif isinstance(target.value, ast.Attribute) and target.value.attr == "__dict__":
                base = self.origin(target.value.value)
                if base:
                    self.flag(f"{verb} entries of {base} through its __dict__")

    def shadowed(self, name, value=None):
        """A builtin that tests call, replaced in the notebook's namespace."""
        if self.depth or name not in _TESTED_BUILTINS:
            return
        if value is None or isinstance(value, (ast.Lambda, ast.Name, ast.Attribute)):
            self.flag(f"replaces the builtin {name} for every later cell")

    def visit_Assign(self, node):
        for target in node.targets:
            self.changed(target, "replaces")
            if isinstance(target, ast.Name):
                self.shadowed(target.id, node.value)
        self.generic_visit(node)
        for target in node.targets:
            self.bind(target, node.value)
        if not self.depth and any(self.tested(t) for t in node.targets):
            self.given_out(node.value)

    def visit_FunctionDef(self, node):
        self.shadowed(node.name)
        self.origins.pop(node.name, None)
        for decorator in node.decorator_list:
            self.visit(decorator)
        saved = dict(self.origins)
        arguments = node.args
        for arg in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]:
            self.origins.pop(arg.arg, None)
        for arg in (arguments.vararg, arguments.kwarg):
            if arg is not None:
                self.origins.pop(arg.arg, None)
        self.depth += 1
        outer, self.function = self.function, self.function or node.name
        for statement in node.body:
            self.visit(statement)
        self.depth -= 1
        self.function = outer
        self.origins.clear()
        self.origins.update(saved)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_AugAssign(self, node):
        self.changed(node.target, "replaces")
        self.generic_visit(node)

    def visit_AnnAssign(self, node):
        self.changed(node.target, "replaces")
        self.generic_visit(node)
        self.bind(node.target, node.value)

    def visit_Delete(self, node):
        for target in node.targets:
            self.changed(target, "deletes")
        self.generic_visit(node)

    def visit_NamedExpr(self, node):
        self.generic_visit(node)
        self.bind(node.target, node.value)

    # -- uses ----------------------------------------------------------------

    def visit_Attribute(self, node):
        if node.attr in _FRAME_ATTRS:
            self.flag(f"reaches into other frames through .{node.attr}")
        owner = self.origin(node.value)
        if owner == _SHELL and node.attr == "_course_guard":
            self.referred("course_lib.guard")
        if owner == _SHELL and node.attr in _SHELL_HOOKS and isinstance(node.ctx, ast.Load):
            self.flag(f"uses {_SHELL}'s {node.attr} (an IPython hook)")
        self.referred(self.origin(node))
        self.generic_visit(node)

    def visit_Name(self, node):
        if node.id in self.origins:
            self.referred(self.origins[node.id])

    def referred(self, name):
        if not name:
            return
        for prefix, reason in _REACH.items():
            if name == prefix or name.startswith(prefix + "."):
                self.flag(reason)
        if name == "course_lib.guard" or name.startswith("course_lib.guard."):
            self.flag("reaches into the grading's run-time check (course_lib.guard)")
        if name in _QUIZ_KEYS:
            self.flag(f"reads quiz keys with {name}")
        if self.loops and name in _QUIZ_CHECKERS:
            self.flag(f"searches quiz answers by calling {name} in a loop")
        if name.split(".")[0] in _LOW_LEVEL:
            self.low_level(name)

    def visit_Constant(self, node):
        if isinstance(node.value, str) and _QUIZ_DATA in node.value:
            self.flag(f"reads quiz keys from {_QUIZ_DATA}")

    def visit_Call(self, node):
        func = self.origin(node.func)
        first = node.args[0] if node.args else None
        if func in _SETATTR:
            verb = _SETATTR[func]
            owner = self.origin(first) if first is not None else None
            name = node.args[1] if len(node.args) > 1 else None
            attr = f".{name.value}" if isinstance(name, ast.Constant) else ""
            how = func.rsplit(".", 1)[-1]
            if owner == _SHELL:
                self.flag(f"{verb} {_SHELL}'s {attr.lstrip('.')} with {how} (an IPython hook)")
            elif owner and not owner.startswith(_SETTINGS):
                self.flag(f"{verb} {owner}{attr} with {how}")
        if isinstance(node.func, ast.Attribute) and node.func.attr in _MUTATORS:
            if self.origin(node.func.value) == "sys.modules":
                self.flag("edits sys.modules")
        if func == "builtins.exec" or func == "builtins.eval":
            if (
                first is not None
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
            ):
                self.nested(first.value)
        self.referred(self.origin(node))  # __import__("ctypes"), vars(module)
        self.engine_side(node)
        if func in ("builtins.map", "builtins.filter"):
            self.loop(node)
        else:
            self.generic_visit(node)

    def nested(self, source):
        """Read code passed as a constant string to exec/eval with the same eyes."""
        try:
            tree = ast.parse(source)
        except SyntaxError:
            return
        self.visit(tree)

    def engine_side(self, node):
        """Functions sent to engines (``view.apply(f)``) patch only the engines."""
        if isinstance(node.func, ast.Attribute) and node.func.attr.startswith(("apply", "map")):
            for arg in node.args[:1]:
                if isinstance(arg, ast.Name):
                    self.engine_functions.add(arg.id)

    # -- loops over answers --------------------------------------------------

    def loop(self, node):
        self.loops += 1
        self.generic_visit(node)
        self.loops -= 1

    visit_For = visit_AsyncFor = visit_While = loop
    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = loop

    # -- objects that agree with anything ------------------------------------

    def visit_ClassDef(self, node):
        methods = {
            item.name
            for item in node.body
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
        }
        methods |= {
            target.id
            for item in node.body
            if isinstance(item, ast.Assign)
            for target in item.targets
            if isinstance(target, ast.Name)
        }
        self.shadowed(node.name)
        overridden = sorted(methods & _AGREEING)
        if overridden:
            self.state.agreeing[node.name] = overridden
        else:
            self.state.agreeing.pop(node.name, None)
        self.origins.pop(node.name, None)
        self.generic_visit(node)

    def given_out(self, value):
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
            self.made.append(value.func.id)

    def tested(self, target):
        """Whether the tests read ``target`` (a name or a function's name)."""
        name = target.id if isinstance(target, ast.Name) else target
        return isinstance(name, str) and (self.state.tested is None or name in self.state.tested)

    def visit_Return(self, node):
        if self.tested(self.function):
            self.given_out(node.value)
        self.generic_visit(node)


def _engine_only(tree, functions):
    """Names of functions defined in ``tree`` that are only sent to engines."""
    called = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    return {name for name in functions if name not in called}


class _State:
    """What earlier cells of a notebook defined: imported names, student classes."""

    def __init__(self, tested=None):
        self.origins = {}
        self.agreeing = {}
        # Names the graded test cells read: answers are what they get. None: any name.
        self.tested = tested


def _parse(source):
    python = _python_of(source)
    try:
        try:
            return ast.parse(python)
        except SystemError:
            # CPython 3.11 compares its AST builder's recursion count with the calling
            # thread's, and was seen to get it wrong deep inside a parallel grading run
            # ("AST constructor recursion depth mismatch"): parse again on a fresh thread.
            with concurrent.futures.ThreadPoolExecutor(max_workers=1) as fresh:
                return fresh.submit(ast.parse, python).result()
    except (SyntaxError, ValueError):
        return None


def _scan(source, cell, state):
    tree = _parse(source)
    if tree is None:  # left to the kernel, which reports the error
        return []
    # Patches made by functions that only ever run on engines change those
    # engines, not the grading kernel (lesson 7 pretends engines are on other hosts).
    probe = _State(state.tested)
    probe.origins = dict(state.origins)
    first = _Scanner(probe)
    first.visit(tree)
    engine_only = _engine_only(tree, first.engine_functions)
    tree.body = [
        node
        for node in tree.body
        if not (isinstance(node, ast.FunctionDef) and node.name in engine_only)
    ]
    scanner = _Scanner(state)
    scanner.visit(tree)
    reasons = list(scanner.reasons)
    for name in dict.fromkeys(scanner.made):
        if name in state.agreeing:
            reasons.append(
                f"answers with an object of its own class {name}, which overrides "
                f"{', '.join(state.agreeing[name])}"
            )
    return [f"cell {cell} {reason}" for reason in dict.fromkeys(reasons)]


def scan_source(source, cell="cell"):
    """Reasons to suspect one cell of changing the rules of grading.

    Parameters
    ----------
    source : str
        The cell's code, IPython magics allowed.
    cell : str, default="cell"
        How reasons name the cell: its nbgrader ``grade_id`` or its number.

    Returns
    -------
    list of str
        One readable reason per finding, ``"cell <cell> <what it does>"``;
        empty when nothing is suspect. Code that does not parse is left to
        the kernel, which reports the error.

    Examples
    --------
    >>> scan_source("import numpy as np\\nnp.array_equal = lambda a, b: True", cell="5")
    ['cell 5 replaces numpy.array_equal']
    """
    if not isinstance(source, str):
        raise TypeError(f"source must be a str, but got {type(source).__name__}.")
    return _scan(source, cell, _State())


def _meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def student_cells(nb, release=None):
    """``(label, source)`` of every code cell the student could have written.

    Locked cells are skipped (nbgrader grades them as released), and so are
    cells whose code is the release's own, word for word.

    Parameters
    ----------
    nb : NotebookNode or dict
        The submitted notebook.
    release : NotebookNode or dict, optional
        The lesson's student release.

    Returns
    -------
    list of (str, str)
        The label is the cell's ``grade_id``, else its number from 1.
    """
    released = set()
    if release is not None:
        released = {
            "".join(c["source"]).strip() for c in release["cells"] if c["cell_type"] == "code"
        }
    cells = []
    for index, cell in enumerate(nb["cells"], start=1):
        meta = _meta(cell)
        if cell["cell_type"] != "code" or (meta.get("locked") and not meta.get("solution")):
            continue
        source = "".join(cell["source"])
        if source.strip() in released:
            continue
        cells.append((meta.get("grade_id") or str(index), source))
    return cells


def _tested_names(nb, release):
    """Names read by the graded test cells (of the release when given); None: no tests."""
    names, graded = set(), False
    for cell in (release or nb)["cells"]:
        if cell["cell_type"] == "code" and _meta(cell).get("grade"):
            graded = True
            tree = _parse("".join(cell["source"]))
            if tree is not None:
                names |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return names if graded else None


def scan_notebook(nb, release=None):
    """Reasons to suspect a submitted notebook of changing the rules of grading.

    Parameters
    ----------
    nb : NotebookNode or dict
        The submitted notebook.
    release : NotebookNode or dict, optional
        The lesson's student release: its cells are the course's code, not
        the student's, and are not read.

    Returns
    -------
    list of str
        Readable reasons, in the notebook's order; empty for a fair submission.

    Examples
    --------
    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[
    ...     nbformat.v4.new_code_cell("from course_lib import quiz"),
    ...     nbformat.v4.new_code_cell("for guess in range(100):\\n"
    ...                               "    quiz.is_correct(guess, 'q:0')")])
    >>> scan_notebook(nb)
    ['cell 2 searches quiz answers by calling course_lib.quiz.is_correct in a loop']
    """
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise TypeError(f"nb must be a notebook with a list of cells, but got {type(nb).__name__}.")
    # Every cell is read in order, the course's too, so that aliases and
    # classes are known; only the student's cells are reported.
    state = _State(_tested_names(nb, release))
    student = dict(student_cells(nb, release))
    reasons = []
    for index, cell in enumerate(nb["cells"], start=1):
        if cell["cell_type"] != "code":
            continue
        label = _meta(cell).get("grade_id") or str(index)
        source = "".join(cell["source"])
        if student.get(label) == source:
            reasons += _scan(source, label, state)
        else:
            tree = _parse(source)
            if tree is not None:
                _Scanner(state).visit(tree)
    return reasons
