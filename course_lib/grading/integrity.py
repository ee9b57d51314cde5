"""Fair grading: the steps that keep nbgrader's rules from costing a right answer.

Verdicts are out of the student's reach by construction: the test cells run
in a checker kernel apart from the student's (:mod:`course_lib.grading.execute`).
What is left here, each used by one step of :mod:`course_lib.grading`:

* :func:`configure_nbgrader`, in every task's ``nbgrader_config.py``: the
  two-kernel executor in ``Execute``'s place, :class:`StderrAsNote`, which
  keeps a test cell's points when something printed warnings, and
  :class:`RestoreHiddenTests`, which gives an untouched test cell its hidden
  tests back without a false alarm in the log;
* :func:`failure_messages` and :func:`stderr_notes` for ``grades.csv``;
* :func:`scrub_handback` on the feedback: no line of a hidden test is handed
  back.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from nbgrader.api import MissingEntry
from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor, OverwriteCells
from traitlets import List

from course_lib.grading.notebooks import nbgrader_meta

__all__ = [
    "FeedbackClearHiddenTests",
    "RestoreHiddenTests",
    "STDERR_NOTE",
    "StderrAsNote",
    "configure_nbgrader",
    "failure_messages",
    "scrub_handback",
    "stderr_notes",
]

#: The first line of a graded cell's output that was printed on stderr.
STDERR_NOTE = "[grading] printed on stderr (warnings do not cost points):"
_REMOVED = "[grading] a line of a hidden test was removed here"
_TAG = re.compile(r"<[^>]*>")
# Hidden lines this long are also found inside a longer line (a print, a traceback).
_CONTAINED = 24


# -- the graded run: nbgrader's configuration ------------------------------------


def configure_nbgrader(c):
    """Set a task's nbgrader config ``c``: two kernels, stderr of test cells as a note.

    Examples
    --------
    >>> from traitlets.config import Config
    >>> c = Config()
    >>> configure_nbgrader(c)
    >>> RestoreHiddenTests in c.Autograde.sanitize_preprocessors
    True
    """
    from course_lib.grading.execute import TwoKernelExecute, autograde_steps, use_two_kernels

    use_two_kernels(c)
    steps = list(c.Autograde.autograde_preprocessors)
    steps.insert(steps.index(TwoKernelExecute) + 1, StderrAsNote)
    c.Autograde.autograde_preprocessors = steps
    c.Autograde.sanitize_preprocessors = [
        RestoreHiddenTests if step is OverwriteCells else step
        for step in autograde_steps(c, "sanitize_preprocessors")
    ]


class RestoreHiddenTests(OverwriteCells):
    """nbgrader's ``OverwriteCells``, knowing that a released test cell lacks its hidden tests.

    nbgrader's ``generate_assignment`` saves a test cell in the gradebook with its
    hidden tests, and the checksum of that source, then releases the cell without
    them (jupyter/nbgrader#1961). So ``OverwriteCells`` found every untouched
    hidden-test cell changed, and the log of every untouched submission warned
    "Attribute 'checksum' for cell ... has changed!" once per such cell. Here a
    locked cell whose source is exactly the one released (the gradebook's source,
    its hidden tests cleared by nbgrader's own ``ClearHiddenTests``) gets the
    gradebook's source back before nbgrader compares: no warning. A cell changed in
    any other way is reported and overwritten as nbgrader always did.
    """

    def preprocess_cell(self, cell, resources, cell_index):
        grade_id = nbgrader_meta(cell).get("grade_id")
        if grade_id is not None:
            try:
                source = self.gradebook.find_source_cell(
                    grade_id, self.notebook_id, self.assignment_id
                )
            except MissingEntry:  # nbgrader's own step says so
                source = None
            if source is not None and source.locked and cell.source == self.released(source):
                cell.source = source.source
        return super().preprocess_cell(cell, resources, cell_index)

    def released(self, source_cell):
        """The source of ``source_cell`` (a gradebook ``SourceCell``) as it was released."""
        import nbformat

        cell = nbformat.v4.new_code_cell(source_cell.source)
        # nbgrader's own clearing, with the course's delimiters (this step's config).
        ClearHiddenTests(parent=self)._remove_hidden_test_region(cell)
        return cell.source


class FeedbackClearHiddenTests(ClearHiddenTests):
    """nbgrader's ``ClearHiddenTests``, for the feedback, without a warning in every log.

    Feedback is an nbconvert HTML export, whose configuration sets
    ``NbConvertBase.display_data_priority``; nbgrader's preprocessors redefine that
    trait without making it configurable, so traitlets warned "Config option
    `display_data_priority` not recognized by `ClearHiddenTests`" for every
    submission. Here the trait is configurable again (as nbgrader's ``GetGrades``
    makes it); it changes nothing else.

    Examples
    --------
    >>> from traitlets.config import Config
    >>> c = Config({"NbConvertBase": {"display_data_priority": ["text/html"]}})
    >>> FeedbackClearHiddenTests(config=c).display_data_priority
    ['text/html']
    """

    display_data_priority = List(ClearHiddenTests.display_data_priority.default_value).tag(
        config=True
    )


class StderrAsNote(NbGraderPreprocessor):
    """Graded test cells: output on stderr becomes ordinary output under a note.

    nbgrader gives a test cell zero points for any output on stderr, so a
    correct answer whose code printed a warning lost its points. A failing
    test still fails: its assertion is an error output, not stderr.
    """

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and nbgrader_meta(cell).get("grade"):
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
    import nbformat

    lost = {gid for gid, (score, maximum) in cells.items() if score < maximum}
    messages = []
    for path in sorted(Path(autograded_dir).glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
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
