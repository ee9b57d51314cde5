"""What a student release must not contain: solution code, hidden tests, outputs.

:func:`release_leaks` compares a released notebook with its solutions
notebook line by line; ``check-release`` and ``verify-exercises`` run it on
every lesson.
"""

from __future__ import annotations

from course_lib.grading.notebooks import nbgrader_meta, output_text, read_notebook

__all__ = ["hidden_test_lines", "release_leaks", "solution_lines"]

_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


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
    nb = notebook if hasattr(notebook, "cells") else read_notebook(notebook)
    solution, hidden, public = [], [], []
    for cell in nb.cells:
        source = cell.source
        inside_hidden, rest = _regions(source, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
        rest = "\n".join(rest)
        if "BEGIN SOLUTION" in rest:
            inside_solution, rest = _regions(rest, "BEGIN SOLUTION", "END SOLUTION")
        elif nbgrader_meta(cell).get("solution"):
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
        region and nowhere in the released part of the notebook, not even
        inside a longer released line (the feedback scrub looks for them
        inside lines too).
    """
    _, hidden, public = _split_notebook(notebook)
    shown = _significant(public)
    return {line for line in _significant(hidden) - shown if not any(line in s for s in shown)}


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
                lines.extend(output_text(output).splitlines())
    return lines


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
        source = read_notebook(source)
    released = release_notebook
    if not hasattr(released, "cells"):
        released = read_notebook(released)
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
