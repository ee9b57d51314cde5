"""Fair and tamper-evident grading: the steps that keep the rules the course's.

Grading runs the student's code in the student's own kernel, with the tests
after it, so that code can try to change the rules; and nbgrader's own rules
can cost a correct answer its points. This module holds the pipeline's
answers to both, each used by one step of :mod:`course_lib.grading`:

* :func:`check_tampering`, a submission check (:data:`SUBMISSION_CHECKS`):
  code that changes the rules, read in the submitted cells by
  :mod:`course_lib.tamper`, flags the submission and withholds its automatic
  points until a person has looked;
* :func:`configure_nbgrader`, in every task's ``nbgrader_config.py``: the
  graded kernel loads :mod:`course_lib.guard`, which checks before every cell
  what reading cannot see, and :class:`StderrAsNote` keeps a test cell's
  points when the student's code printed warnings;
* :func:`arm_guard` before a graded run and :func:`run_time_reasons` after;
* :func:`scrub_handback` on the feedback: no line of a hidden test is handed
  back.
"""

from __future__ import annotations

import html
import re
import secrets
from pathlib import Path

from nbgrader.preprocessors import NbGraderPreprocessor

from course_lib.guard import guard_files, read_record
from course_lib.tamper import scan_notebook

__all__ = [
    "STDERR_NOTE",
    "StderrAsNote",
    "arm_guard",
    "check_tampering",
    "configure_nbgrader",
    "failure_messages",
    "run_time_reasons",
    "scrub_handback",
    "stderr_notes",
    "withheld_note",
]

#: The first line of a graded cell's output that was printed on stderr.
STDERR_NOTE = "[grading] printed on stderr (warnings do not cost points):"
_REMOVED = "[grading] a line of a hidden test was removed here"
_TAG = re.compile(r"<[^>]*>")
# Hidden lines this long are also found inside a longer line (a print, a traceback).
_CONTAINED = 24


def _meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


# -- before grading: the submitted code, read --------------------------------


def check_tampering(sub):
    """Submission check: code that changes the rules is flagged, its points withheld.

    ``sub`` is a :class:`~course_lib.grading.checks.SubmittedNotebook`; each
    reason of :func:`course_lib.tamper.scan_notebook` becomes a note, and a
    reason to withhold the automatic points until graded by hand.
    """
    reasons = scan_notebook(sub.notebook, sub.released)
    if reasons:
        sub.notes.extend(reasons)
        sub.withheld.extend(reasons)
        sub.flagged = True


# -- the graded run: nbgrader's configuration, the run-time guard ----------------


def configure_nbgrader(c):
    """Set a task's nbgrader config ``c``: the guard in the kernel, stderr as a note."""
    from nbgrader.preprocessors import Execute

    arguments = list(c.Execute.get("extra_arguments", []))
    c.Execute.extra_arguments = [*arguments, "--InteractiveShellApp.extensions=course_lib.guard"]
    from nbgrader.converters import Autograde

    steps = list(Autograde.class_traits()["autograde_preprocessors"].default())
    steps.insert(steps.index(Execute) + 1, StderrAsNote)
    c.Autograde.autograde_preprocessors = steps


def arm_guard(runtime_dir):
    """Leave a fresh secret for the guard of the next kernel started in ``runtime_dir``.

    Returns the secret, to read the record back with :func:`run_time_reasons`.
    """
    record, secret_file = (Path(p) for p in guard_files(runtime_dir))
    record.parent.mkdir(parents=True, exist_ok=True)
    record.unlink(missing_ok=True)
    secret = secrets.token_hex(32)
    secret_file.write_text(secret)
    secret_file.chmod(0o600)
    return secret


def run_time_reasons(runtime_dir, secret, autograded_dir):
    """Reasons the guard recorded while the notebooks of ``autograded_dir`` ran."""
    import nbformat

    cells, tests = {}, set()
    for path in sorted(Path(autograded_dir).glob("*.ipynb")):
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells, start=1):
            if cell.cell_type != "code" or not cell.get("execution_count"):
                continue
            label = _meta(cell).get("grade_id") or str(index)
            cells[label] = cell.source
            if _meta(cell).get("grade"):
                tests.add(label)
    record, _ = guard_files(runtime_dir)
    return read_record(record, secret, cells, required=tests)


def withheld_note(score, max_score):
    """The note that says a flagged submission's automatic points are withheld."""
    return (
        f"flagged for grading by hand: its automatic points ({score:g}/{max_score:g}) are "
        "withheld until you grade it in the formgrader"
    )


class StderrAsNote(NbGraderPreprocessor):
    """Graded test cells: output on stderr becomes ordinary output under a note.

    nbgrader gives a test cell zero points for any output on stderr, so a
    correct answer whose code printed a warning lost its points. A failing
    test still fails: its assertion is an error output, not stderr.
    """

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and _meta(cell).get("grade"):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    output["name"] = "stdout"
                    output["text"] = f"{STDERR_NOTE}\n{output.get('text', '')}"
        return cell, resources


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
    import nbformat

    notes = []
    for path in sorted(Path(autograded_dir).glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            meta = _meta(cell)
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
    import nbformat

    lost = {gid for gid, (score, maximum) in cells.items() if score < maximum}
    messages = []
    for path in sorted(Path(autograded_dir).glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            gid = _meta(cell).get("grade_id")
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


# -- after grading: what is handed back ------------------------------------


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
