"""What a graded notebook hands back, read from the notebooks alone (no nbgrader).

Used after each grading task, on the side that runs it (a Slurm element, the
instructor's process), which never imports nbgrader: nbgrader runs in the
grading workers.

* :func:`failure_messages` and :func:`stderr_notes` for ``grades.csv``;
* :func:`scrub_handback` on the feedback: no line of a hidden test is handed
  back.

The cells' stderr becomes a note during grading (:class:`course_lib.grading.
integrity.StderrAsNote`), which marks it with :data:`STDERR_NOTE`.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from course_lib.grading.notebooks import nbgrader_meta, read_notebook

__all__ = ["STDERR_NOTE", "failure_messages", "scrub_handback", "stderr_notes"]

#: The first line of a graded cell's output that was printed on stderr.
STDERR_NOTE = "[grading] printed on stderr (warnings do not cost points):"
_REMOVED = "[grading] a line of a hidden test was removed here"
_TAG = re.compile(r"<[^>]*>")
# Hidden lines this long are also found inside a longer line (a print, a traceback).
_CONTAINED = 24


def stderr_notes(autograded_dir):
    """Notes for the graded cells of ``autograded_dir`` whose stderr was kept.

    Examples
    --------
    >>> import nbformat, tempfile, pathlib
    >>> cell = nbformat.v4.new_code_cell("f()")
    >>> cell.metadata["nbgrader"] = {"grade": True, "grade_id": "test-f"}
    >>> cell.outputs = [nbformat.v4.new_output("stream", name="stdout",
    ...                                        text=STDERR_NOTE + "\\nRuntimeWarning: ...")]
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> nbformat.write(nbformat.v4.new_notebook(cells=[cell]), folder / "a.ipynb")
    >>> stderr_notes(folder)
    ['test-f printed warnings on stderr (they cost no points)']
    """
    notes = []
    for path in sorted(Path(autograded_dir).glob("*.ipynb")):
        for cell in read_notebook(path).cells:
            meta = nbgrader_meta(cell)
            if cell.cell_type != "code" or not meta.get("grade"):
                continue
            if any(STDERR_NOTE in str(o.get("text", "")) for o in cell.get("outputs", [])):
                notes.append(
                    f"{meta.get('grade_id')} printed warnings on stderr (they cost no points)"
                )
    return notes


def failure_messages(autograded_dir, cells):
    """What each graded cell that lost points said, for ``grades.csv``.

    Parameters
    ----------
    autograded_dir : str or Path
        The autograded notebooks.
    cells : dict
        ``{grade_id: (score, max_score)}``.

    Returns
    -------
    list of str
        ``"<grade_id>: <error>: <message>"`` per cell that lost points, so
        that no zero goes without a word.
    """
    lost = {gid for gid, (score, maximum) in cells.items() if score < maximum}
    messages = []
    for path in sorted(Path(autograded_dir).glob("*.ipynb")):
        for cell in read_notebook(path).cells:
            gid = nbgrader_meta(cell).get("grade_id")
            if gid not in lost:
                continue
            said = [
                f"{o.get('ename')}: {o.get('evalue')}".rstrip(": ")
                for o in cell.get("outputs", [])
                if o.get("output_type") == "error"
            ]
            if not said and any(o.get("name") == "stderr" for o in cell.get("outputs", [])):
                said = ["it printed on stderr"]
            messages.append(f"{gid}: {'; '.join(said) or 'failed without a message'}")
    return messages


def _plain(line):
    return html.unescape(_TAG.sub("", line)).strip()


def _found_in(text, hidden):
    return {h for h in hidden if h == text or (len(h) >= _CONTAINED and h in text)}


def _telling(line):
    """Whether a hidden line is specific enough to be a leak wherever it appears.

    Imports and short lines (``import random``, ``_n = 7``) are what anyone writes.
    """
    return len(line) >= 16 and not re.match(r"(import|from)\s", line)


def scrub_handback(folder, hidden_lines):
    """Remove every line of a hidden test from the files under ``folder``.

    Parameters
    ----------
    folder : str or Path
        What is handed back (``feedback/<student>/<lesson>/``).
    hidden_lines : set of str
        Stripped lines of the hidden tests
        (:func:`~course_lib.grading.leaks.hidden_test_lines`).

    Returns
    -------
    list of str
        The hidden lines found and removed, sorted; empty when none. In HTML
        the tags of a removed line are kept and its text is replaced by a
        note, so that the page still renders.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> page = "<pre>ok = 1\\n<span>assert secret == 42</span>\\n</pre>"
    >>> _ = (folder / "f.html").write_text(page)
    >>> scrub_handback(folder, {"assert secret == 42"})
    ['assert secret == 42']
    >>> "secret" in (folder / "f.html").read_text()
    False
    """
    hidden = {line.strip() for line in hidden_lines if _telling(line.strip())}
    found = set()
    for path in sorted(Path(folder).rglob("*")):
        if not path.is_file():
            continue
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
        changed = False
        for number, line in enumerate(lines):
            leaked = _found_in(_plain(line), hidden)
            if not leaked:
                continue
            found |= leaked
            end = "\n" if line.endswith("\n") else ""
            lines[number] = "".join(_TAG.findall(line)) + _REMOVED + end
            changed = True
        if changed:
            path.write_text("".join(lines), encoding="utf-8")
    return sorted(found)
